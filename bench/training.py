"""Fine-tuning: the launcher's overhead against a plain Trainer script, dynamic padding, and the app's memory.

    python -m bench.training [--runs 3] [--rows 400] [--skip-memory]

Data: the first `rows` rows of the bundled samples/sentiment (short, variable-length reviews), 20% held out for the
evaluation at the end of each epoch; model: the packaged all-minilm-l6-v2; 1 epoch, batch 16, lr 1e-4, seed 42.

1. Samples per second of a job, `python -m services train job.yaml` in a child process (the command the app runs;
   `train_samples_per_second` read from its event log), vs a plain Trainer script in a child process with the same
   model, rows, tokenisation (datasets.map, dynamic padding) and TrainingArguments (the baseline). Runs alternate
   (AB BA ...); median of `runs` each (goal: >= 0.95x).
2. Dynamic padding (DataCollatorWithPadding, each batch padded to its longest text) vs padding every text to
   max_length = 128, both with the plain script: the speed-up in train samples per second (median of `runs`).
3. Peak memory of the app process while a child-process training job runs: the JobManager in this process starts
   the job; its RSS is sampled every 0.1 s before and during the job (a report, no goal beyond "unchanged").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

PLAIN = r"""
import json, sys
import numpy as np
from datasets import load_dataset
from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,
                          Trainer, TrainingArguments, default_data_collator)
from services.models import packs

rows, pad, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
location = str(packs.ensure_ready("all-minilm-l6-v2"))
tokenizer = AutoTokenizer.from_pretrained(location)
data = load_dataset("csv", data_files="assets/datasets/samples/sentiment/train.csv")["train"].select(range(rows))
labels = sorted(set(data["label"]))
split = data.train_test_split(test_size=0.2, seed=42)
def encode(batch):
    if pad == "max_length":
        out = tokenizer(batch["text"], truncation=True, max_length=128, padding="max_length")
    else:
        out = tokenizer(batch["text"], truncation=True, max_length=128)
    out["labels"] = [labels.index(v) for v in batch["label"]]
    return out
train = split["train"].map(encode, batched=True, remove_columns=["text", "label"])
test = split["test"].map(encode, batched=True, remove_columns=["text", "label"])
model = AutoModelForSequenceClassification.from_pretrained(location, num_labels=len(labels))
args = TrainingArguments(output_dir=out, num_train_epochs=1, learning_rate=1e-4, per_device_train_batch_size=16,
                         eval_strategy="epoch", save_strategy="epoch", logging_steps=5, report_to="none", seed=42,
                         disable_tqdm=True, dataloader_pin_memory=False, save_total_limit=2,
                         load_best_model_at_end=True, metric_for_best_model="loss")
collator = DataCollatorWithPadding(tokenizer) if pad == "dynamic" else default_data_collator
trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=test, data_collator=collator,
                  processing_class=tokenizer)
