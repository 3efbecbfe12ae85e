"""Training on Hugging Face Jobs: the same ``python -m services train job.yaml`` on the hardware the user picks, one
node or several, followed from the app (or the CLI) like a local run.

- `launch`: checks the config (a remote run must push its result: ``push_to_hub.repo_id``; its base model must be one
  the job can load: packaged or a Hub id), puts job.yaml and an uploaded dataset into ``runs/<run>/`` of the user's
  private dataset repo ``<user>/hf-playground-runs``, and starts one job per node (`services.training.hf_jobs_node`
  runs in each; several nodes share a network group, node 0 claims the rendezvous alias). The image is the app's
  own: the Space's (``hf.co/spaces/$SPACE_ID``, built from its pinned requirements) or ``PLAYGROUND_JOBS_IMAGE``.
- `follow`: node 0's log lines are the training's JSON-lines events, so they feed the same progress, curves and
  report as a local job. A dropped log stream is followed again from where it was (lines already applied are
  skipped, so no point appears twice); Cancel calls ``cancel_job`` on every node; the end names the failed node,
  its last lines and a sentence.
- `start` / `reattach`: the app's side. The run is an app job of kind ``remote-train`` that holds no worker slot;
  its record keeps the Hugging Face job ids (never the token), so after an app restart the visitor's next look at
  it (with their token) follows it again.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from services.core.errors import PlaygroundError
from services.hub import jobs as hub_jobs
from services.hub.jobs import JobsError
from services.jobs.events import parse_event
from services.training.config import TrainConfig

KIND = "remote-train"
RUNS_REPO = "hf-playground-runs"
MAX_NODES = 8
MAX_TIMEOUT_S = 24 * 3600
DEFAULT_TIMEOUT = "2h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass
class Run:
    run_id: str
    namespace: str
    runs_repo: str
    target: str  # the repo the result is pushed to
    flavor: str
    nodes: int
    timeout_s: int
    jobs: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the run changed in the config, said to the user

    def to_dict(self) -> dict:
        return asdict(self)


def parse_timeout(value: str | int | float | None) -> int:
    """Seconds from 90, "90s", "30m", "2h" or "1d"; at most a day."""
    text = str(value if value not in (None, "") else DEFAULT_TIMEOUT).strip().lower()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhd]?)", text)
    if not match:
        raise PlaygroundError(f"'{value}' is not a time limit: write it like 30m, 2h or 3600 (seconds).")
    seconds = int(float(match.group(1)) * _UNITS[match.group(2) or "s"])
    if not 60 <= seconds <= MAX_TIMEOUT_S:
        raise PlaygroundError("The time limit of a run on Hugging Face Jobs must be between 1 minute and 24 hours.")
    return seconds


def image() -> str:
    """The image the jobs run: the app's own (its code and pinned requirements)."""
    import os

    if os.environ.get("PLAYGROUND_JOBS_IMAGE"):
        return os.environ["PLAYGROUND_JOBS_IMAGE"].strip()
    if os.environ.get("SPACE_ID"):
        return f"hf.co/spaces/{os.environ['SPACE_ID']}"
    raise JobsError(
        "Hugging Face Jobs runs the app's own image: run this from the Space, or set PLAYGROUND_JOBS_IMAGE to an "
        "image that holds the app (for example hf.co/spaces/your-name/hf-playground)."
    )


def check(config: TrainConfig, owner: str | None, nodes: int, timeout: str | int | None) -> int:
    """What can be refused before anything is uploaded; returns the time limit in seconds."""
    if not (config.push_to_hub or {}).get("repo_id"):
        raise PlaygroundError(
            "A run on Hugging Face Jobs saves its result to the Hub: set push_to_hub.repo_id in the config (for "
            "example your-name/my-model), or fill in 'Push to' in the form."
        )
    if not isinstance(nodes, int) or not 1 <= nodes <= MAX_NODES:
        raise PlaygroundError(f"The number of nodes must be a whole number from 1 to {MAX_NODES}.")
    from services.models.catalog import resolve

    resolved = resolve(config.model, owner)
    if resolved.source not in ("packaged", "hub") or Path(str(config.model)).expanduser().exists():
        raise PlaygroundError(
            f"'{config.model}' lives on this machine, so a job on Hugging Face cannot load it: push it to the Hub "
            "first and train from its Hub id, or pick a packaged or Hub model."
        )
    return parse_timeout(timeout)


