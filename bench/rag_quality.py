"""RAG quality on bench/rag_eval (12 invented documents, 48 questions, 24 questions they do not answer):
retrieval, answers, citations and declining, for each answering model, and their speed.

    python -m bench.rag_quality [--model M ...] [--chunk-size 160] [--overlap 32] [--top-k 4] [--sentences 6]
                                [--bonus 0.5] [--number-bonus 0.1] [--focus 4] [--contrast 0.5]
                                [--oracle] [--no-answers] [--speed-runs 12] [--limit N] [-v]

Retrieval: the question's document among the top 3 citations (goal 100%). Answers: one of the question's `accept`
strings in the answer (issue 17's goal: >= 80%). Citations: of the right answers, those whose
cited passage holds the fact (goal >= 90%). Outside: the questions of rag_eval/outside.jsonl ("near": about the
documents' subjects, a fact they do not give; "off": about nothing in them) answered "the documents do not say"
(goal >= 90%). Speed: time to first token and tokens/s of each model on the same questions, alternated, medians;
each model's ratio to the first one's (goal <= 1.1x for an adapter against its base). By default: RAG chat's
default answering model alone; `--model A --model B` compares two in one run. A model reads the sources as RAG chat
has it read them (services.rag.reading: the packaged SmolLM2 one sentence at a time, others six together);
`M@together` or `M@one-by-one` has it read them the other way, so `--model M@together --model M` compares the two.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "bench" / "rag_eval"
CONTRAST: float | None = None  # --contrast: the same for every model (None: RAG chat's default for its reading)


def evaluate(chunk_size: int, overlap: int, top_k: int, sentences: int, full: bool, answers: bool, limit: int | None,
             weight: float = 0.5, verbose: bool = False, oracle: bool = False,
             model: str | None = None) -> dict:  # fmt: skip
    from services.rag import answer as rag

    questions = _lines("questions.jsonl")
    questions = questions[:limit] if limit else questions
    owner = f"bench:{chunk_size}-{overlap}"
    rag.ingest("eval", sorted((EVAL / "docs").glob("*.md")), owner, chunk_size=chunk_size, overlap=overlap)
    found = right = in_prompt = first = cited_right = 0
    started = time.perf_counter()
    asked: dict = {}
    if oracle:  # the model's ceiling: the sentence that holds the answer (if retrieved) is the only one it reads
        select, rag.PROMPT_SENTENCES = rag._select_sentences, 1

        def only_the_answer(hits, *args, **kwargs):
            select(hits, *args, **kwargs)
            for h in hits:
                h.scored = [(o, s + 100.0 * _holds(t, asked), t) for o, s, t in h.scored]

        rag._select_sentences = only_the_answer
    model, options = _variant(model)
    one_by_one = options.get("one_by_one", rag.reading.reads_one_by_one(model or rag.ANSWER_MODEL))
    focus = rag.reading.FOCUS_WEIGHT if one_by_one else None
    for q in questions:
        asked.clear()
        asked.update(q)
        hits = rag.retrieve("eval", q["question"], owner, top_k=top_k, hybrid_weight=weight, focus=focus)
        top3 = [h.source for h in hits[:3]]
        found += q["document"] in top3
        best = max((s for h in hits for s in h.scored), key=lambda s: s[1], default=(0, 0.0, ""))
        ranked = rag._ranked(hits, rag.reading.POOL)
        read = [t for _, _, _, t in rag.reading.candidates(q["question"], hits, ranked)] if one_by_one else []
        first += _holds(read[0] if read else best[2], q)  # the sentence read first (one at a time) or ranked first
        in_prompt += _holds(" ".join(read) or rag.build_prompt(q["question"], hits)[-1]["content"], q)
        if answers:
            result = rag.ask("eval", q["question"], owner, top_k=top_k, hybrid_weight=weight, model=model, **options)
            ok = _holds(result["answer"], q)
            right += ok
            cited_right += ok and _cites_the_fact(result, q)
            if verbose and not ok:
                print(f"  ✗ {q['question']} -> {result['answer']!r} (want {q['answer']}; top {top3})")
    n = len(questions)
    outside = _outside(owner, top_k, weight, model, options, verbose) if answers else None
    return {"retrieval": found / n, "answers": right / n if answers else None, "n": n, "first": first / n,
            "in_prompt": in_prompt / n, "cited": cited_right / right if right else None, "outside": outside,
            "seconds": time.perf_counter() - started}  # fmt: skip


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (EVAL / name).read_text().splitlines() if line.strip()]


def _cites_the_fact(result: dict, q: dict) -> bool:
    """Whether a passage the answer cites holds the fact (what the model read of it, or the whole passage)."""
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", result["answer"])}
    hits = result.get("hits") or []
    return any(_holds(" ".join(hits[n - 1].get("shown") or []) or hits[n - 1].get("text", ""), q)
               for n in cited if 1 <= n <= len(hits))  # fmt: skip


def _variant(entry: str | None) -> tuple[str | None, dict]:
    """`model@together` or `model@one-by-one`: the model, read that way; a bare model id reads as RAG chat has it."""
    model, _, reading = (entry or "").partition("@")
    options = {"one_by_one": reading == "one-by-one"} if reading in ("together", "one-by-one") else {}
    if CONTRAST is not None:
        options["contrast"] = CONTRAST
    return model or None, options


def _outside(owner: str, top_k: int, weight: float, model: str | None, options: dict, verbose: bool) -> dict:
    """The share of rag_eval/outside.jsonl declined, per kind ("near", "off") and over all."""
    from services.rag import answer as rag

    declined: dict[str, list[bool]] = {}
    for q in _lines("outside.jsonl"):
        answer = rag.ask("eval", q["question"], owner, top_k=top_k, hybrid_weight=weight, model=model,
                         **options)["answer"]  # fmt: skip
        ok = answer.strip().startswith(rag.NOT_FOUND.split(".")[0])
        declined.setdefault(q["kind"], []).append(ok)
        if verbose and not ok:
            print(f"  ✗ outside ({q['kind']}): {q['question']} -> {answer!r}")
    every = [ok for oks in declined.values() for ok in oks]
    return {"all": sum(every) / len(every), **{kind: sum(oks) / len(oks) for kind, oks in declined.items()}}


def speed(models: list[str], runs: int, top_k: int, weight: float) -> dict[str, dict]:
    """Median time to first token (from the question, retrieval included) and tokens/s after it, for each model on
    the same first `runs` questions, the models' order alternated from one question to the next."""
    import statistics

    from services.models import loading
    from services.rag import answer as rag

    owner = "bench:160-32"
    questions = _lines("questions.jsonl")[:runs]
    for entry in models:  # warm: the model loaded (and merged), the index and the embedder read
        model, options = _variant(entry)
        rag.ask("eval", questions[0]["question"], owner, top_k=top_k, hybrid_weight=weight, model=model, **options)
    timings: dict[str, dict[str, list[float]]] = {m: {"ttft": [], "tps": []} for m in models}
    for i, q in enumerate(questions):
        for entry in models if i % 2 == 0 else list(reversed(models)):
            (model, options), started, first_at, text = _variant(entry), time.perf_counter(), None, ""
            for part in rag.stream_answer("eval", q["question"], owner, top_k=top_k, hybrid_weight=weight,
                                          model=model, max_new_tokens=48, **options):  # fmt: skip
                if part["answer"] and first_at is None:
                    first_at = time.perf_counter()
                text = part["answer"]
            ended = time.perf_counter()
            if first_at is None:
                continue
            tokenizer = loading.load(model or rag.ANSWER_MODEL, "text-generation").tokenizer
            tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            timings[entry]["ttft"].append(first_at - started)
            if tokens > 1 and ended > first_at:
                timings[entry]["tps"].append((tokens - 1) / (ended - first_at))
    return {m: {k: statistics.median(v) if v else None for k, v in t.items()} | {"n": len(t["ttft"])}
            for m, t in timings.items()}  # fmt: skip


