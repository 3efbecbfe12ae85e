"""RAG: ingestion throughput, retrieval latency at 10k / 100k / 1M chunks, and time to the first answer token.

    python -m bench.rag [--copies 8] [--queries 200] [--runs 5] [--skip-million]

1. Ingestion: the 12 bench/rag_eval documents and the 7 guide pages, `copies` times (each copy made distinct by a
   line, so none is skipped as a duplicate), through `services.rag.answer.ingest` (extract, chunk, embed, store) vs
   encoding exactly the same chunk texts with sentence-transformers directly (`SentenceTransformer.encode`, batch
   64, normalised; the baseline). Chunks per second, median of `runs` (goal: >= 0.9x).
2. Retrieval latency: synthetic collections of 10,000 and 100,000 chunks (texts drawn from the guide's vocabulary,
   unit vectors of 384 dimensions clustered around n/100 topics, questions near passages) and 1,000,000 (vectors
   only): the vector search the app runs (exact up to 50,000 chunks, IVF beyond, with its recall@20 against exact
   search) and hybrid (vector + BM25 + reciprocal-rank fusion), `queries` queries each, median and p95. The
   query's embedding is not included (goal: vector p50 < 10 ms at 100k).
3. Time to first token: `services.rag.answer.stream_answer` on the demo collection (retrieval, sentence selection,
prompt,
   generation) until the first non-empty answer text vs the model's own first token for the same prompt
   (`generate` with a streamer, the same SmolLM2-135M-Instruct, warm), median of `runs` (goal: <= 1.3x).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def bench_ingest(copies: int, runs: int, tmp: Path) -> dict:
    from services.rag import answer as rag
    from services.rag.chunk import chunk_sections
    from services.rag.extract import extract

    sources = sorted((ROOT / "bench" / "rag_eval" / "docs").glob("*.md")) + sorted(
        (ROOT / "assets" / "docs").glob("*.md")
    )
    ours, base = [], []
    for run in range(runs):
        folder = tmp / f"copies-{run}"
        folder.mkdir()
        files = []
        for c in range(copies):
            for path in sources:
                target = folder / f"{path.stem}-{c}.md"
                target.write_text(path.read_text() + f"\n\nCopy {c} of run {run}.\n")
                files.append(target)
        texts = []
        tokenizer = rag.embedder().tokenizer
        for f in files:
            for chunk in chunk_sections(extract(f.name, f.read_bytes())[0].sections, tokenizer):
                texts.append(rag._embedding_text(chunk.text, chunk.heading))
        steps = [("ours", ours), ("base", base)] if run % 2 == 0 else [("base", base), ("ours", ours)]
        for name, bucket in steps:
            started = time.perf_counter()
            if name == "ours":
                summary = rag.ingest(f"bench-{run}", files, "bench:ingest")
                assert summary["chunks"] == len(texts), (summary["chunks"], len(texts))
            else:
                rag.embedder().encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            bucket.append(len(texts) / (time.perf_counter() - started))
    ratio = statistics.median(ours) / statistics.median(base)
    verdict = "met" if ratio >= 0.9 else "MISSED"
    print(f"1. ingestion of {len(texts):,} chunks: {statistics.median(ours):.0f} chunks/s vs encoding alone "
          f"{statistics.median(base):.0f} chunks/s -> {ratio:.2f}x ({verdict}; goal >= 0.9x)")  # fmt: skip
    return {"ours": ours, "base": base, "ratio": ratio, "chunks": len(texts)}


def _synthetic_texts(n: int, seed: int = 0) -> list[str]:
    from services.rag.index import words

    vocabulary = sorted(set(words(" ".join(p.read_text() for p in (ROOT / "assets" / "docs").glob("*.md")))))
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocabulary, k=rng.randint(40, 120))) for _ in range(n)]


def bench_latency(sizes: list[int], queries: int) -> list[dict]:
    import faiss

    from services.rag import index as rag_index

    rng = np.random.default_rng(0)
    out = []
    for n in sizes:
        # Embeddings of real text cluster by topic: vectors around n/100 topic centres, and questions near passages.
        centres = rng.standard_normal((max(n // 100, 10), 384), dtype=np.float32)
        vectors = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.standard_normal((n, 384), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        ids = np.arange(1, n + 1, dtype=np.int64)
        started = time.perf_counter()
        index = rag_index.build_vectors(ids, vectors)
        build = time.perf_counter() - started
        asks = vectors[rng.integers(0, n, queries)] + 0.3 * rng.standard_normal((queries, 384), dtype=np.float32)
        asks /= np.linalg.norm(asks, axis=1, keepdims=True)
        exact = faiss.IndexFlatIP(384)
        exact.add(vectors)
        exact_ms = []
        for q in asks[:50]:
            t = time.perf_counter()
            exact.search(q.reshape(1, -1), 20)
            exact_ms.append((time.perf_counter() - t) * 1000)
        vector_ms = []
        for q in asks:
            t = time.perf_counter()
            rag_index.search_vectors(index, q, 20)
            vector_ms.append((time.perf_counter() - t) * 1000)
        row = {"chunks": n, "index": "exact" if n < rag_index.APPROX_FROM else "IVF", "build_s": build,
               "vector_p50": _p(vector_ms, 50), "vector_p95": _p(vector_ms, 95)}  # fmt: skip
        row["exact_p50"] = _p(exact_ms, 50)
        if n >= rag_index.APPROX_FROM:  # what the approximate index misses: recall@20 against exact search
            found = 0
            for q in asks[:50]:
                truth = set((exact.search(q.reshape(1, -1), 20)[1][0] + 1).tolist())
                found += len(truth & {i for i, _ in rag_index.search_vectors(index, q, 20)})
            row["recall_at_20"] = found / (50 * 20)
        if n <= 100_000:
            texts = _synthetic_texts(n)
            started = time.perf_counter()
            bm25 = rag_index.BM25(list(ids), texts)
            row["bm25_build_s"] = time.perf_counter() - started
            questions = [" ".join(random.Random(i).choices(texts[i].split(), k=8)) for i in range(queries)]
            hybrid_ms = []
            for q, text in zip(asks, questions, strict=True):
                t = time.perf_counter()
                rag_index.fuse(rag_index.search_vectors(index, q, 20), bm25.search(text, 20), 0.5)
                hybrid_ms.append((time.perf_counter() - t) * 1000)
            row.update(hybrid_p50=_p(hybrid_ms, 50), hybrid_p95=_p(hybrid_ms, 95))
        hybrid = (
            f", hybrid p50 {row['hybrid_p50']:.2f} ms p95 {row['hybrid_p95']:.2f} ms" if "hybrid_p50" in row else ""
        )
        recall = (
            f", recall@20 {row['recall_at_20']:.2f} (exact search p50 {row['exact_p50']:.2f} ms)"
            if "recall_at_20" in row
            else ""
        )
        print(f"2. {n:>9,} chunks ({row['index']}, built in {build:.1f} s): vector p50 {row['vector_p50']:.2f} ms "
              f"p95 {row['vector_p95']:.2f} ms{recall}{hybrid}")  # fmt: skip
        out.append(row)
    return out


def bench_first_token(runs: int) -> dict:
    from transformers import TextIteratorStreamer

    from services.models import loading
    from services.pipelines.chat import encode_prompt, generation_kwargs
    from services.rag import answer as rag

    question = "How do I fine-tune a model on my own data?"
    owner = "bench:ttft"
    loaded = loading.load(rag.CHAT_MODEL, "text-generation")
    list(rag.stream_answer(rag.DEMO, question, owner, max_new_tokens=8, model=rag.CHAT_MODEL))  # warm: all
    ours, base = [], []
    for run in range(runs):
        order = ("ours", "base") if run % 2 == 0 else ("base", "ours")
        for name in order:
            if name == "ours":
                started = time.perf_counter()
                for part in rag.stream_answer(rag.DEMO, question, owner, max_new_tokens=16, model=rag.CHAT_MODEL):
                    if part["answer"]:
                        ours.append(time.perf_counter() - started)
                        break
            else:
                hits = rag.retrieve(rag.DEMO, question, owner)
                messages = rag.build_prompt(question, hits)
                streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True)
                started = time.perf_counter()
                encoded = encode_prompt(loaded, messages)
                kwargs = {**encoded, **generation_kwargs(loaded, {"max_new_tokens": 16}), "streamer": streamer}
                thread = threading.Thread(target=loaded.model.generate, kwargs=kwargs)
                thread.start()
                for text in streamer:
                    if text:
                        base.append(time.perf_counter() - started)
                        break
                thread.join()
    ratio = statistics.median(ours) / statistics.median(base)
    verdict = "met" if ratio <= 1.3 else "MISSED"
    print(f"3. first answer token {statistics.median(ours) * 1000:.0f} ms vs the model's own first token "
          f"{statistics.median(base) * 1000:.0f} ms -> {ratio:.2f}x ({verdict}; goal <= 1.3x)")  # fmt: skip
    return {"ours": ours, "base": base, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--only", choices=["ingest", "latency", "first-token"])
    args = parser.parse_args()
    print(f"bench.rag · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("PLAYGROUND_HOME", str(Path(tmp) / "home"))
        if args.only in (None, "ingest"):
            bench_ingest(args.copies, min(args.runs, 3), Path(tmp))
        if args.only in (None, "latency"):
            bench_latency([10_000, 100_000] + ([] if args.skip_million else [1_000_000]), args.queries)
        if args.only in (None, "first-token"):
            bench_first_token(args.runs)


if __name__ == "__main__":
    main()