def rendezvous_port(run_id: str) -> int:
    """Node 0's rendezvous port: any port works on a job's own machine; one per run keeps runs that share a machine
    (the local emulator's) apart."""
    return 20000 + int(run_id, 16) % 20000


def launch(config: TrainConfig, token: str, flavor: str, nodes: int = 1, timeout: str | int | None = None,
           owner: str | None = None) -> Run:  # fmt: skip
    """Upload the run's files and start its jobs; returns the run (its job ids, node 0 first)."""
    timeout_s = check(config, owner, nodes, timeout)
    if not token:
        raise PlaygroundError("A run on Hugging Face Jobs needs your Hugging Face token: sign in, or set HF_TOKEN.")
    flavors = [h.name for h in hub_jobs.hardware(token)]
    if flavor not in flavors:
        raise PlaygroundError(
            f"'{flavor}' is not a Hugging Face Jobs hardware flavor: pick one of {', '.join(flavors)}."
        )
    namespace = hub_jobs.namespace(token)
    run = Run(uuid.uuid4().hex[:10], namespace, f"{namespace}/{RUNS_REPO}", config.push_to_hub["repo_id"], flavor,
              nodes, timeout_s)  # fmt: skip
    data = config.to_dict()
    files: dict[str, Path | bytes] = {}
    source = Path(str(config.dataset.source)).expanduser()
    if source.is_file():  # an upload travels with the config; samples and Hub datasets are loaded by the job
        files[f"data/{source.name}"] = source
        data["dataset"]["source"] = f"data/{source.name}"
    data["output_dir"] = "output"
    lr = (data.get("training") or {}).get("learning_rate")
    if nodes > 1 and isinstance(lr, int | float) and lr > 0:
        # Each node takes its own batch, so one step sees `nodes` times the rows and there are that many times fewer
        # steps: the learning rate grows with them (linear scaling; measured in bench.hf_jobs: two nodes at the
        # single-machine rate ended 3.3 points of test accuracy behind one, at twice the rate 0.8 points ahead).
        data["training"]["learning_rate"] = lr * nodes
        run.notes.append(f"Learning rate {lr:g} x {nodes} nodes = {lr * nodes:g}: each step of the run sees {nodes} "
                         "batches, one per node, so it takes that many times fewer steps.")  # fmt: skip
    files["job.yaml"] = TrainConfig.from_dict(data).to_yaml().encode()
    hub_jobs.upload_run(token, run.runs_repo, run.run_id, files)
    group = f"playground-{run.run_id}" if nodes > 1 else None
    port = str(rendezvous_port(run.run_id))
    try:
        for rank in range(nodes):
            command = ["python", "-m", "services", "hf-jobs-node", "--repo", run.runs_repo, "--run", run.run_id,
                       "--nodes", str(nodes), "--rank", str(rank)]  # fmt: skip
            run.jobs.append(hub_jobs.run(
                token, image=image(), command=command, flavor=flavor, timeout=timeout_s, secrets={"HF_TOKEN": token},
                env={"PLAYGROUND_RDZV_PORT": port}, labels={"hf-playground-run": run.run_id, "node": str(rank)},
                name=f"playground-{run.run_id}-{rank}", network_group=group,
                network_aliases=["node-0"] if group and rank == 0 else None,
            ))  # fmt: skip
    except PlaygroundError:
        for job_id in run.jobs:  # a half-started run would wait forever for its missing nodes
            _quietly(hub_jobs.cancel, token, job_id)
        raise
    return run


def _quietly(action, *args) -> None:
    with contextlib.suppress(PlaygroundError):
        action(*args)


class RunCancelled(PlaygroundError):
    pass


class Detached(Exception):
    """The follower let go (the app is closing); the run goes on."""