def _holds(text: str, q: dict) -> bool:
    return any(a.lower() in text.lower() for a in q["accept"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="an answering model (repeat for several; default: RAG "
                        "chat's default answering model and the plain SmolLM2)")  # fmt: skip
    parser.add_argument("--chunk-size", type=int, default=160)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--style", choices=["chat", "plain"], default="chat")
    parser.add_argument("--example", action="store_true", help="show the model one worked question first")
    parser.add_argument("--order", choices=["source", "relevance"], default=None, help="default: RAG chat's")
    parser.add_argument("--sentences", type=int, default=6, help="sentences shown to the model (over all passages)")
    parser.add_argument("--bonus", type=float, default=0.5, help="weight of the question's (rare) words in a sentence")
    parser.add_argument("--focus", type=float, default=None, help="weight of the question without its "
                        "names (default: RAG chat's)")  # fmt: skip
    parser.add_argument("--number-bonus", type=float, default=0.1, help="for a number, when the question asks for one")
    parser.add_argument("--weight", type=float, default=0.5)
    parser.add_argument("--contrast", type=float, default=None, help="context-aware decoding strength (0: off; "
                        "default: RAG chat's for the way the model reads)")  # fmt: skip
    parser.add_argument("--full-chunks", action="store_true")
    parser.add_argument("--no-answers", action="store_true")
    parser.add_argument("--oracle", action="store_true", help="show the model only the sentence with the answer")
    parser.add_argument("--speed-runs", type=int, default=12, help="questions timed per model (0: no timing)")
    parser.add_argument("--limit", type=int)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    from services.rag import answer as rag

    rag.PROMPT_SENTENCES, rag.WORD_BONUS, rag.PROMPT_STYLE = args.sentences, args.bonus, args.style
    rag.PROMPT_EXAMPLE, rag.NUMBER_BONUS = args.example, args.number_bonus
    rag.PROMPT_ORDER = args.order or rag.PROMPT_ORDER
    global CONTRAST
    CONTRAST = args.contrast
    rag.FOCUS_WEIGHT = rag.FOCUS_WEIGHT if args.focus is None else args.focus
    rag.reading.FOCUS_WEIGHT = rag.reading.FOCUS_WEIGHT if args.focus is None else args.focus
    models = list(dict.fromkeys(args.model or [rag.ANSWER_MODEL]))
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("PLAYGROUND_HOME", home)
        results = {}
        for model in models:
            results[model] = evaluate(args.chunk_size, args.overlap, args.top_k, args.sentences, args.full_chunks,
                                      not args.no_answers, args.limit, args.weight, args.verbose, args.oracle,
                                      model)  # fmt: skip
        timed = (
            speed(models, args.speed_runs, args.top_k, args.weight) if args.speed_runs and not args.no_answers else {}
        )
    print(f"chunk {args.chunk_size}/{args.overlap}, top-k {args.top_k}, weight {args.weight}, {args.sentences} "
          f"sentences (together), contrast {'RAG chat default' if CONTRAST is None else CONTRAST}")  # fmt: skip
    print(
        "| answering model | right document in top 3 | fact in the prompt | right fact in the answer | "
        "cites the passage with the fact | outside: declined (near / off) | time to first token | tokens/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    reference = timed.get(models[0], {})
    for model, r in results.items():
        out = r["outside"]
        outside = f"{out['all']:.0%} ({out.get('near', 0):.0%} / {out.get('off', 0):.0%})" if out else "—"
        t = timed.get(model, {})
        ttft = f"{t['ttft']:.2f} s ({t['ttft'] / reference['ttft']:.2f}x)" if t.get("ttft") else "—"
        tps = f"{t['tps']:.1f} ({reference['tps'] / t['tps']:.2f}x)" if t.get("tps") else "—"
        print(f"| {model} | {r['retrieval']:.0%} | {r['in_prompt']:.0%} | {_share(r['answers'])} | "
              f"{_share(r['cited'])} | {outside} | {ttft} | {tps} |")  # fmt: skip
    print(f"n = {results[models[0]]['n']} questions + outside.jsonl; speed: medians over {args.speed_runs} questions "
          "per model, ratios to the first model (time ratio: higher is slower)")  # fmt: skip
    for model, r in results.items():  # one at a time: the first read is the answerability classifier's pick
        print(f"{model}: the fact in the sentence read (or ranked) first {r['first']:.0%}")


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


if __name__ == "__main__":
    main()
