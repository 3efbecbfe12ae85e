"""Pipelines: the playground's overhead against transformers called directly.

    python -m bench.pipelines [--runs 50]

1. Warm call: `services.pipelines.run` vs the same transformers pipeline built once and called directly, same
   model and input; median of `runs` calls each (goal: ratio <= 1.05). Text classification on a MiniLM encoder
   with a classification head, feature extraction on the packaged MiniLM.
2. A warm request vs the naive Gradio pattern that builds the pipeline inside the callback (reported).
3. Batch: 1,000 texts through the batch job (CSV in, CSV out) vs one direct batched pipeline call, as throughput
   (goal: >= 0.95x).
4. Streaming: time to the first streamed token (`services.pipelines.stream`) vs the model's own first token when
   called directly (`generate` with a streamer), on the packaged SmolLM2 (goal: <= 1.2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

TEXT = "The film was a delight from start to finish: sharp writing, warm performances and a great score."


def median_time(fn, runs: int) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def interleaved(fn_a, fn_b, runs: int) -> tuple[float, float]:
    """Medians of A and B measured in alternation, so drift in machine load hits both alike."""
    a, b = [], []
    for i in range(runs):
        pairs = ((fn_a, a), (fn_b, b)) if i % 2 == 0 else ((fn_b, b), (fn_a, a))  # ABBA: neither always goes first
        for fn, out in pairs:
            started = time.perf_counter()
            fn()
            out.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


def classifier_folder(root: Path) -> Path:
    """MiniLM's real encoder with a (fresh) two-label head: a realistic classifier for timing."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from services.models import packs

    source = packs.ensure_ready("all-minilm-l6-v2")
    folder = root / "minilm-classifier"
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=2, id2label={0: "NEGATIVE", 1: "POSITIVE"}, label2id={"NEGATIVE": 0, "POSITIVE": 1}
    )
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(source).save_pretrained(folder)
    return folder


def bench_warm(folder: Path, runs: int) -> None:
    from transformers import pipeline

    from services.models import packs
    from services.pipelines import run

    minilm = str(packs.ensure_ready("all-minilm-l6-v2"))
    cases = (("text-classification", str(folder), str(folder)), ("feature-extraction", "all-minilm-l6-v2", minilm))
    for task, model_id, path in cases:
        direct = pipeline(task, model=path, device="cpu")
        run(task, model_id, TEXT)  # warm: loaded and cached
        direct(TEXT)
        ours, theirs = interleaved(lambda: run(task, model_id, TEXT), lambda: direct(TEXT), runs)  # noqa: B023
        print(f"1. warm {task:<20} playground {ours * 1000:7.2f} ms | direct pipeline {theirs * 1000:7.2f} ms "
              f"| ratio {ours / theirs:.3f} (goal <= 1.05)")  # fmt: skip
        if task == "text-classification":
            naive = median_time(lambda: pipeline(task, model=path, device="cpu")(TEXT), max(5, runs // 10))  # noqa: B023
            print(f"2. naive callback that builds the pipeline each time: {naive * 1000:.1f} ms per request, "
                  f"{naive / ours:.0f}x slower than a warm playground request")  # fmt: skip


def bench_batch(folder: Path, runs: int) -> None:
    from transformers import pipeline

    from services.jobs.manager import JobManager
    from services.pipelines import batch, run

    texts = [f"{TEXT} Review number {i}." for i in range(1000)]
    work = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    csv_path = work / "texts.csv"
    csv_path.write_text("text\n" + "\n".join(f'"{t}"' for t in texts) + "\n")
    manager = JobManager(work / "jobs.sqlite3", work / "jobs")
    direct = pipeline("text-classification", model=str(folder), device="cpu")
    run("text-classification", str(folder), TEXT)
    direct(texts[:64], batch_size=32)

    def job() -> None:
        job_id = batch.start_batch(manager, "bench", "text-classification", str(folder), csv_path, "text")
        assert manager.wait(job_id).status == "succeeded"

    ours, theirs = interleaved(job, lambda: direct(texts, batch_size=32), max(4, runs // 10))
    print(f"3. batch of 1,000: job {1000 / ours:7.1f} texts/s (CSV in and out) | direct batched call "
          f"{1000 / theirs:7.1f} texts/s | throughput ratio {theirs / ours:.3f} (goal >= 0.95)")  # fmt: skip


def bench_first_token(runs: int) -> None:
    import torch
    from transformers import TextIteratorStreamer

    from services.models import loading
    from services.pipelines import stream

    prompt = "Write one sentence about the sea."
    loaded = loading.load("smollm2-135m-instruct", "text-generation")
    model, tokenizer = loaded.model, loaded.tokenizer

    def ours() -> float:
        started = time.perf_counter()
        for event in stream("smollm2-135m-instruct", prompt, max_new_tokens=4):
            if event["text"]:
                return time.perf_counter() - started
        return time.perf_counter() - started

    def direct() -> float:
        started = time.perf_counter()
        inputs = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
        kwargs = {**inputs, "max_new_tokens": 4, "do_sample": False, "streamer": streamer}
        worker = threading.Thread(target=lambda: torch.no_grad()(model.generate)(**kwargs))
        worker.start()
        first = None
        for piece in streamer:
            if piece and first is None:
                first = time.perf_counter() - started
        worker.join()
        return first or time.perf_counter() - started

    ours(), direct()
    a, b = [], []
    for _ in range(max(runs // 5, 1)):  # alternate, so drift in machine load hits both alike
        a.append(ours())
        b.append(direct())
    mine, theirs = statistics.median(a), statistics.median(b)
    print(f"4. first streamed token: playground {mine * 1000:.1f} ms | model directly {theirs * 1000:.1f} ms | "
          f"ratio {mine / theirs:.3f} (goal <= 1.2)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp(prefix="bench-pipelines-"))
    import torch

    print(f"torch threads: {torch.get_num_threads()}")
    folder = classifier_folder(Path(tempfile.mkdtemp(prefix="bench-models-")))
    bench_warm(folder, args.runs)
    bench_batch(folder, args.runs)
    bench_first_token(args.runs)


if __name__ == "__main__":
    main()
