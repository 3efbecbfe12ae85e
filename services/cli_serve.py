"""The `python -m services serve | api-key | bundle | export-onnx | check-fast-cpu` commands; `services.__main__`
parses them.

`export-onnx` lives here rather than in `services.serve`: an adapter is merged into its base first, with
`services.training.merge`, which `services.serve` (a sibling of `services.training`) may not import.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from services.cli_rag import print_json


def cmd_serve(args: argparse.Namespace) -> None:
    """The REST API alone (no UI) with uvicorn: the same endpoints as on the app's port."""
    import uvicorn

    from services.serve.api import create_api

    uvicorn.run(create_api(), host=args.host, port=args.port, log_level="warning")


def cmd_api_key(args: argparse.Namespace) -> None:
    from services.serve.auth import api_key

    print_json({"owner": args.owner, "api_key": api_key(args.owner)})


def cmd_bundle(args: argparse.Namespace) -> None:
    from services.serve.bundle import build, zip_bundle

    result = build(args.model, Path(args.output_dir), owner=args.owner)
    if args.zip:
        result["zip"] = str(zip_bundle(Path(result["folder"])))
    print_json(result)


def cmd_export_onnx(args: argparse.Namespace) -> None:
    """The model (an adapter merged into its base first) as ONNX float32 and int8, with the parity and speed
    reports; with --samples (JSON lines of {"text", "label"}) the parity report also has the accuracy."""
    import contextlib
    import json
    import sys
    import tempfile

    from services.jobs.events import EventWriter
    from services.models import loading
    from services.models.catalog import resolve
    from services.serve.onnx_export import export, export_task

    events = EventWriter()
    resolved = resolve(args.model, args.owner)
    task = args.task or export_task(resolved.tasks)
    samples = labels = None
    held_out = None if args.samples else _held_out(resolved)
    if held_out:
        samples, labels = held_out
    if args.samples:
        rows = [json.loads(line) for line in Path(args.samples).read_text(encoding="utf-8").splitlines() if line]
        samples = [row["text"] for row in rows]
        labels = [row["label"] for row in rows] if all("label" in row for row in rows) else None
    # torch.onnx prints its stages on stdout, where a job's events go: they go to stderr (the job's log) instead.
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stdout(sys.stderr):
        if resolved.source == "adapter":  # ONNX runs one plain model: merge the adapter into its base first
            from services.training.merge import merge

            events.progress(0.02, "Merging the adapter into its base model")
            folder = Path(tmp) / "merged"
            merge(args.model, folder, owner=args.owner)
        else:
            folder = Path(loading.load(args.model, task, owner=args.owner).location)
        report = export(folder, Path(args.output_dir), task, quantize=not args.no_quantize,
                        progress=events.progress, samples=samples, labels=labels, source=args.model)  # fmt: skip
    events.result(report)
    print_json(report)


def cmd_check_fast_cpu(args: argparse.Namespace) -> None:
    """The fast CPU copy of SmolLM2 against the float32 model: agreement, probabilities, tokens/s (a job's result)."""
    import contextlib
    import sys

    from services.jobs.events import EventWriter
    from services.serve.fast_report import check

    events = EventWriter()
    with contextlib.redirect_stdout(sys.stderr):  # a job's events own stdout
        report = check(tokens=args.tokens, runs=args.runs, progress=events.progress)
    events.result(report)
    print_json(report)


def _held_out(resolved, cap: int = 256) -> tuple[list[str], list[str]] | None:
    """A model trained on a bundled sample is judged on that sample's held-back test split (its job.yaml says
    which), so the report's label agreement and accuracy are on data the model never saw; else None."""
    import csv

    import yaml

    from services.data.sources import SAMPLES_DIR

    job = Path(str(resolved.location)) / "job.yaml"
    if not job.is_file():
        return None
    dataset = (yaml.safe_load(job.read_text(encoding="utf-8")) or {}).get("dataset") or {}
    source = str(dataset.get("source") or "")
    test = SAMPLES_DIR / source / "test.csv"
    if not source.startswith("samples/") or not test.is_file():
        return None
    with test.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))[:cap]
    text, label = dataset.get("text_column", "text"), dataset.get("label_column", "label")
    if not rows or text not in rows[0] or label not in rows[0]:
        return None
    return [row[text] for row in rows], [row[label] for row in rows]


def register(add) -> None:
    """Add the commands to the parser (`add(name, func, help)` returns the sub-parser, with --owner)."""
    p = add("serve", cmd_serve, "Serve the OpenAI-compatible REST API alone (no UI) with uvicorn.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    add("api-key", cmd_api_key, "Print your API key for the REST API (it acts as --owner).")
    p = add("bundle", cmd_bundle, "Write a standalone server for one model: server.py, requirements, Dockerfile.")
    p.add_argument("model", help="catalog id, trained:<name>, Hub id or folder (chat, embeddings or classifier)")
    p.add_argument("--output-dir", required=True, help="a new (or empty) folder for the bundle")
    p.add_argument("--zip", action="store_true", help="also write the folder as a zip beside it")
    p = add(
        "export-onnx", cmd_export_onnx, "Export an encoder to ONNX (float32 and int8) with parity and speed reports."
    )
    p.add_argument("model", help="catalog id, trained:<name>, adapter, Hub id or folder (an encoder)")
    p.add_argument("--output-dir", required=True, help="model.onnx, model.int8.onnx, tokenizer, onnx_report.json")
    p.add_argument("--task", help="text-classification, token-classification, question-answering, sentence-similarity")
    p.add_argument("--samples", help='JSON lines of {"text", "label"} to judge parity and accuracy on')
    p.add_argument("--no-quantize", action="store_true", help="float32 only")
    what = "Check smollm2-135m-instruct-fast-cpu against the float32 model: same answers, how much faster."
    p = add("check-fast-cpu", cmd_check_fast_cpu, what)
    p.add_argument("--tokens", type=int, default=24, help="new tokens per prompt compared")
    p.add_argument("--runs", type=int, default=3, help="timed rounds per model")
