"""The Hugging Face Jobs side of the command line; `services.__main__` parses it.

python -m services train job.yaml --on hf-jobs --flavor a10g-small --nodes 2 [--timeout 2h]
    starts the run with the caller's HF_TOKEN, prints its progress, waits for it and prints the result as
    JSON; exits 0 when it succeeded with the result pushed to push_to_hub.repo_id, non-zero with a sentence
    when it failed or was cancelled (Ctrl-C cancels it on Hugging Face).
python -m services hf-jobs-node --repo R --run ID --nodes N --rank K
    what each job of a run executes (services.training.hf_jobs_node).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from services.cli_rag import print_json
from services.cli_rag import say as _say


class _Printer:
    """The run's events as lines on stderr (stdout keeps the final JSON)."""

    def progress(self, fraction: float, message: str | None = None) -> None:
        _say(f"[{fraction:4.0%}] {message or ''}")

    def log(self, line: str) -> None:
        _say(f"       {line}")

    def metrics(self, values: dict, step: int | None = None) -> None:
        shown = ", ".join(f"{k}={v:.4g}" for k, v in values.items() if isinstance(v, int | float)
                          and not k.startswith("measured_"))  # fmt: skip
        if shown:
            _say(f"       step {step}: {shown}")


def _token() -> str:
    from huggingface_hub import get_token

    return (os.environ.get("HF_TOKEN") or get_token() or "").strip()


def train_remote(args: argparse.Namespace) -> None:
    from services.training.config import TrainConfig
    from services.training.hf_jobs import follow, launch

    config = TrainConfig.from_yaml(args.config)
    run = launch(config, _token(), args.flavor, args.nodes, args.timeout, args.owner)
    _say(f"Started run {run.run_id} on Hugging Face Jobs: {run.nodes} x {run.flavor}, jobs {', '.join(run.jobs)}")
    for note in run.notes:
        _say(f"Note: {note}")
    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: cancel.set())  # Ctrl-C: cancel the run, then report it
    print_json(follow(run, _token(), _Printer(), cancel=cancel))


def cmd_node(args: argparse.Namespace) -> None:
    from services.training.hf_jobs_node import main

    code = main(args.repo, args.run, args.nodes, args.rank)
    if code:
        sys.exit(code)


def add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--on", choices=["local", "hf-jobs"], default="local",
                   help="where to train: this machine (default) or Hugging Face Jobs")  # fmt: skip
    p.add_argument("--flavor", default="cpu-basic", help="Hugging Face Jobs hardware, e.g. t4-small, a10g-small")
    p.add_argument("--nodes", type=int, default=1, help="Hugging Face Jobs: how many machines train together")
    p.add_argument("--timeout", default="2h", help="Hugging Face Jobs: the run's time limit (30m, 2h, ...)")


def add_node_command(add) -> None:
    p = add("hf-jobs-node", cmd_node, "What each job of a Hugging Face Jobs run executes (started by --on hf-jobs).")
    p.add_argument("--repo", required=True, help="the user's dataset repo holding runs/<run>/")
    p.add_argument("--run", required=True)
    p.add_argument("--nodes", type=int, default=1)
    p.add_argument("--rank", type=int, default=0)