metrics = trainer.train().metrics
print("@@RESULT " + json.dumps(metrics))
"""


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}


def plain(rows: int, pad: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run(
            [sys.executable, "-c", PLAIN, str(rows), pad, out], cwd=ROOT, env=_env(), capture_output=True, text=True
        )
    line = next((x for x in done.stdout.splitlines() if x.startswith("@@RESULT ")), None)
    if line is None:
        raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
    return json.loads(line[9:])["train_samples_per_second"]


def subset(rows: int, folder: Path) -> Path:
    """The first `rows` rows of the sentiment sample as a file, so the job and the script see the same rows."""
    lines = (ROOT / "assets/datasets/samples/sentiment/train.csv").read_text(encoding="utf-8").splitlines()
    path = folder / "reviews.csv"
    path.write_text("\n".join(lines[: rows + 1]) + "\n", encoding="utf-8")
    return path


def config(rows: int, out: Path) -> dict:
    return {
        "task": "text-classification",
        "model": "all-minilm-l6-v2",
        "dataset": {"source": str(subset(rows, out.parent)), "text_column": "text", "label_column": "label",
                    "eval_split": 0.2},
        "max_length": 128,
        "training": {"num_train_epochs": 1, "learning_rate": 1e-4, "per_device_train_batch_size": 16, "seed": 42},
        "early_stopping_patience": None,
        "output_dir": str(out),
    }  # fmt: skip


def job(rows: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        path = Path(tmp) / "job.yaml"
        path.write_text(yaml.safe_dump(config(rows, out)))
        done = subprocess.run([sys.executable, "-m", "services", "train", str(path)], cwd=ROOT, env=_env(),
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            raise RuntimeError(done.stdout[-2000:] + done.stderr[-2000:])
        for line in (out / "events.jsonl").read_text().splitlines():
            event = json.loads(line)
            if event["type"] == "metrics" and "train_samples_per_second" in event["values"]:
                return event["values"]["train_samples_per_second"]
    raise RuntimeError("the job logged no train_samples_per_second")


def bench_overhead(runs: int, rows: int) -> dict:
    ours, base = [], []
    for i in range(runs):
        order = [(job, ours), (lambda r: plain(r, "dynamic"), base)]
        for fn, bucket in order if i % 2 == 0 else reversed(order):
            bucket.append(fn(rows))
    ratio = statistics.median(ours) / statistics.median(base)
    print(f"1. job {statistics.median(ours):.1f} samples/s vs plain Trainer {statistics.median(base):.1f} samples/s "
          f"-> {ratio:.3f}x ({'met' if ratio >= 0.95 else 'MISSED'}; goal >= 0.95x)")  # fmt: skip
    print(f"   tries: job {[round(x, 1) for x in ours]}, plain {[round(x, 1) for x in base]}")
    return {"job": ours, "plain": base, "ratio": ratio}


def bench_padding(runs: int, rows: int) -> dict:
    dynamic, fixed = [], []
    for i in range(runs):
        order = [("dynamic", dynamic), ("max_length", fixed)]
        for pad, bucket in order if i % 2 == 0 else reversed(order):
            bucket.append(plain(rows, pad))
    speedup = statistics.median(dynamic) / statistics.median(fixed)
    print(f"2. dynamic padding {statistics.median(dynamic):.1f} samples/s vs max_length=128 "
          f"{statistics.median(fixed):.1f} samples/s -> {speedup:.2f}x faster")  # fmt: skip
    return {"dynamic": dynamic, "max_length": fixed, "speedup": speedup}


def bench_memory(rows: int) -> dict:
    import psutil

    from services.core.config import get_settings
    from services.jobs.manager import JobManager

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLAYGROUND_HOME"] = str(Path(tmp) / "home")
        get_settings.cache_clear()
        manager = JobManager.from_settings()
        # The app has imported torch and transformers before serving (app.main); so does this process, so the
        # baseline is the app's and only what the job adds is measured.
        import transformers.pipelines  # noqa: F401

        from services.jobs.manager import launcher_command

        launcher_command("services", [])  # asks torch for the GPU count, as submitting a job does
        me = psutil.Process()
        before = max(me.memory_info().rss for _ in range(10) if time.sleep(0.05) is None)
        path = Path(tmp) / "job.yaml"
        path.write_text(yaml.safe_dump(config(rows, Path(tmp) / "run")))
        peak, child_peak, stop = [before], [0], threading.Event()

        def sample():
            while not stop.is_set():
                peak.append(me.memory_info().rss)
                child_peak.append(sum(c.memory_info().rss for c in me.children(recursive=True)))
                time.sleep(0.1)

        watcher = threading.Thread(target=sample, daemon=True)
        watcher.start()
        job_id = manager.submit_command("train", "bench", ["train", str(path)], title="bench")
        record = manager.wait(job_id, timeout=900)
        stop.set()
        watcher.join()
        manager.shutdown()
    grown = (max(peak) - before) / 2**20
    print(f"3. app process RSS {before / 2**20:.0f} MB before, peak {max(peak) / 2**20:.0f} MB while the job ran "
          f"(+{grown:.1f} MB); the child peaked at {max(child_peak) / 2**20:.0f} MB; job {record.status}")  # fmt: skip
    return {"before_mb": before / 2**20, "peak_mb": max(peak) / 2**20, "child_peak_mb": max(child_peak) / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--only", choices=["overhead", "padding", "memory"])
    args = parser.parse_args()
    print(f"bench.training · {platform.machine()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · "
          f"{args.rows} rows, 1 epoch, median of {args.runs}")  # fmt: skip
    if args.only in (None, "overhead"):
        bench_overhead(args.runs, args.rows)
    if args.only in (None, "padding"):
        bench_padding(args.runs, args.rows)
    if args.only in (None, "memory") and not args.skip_memory:
        bench_memory(args.rows)


if __name__ == "__main__":
    main()
