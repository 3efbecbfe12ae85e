"""One greedy visitor against another visitor's `/run`: does the greedy one slow it by more than 2x? (issue 13)

    python -m bench.fairness [--requests 40] [--rounds 2]

The app runs as a Space runs it (`python app.py` with SPACE_ID set, offline, the default caps) in its own process.
The victim is one visitor sending `/run` (zero-shot classification with the packaged MiniLM, a request of a few
tens of milliseconds) one after another over plain HTTP. The greedy visitor, meanwhile, from several threads of one
gradio_client in a process of its own at the lowest CPU priority (an attacker's client runs on their machine, not on
the Space's cores): keeps as many fine-tuning and tokenizer-training jobs going as it may (a new one each time one is
refused or ends), streams the longest generations it may (`/generate`, SmolLM2, 1,024 new tokens, from two threads),
and sends huge inputs (5 MB to `/tokenize`, 20,000 zero-shot labels). Baseline: the same victim requests with the
greedy visitor gone, measured in the same run, alternating quiet and greedy phases (`--rounds`). Prints medians and
the ratio greedy/quiet.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABELS = json.dumps({"candidate_labels": ["travel", "sports", "cooking"]})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(home: Path, settings: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """`python app.py` as a Space runs it, with the default caps (`settings`: environment to change them)."""
    port = _free_port()
    skip = ("PLAYGROUND_MAX_", "PLAYGROUND_JOB_SLOTS", "PLAYGROUND_REQUESTS_PER_S")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(SPACE_ID="bench/fairness", HF_HUB_OFFLINE="1", PLAYGROUND_HOME=str(home), GRADIO_SERVER_PORT=str(port))
    env.setdefault("PLAYGROUND_PACKS_DIR", str(ROOT / ".playground" / "packs"))
    env.update(settings or {})
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=2):
                return proc, url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the app did not start")


class Greedy:
    """The greedy visitor: jobs, long generations and huge inputs, until stopped (then everything it started is
    cancelled and waited for, so the next quiet phase is quiet)."""

    def __init__(self, url: str, parts: tuple[str, ...] = ("jobs", "generate", "huge")):
        self.client = visitor(url)
        self.stop = threading.Event()
        self.counts = {"jobs accepted": 0, "generations": 0, "refused": 0}
        self.streams: list = []
        self.lock = threading.Lock()
        work = {"jobs": [self.jobs], "generate": [self.generate, self.generate], "generate1": [self.generate],
                "huge": [self.huge]}  # fmt: skip
        self.threads = [threading.Thread(target=f, daemon=True) for part in parts for f in work[part]]

    def _count(self, kind: str) -> None:
        with self.lock:
            self.counts[kind] += 1

    def jobs(self) -> None:
        """Fine-tuning jobs (MiniLM on the sentiment sample) and tokenizer trainings, as many as it may have."""
        finetune = json.dumps({"task": "text-classification", "model": "all-minilm-l6-v2",
                               "dataset": {"source": "samples/sentiment", "label_column": "label"},
                               "training": {"num_train_epochs": 3}})  # fmt: skip
        while not self.stop.is_set():
            name = f"greedy-{uuid.uuid4().hex[:8]}"
            tokenizer = json.dumps({"name": name, "vocab_size": 8000, "model": "bpe"})
            for args, api in (((finetune, name), "/finetune"), ((tokenizer,), "/train_tokenizer")):
                try:
                    self.client.predict(*args, api_name=api)
                    self._count("jobs accepted")
                except Exception:  # the visitor's quota of jobs
                    self._count("refused")
                time.sleep(0.2)

    def generate(self) -> None:
        while not self.stop.is_set():
            stream = self.client.submit("smollm2-135m-instruct", "Write a very long story about a lighthouse.",
                                        '{"max_new_tokens": 1024}', api_name="/generate")  # fmt: skip
            with self.lock:
                self.streams.append(stream)
            try:
                stream.result()
                self._count("generations")
            except Exception:  # one generation at a time per visitor, or cancelled at the end
                self._count("refused")

    def huge(self) -> None:
        labels = json.dumps({"candidate_labels": [f"label {i}" for i in range(20_000)]})
        calls = [("all-minilm-l6-v2", "x" * 5_000_000, True, "/tokenize"),
                 ("zero-shot-classification", "all-minilm-l6-v2", "x", labels, "/run")]  # fmt: skip
        while not self.stop.is_set():
            for *args, api in calls:
                try:
                    self.client.predict(*args, api_name=api)
                except Exception:  # refused: a cap
                    self._count("refused")

    def __enter__(self) -> Greedy:
        for thread in self.threads:
            thread.start()
        time.sleep(5)  # let the jobs and the generation get going
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        with self.lock:
            for stream in self.streams:
                stream.cancel()
        for thread in self.threads:
            thread.join(timeout=60)
        while True:  # its jobs cancelled and gone before the next quiet phase
            active = [j for j in self.client.predict(api_name="/jobs") if j["status"] in ("queued", "running")]
            if not active:
                break
            for job in active:
                self.client.predict(job["id"], api_name="/cancel_job")
            time.sleep(1)
        self.counts["jobs succeeded"] = sum(j["status"] == "succeeded" for j in self.client.predict(api_name="/jobs"))


def visitor(url: str):
    """A gradio_client visitor with its own owner cookie, as a browser has (the per-visitor limits key on it)."""
    from gradio_client import Client

    return Client(url, verbose=False, headers={"Cookie": f"hfpg_owner={secrets.token_urlsafe(32)}"})


class Victim:
    """The other visitor: `/run` over plain HTTP (Gradio's REST call API, two requests each), so that what is timed
    is the server's answer, not gradio_client's own Python on the same two cores."""

    def __init__(self, url: str):
        import httpx

        cookie = f"hfpg_owner={secrets.token_urlsafe(32)}"
        self.http = httpx.Client(base_url=url, timeout=120, headers={"Cookie": cookie})

    def run(self, text: str) -> None:
        data = {"data": ["zero-shot-classification", "all-minilm-l6-v2", text, LABELS]}
        event_id = self.http.post("gradio_api/call/run", json=data).json()["event_id"]
        body = self.http.get(f"gradio_api/call/run/{event_id}").text
        if "event: complete" not in body:
            raise RuntimeError(f"the victim's /run failed: {body[:300]}")


def victim_latencies(victim: Victim, requests: int) -> list[float]:
    samples = []
    for i in range(requests):
        started = time.perf_counter()
        victim.run(f"I booked a flight to Rome, trip {i}")
        samples.append(time.perf_counter() - started)
    return samples


def run_greedy(url: str, parts: str) -> None:
    """The greedy visitor's own process (`--greedy-worker`): it runs until its stdin closes, then prints what it
    did as JSON. It runs at the lowest CPU priority: on a real Space the attacker's client runs on their machine,
    not on the Space's two cores, so its own CPU must not count against the victim."""
    os.nice(19)
    with Greedy(url, tuple(parts.split(","))) as g:
        sys.stdin.read()
    print(json.dumps(g.counts))


class GreedyProcess:
    def __init__(self, url: str, parts: str):
        self.args = [sys.executable, "-m", "bench.fairness", "--greedy-worker", url, "--greedy", parts]

    def __enter__(self) -> GreedyProcess:
        self.proc = subprocess.Popen(self.args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        time.sleep(8)  # its client connects, then the jobs and the generation get going
        return self

    def __exit__(self, *exc) -> None:
        out, _ = self.proc.communicate("", timeout=300)
        self.counts = json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40, help="victim requests per phase")
    parser.add_argument("--rounds", type=int, default=2, help="quiet + greedy phase pairs")
    parser.add_argument("--greedy", default="jobs,generate,huge", help="what the greedy visitor does (comma list)")
    parser.add_argument("--app-env", action="append", default=[], metavar="NAME=VALUE", help="a setting of the app")
    parser.add_argument("--greedy-worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.greedy_worker:
        return run_greedy(args.greedy_worker, args.greedy)
    with tempfile.TemporaryDirectory(prefix="bench-fairness-") as home:
        proc, url = start_app(Path(home), dict(item.split("=", 1) for item in args.app_env))
        try:
            victim = Victim(url)
            victim_latencies(victim, 5)  # warm: the model loaded, the connection open
            quiet, greedy, counts = [], [], []
            for _ in range(args.rounds):
                quiet += victim_latencies(victim, args.requests)
                with GreedyProcess(url, args.greedy) as g:
                    greedy += victim_latencies(victim, args.requests)
                counts.append(g.counts)
                time.sleep(3)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    q, gr = statistics.median(quiet) * 1000, statistics.median(greedy) * 1000
    p90 = statistics.quantiles(greedy, n=10)[-1] * 1000
    print(f"victim /run, quiet:  median {q:.1f} ms (n={len(quiet)})")
    print(f"victim /run, greedy: median {gr:.1f} ms, p90 {p90:.1f} ms (n={len(greedy)})")
    print(f"greedy visitor meanwhile (per round): {counts}")
    print(f"ratio greedy / quiet: {gr / q:.2f}x (goal <= 2x)")


if __name__ == "__main__":
    main()