def follow(run: Run, token: str, sink, cancel: threading.Event | None = None, seen: int = 0,
           on_seen=None, detach: threading.Event | None = None) -> dict:  # fmt: skip
    """Apply node 0's events to `sink` (progress, log, metrics) until every node has ended; returns the run's result
    ({"push": {...}, "stages": [...]}) or raises with a sentence. `seen`: log lines already applied (a reattach);
    `on_seen(n)` is told after each event line; `detach` set: stop following (raises `Detached`), the run goes on."""
    stop = threading.Event()
    if cancel is not None:
        threading.Thread(target=_cancel_when, args=(run, token, cancel, stop), daemon=True).start()
    result: dict = {}
    said: dict = {}  # the run's error event, if any
    drops = 0

    def apply(lines) -> None:
        nonlocal seen
        count = 0
        for line in lines:
            if detach is not None and detach.is_set():
                raise Detached()
            count += 1
            if count <= seen:
                continue
            seen = count
            event = parse_event(line)
            if event is None:
                sink.log(line)
                continue
            kind = event["type"]
            if kind == "progress":
                sink.progress(float(event.get("fraction") or 0.0), event.get("message"))
            elif kind == "metrics" and isinstance(event.get("values"), dict):
                sink.metrics(event["values"], event.get("step"))
            elif kind == "log":
                sink.log(str(event.get("line", "")))
            elif kind == "result" and isinstance(event.get("values"), dict):
                result.update(event["values"])
            elif kind == "error":
                said["error"] = str(event.get("message", ""))
            if on_seen is not None:
                on_seen(seen)

    try:
        while True:
            try:
                apply(hub_jobs.log_lines(token, run.jobs[0]))
            except JobsError:
                drops += 1
                if drops > 5:
                    raise
            if hub_jobs.stage(token, run.jobs[0])[0] in hub_jobs.TERMINAL:
                break
            sink.log("The log stream of the run was cut: following it again from where it stopped")
            time.sleep(min(10.0, 0.5 * 2**drops))
        # A stream cut just as the job ended is not reopened by huggingface_hub: read the whole log once more.
        with contextlib.suppress(JobsError):
            apply(hub_jobs.log_lines(token, run.jobs[0], follow=False))
        stages = [hub_jobs.wait_terminal(token, job_id) for job_id in run.jobs]
    finally:
        stop.set()
    error = said.get("error")
    return _outcome(run, token, stages, result, error, cancel)


def _cancel_when(run: Run, token: str, cancel: threading.Event, stop: threading.Event) -> None:
    while not stop.is_set():
        if cancel.wait(timeout=0.5):
            for job_id in run.jobs:
                _quietly(hub_jobs.cancel, token, job_id)
            return


def _outcome(run: Run, token: str, stages: list[tuple[str, str | None]], result: dict, error: str | None,
             cancel: threading.Event | None) -> dict:  # fmt: skip
    names = [s for s, _ in stages]
    summary = {**result, "stages": names, "run": run.run_id, "flavor": run.flavor, "nodes": run.nodes}
    if all(s == "COMPLETED" for s in names):
        url = hub_jobs.model_url(token, run.target)
        if url is None:
            raise PlaygroundError(f"The run finished, but {run.target} is not on the Hub: the push did not happen.")
        return {**summary, "repo_id": run.target, "url": url}
    if "CANCELED" in names and ((cancel is not None and cancel.is_set()) or "ERROR" not in names):
        raise RunCancelled("The run on Hugging Face Jobs was cancelled (its jobs are stopped).")
    failed = next(i for i, s in enumerate(names) if s not in ("COMPLETED",))
    status_message = stages[failed][1] or ""
    if "timeout" in status_message.lower():
        why = f"reached its time limit ({run.timeout_s // 60} minutes)"
    else:
        why = f"stopped with an error ({status_message or 'no message from the Hub'})"
    try:
        tail = [line for line in hub_jobs.log_lines(token, run.jobs[failed], follow=False, tail=8)
                if parse_event(line) is None]  # fmt: skip
    except PlaygroundError:
        tail = []
    # A traceback names the job's files and means little to a person: its frames are left out, its last line stays.
    tail = [t for t in tail if t.strip() and not t[:1].isspace() and not t.startswith("Traceback")]
    lines = " | ".join(t.strip() for t in tail[-4:])
    node = f"node {failed + 1} of {run.nodes}" if run.nodes > 1 else "the job"
    said = f"({node}): {error.rstrip('.')}" if error and "timeout" not in status_message.lower() else f": {node} {why}"
    raise PlaygroundError(f"The run on Hugging Face Jobs failed{said}." + (f" Its last lines: {lines}" if lines
                                                                          else ""))  # fmt: skip


def read_report(token: str, repo_id: str, into: Path) -> dict:
    """The pushed model downloaded into `into`, and its report and metrics."""
    folder = hub_jobs.download_model(token, repo_id, into)
    report = {}
    for name in ("report.json", "metrics.json"):
        if (folder / name).is_file():
            report[name.removesuffix(".json")] = json.loads((folder / name).read_text(encoding="utf-8"))
    return report
