"""Hugging Face Jobs for the local Hub emulator: the endpoints ``huggingface_hub.HfApi`` 2.4 calls for
``run_job``, ``inspect_job``, ``list_jobs``, ``fetch_job_logs`` (server-sent events), ``cancel_job`` and
``list_jobs_hardware``, with network groups.

A job's command runs the way a job's container would run it, as a local process: in the emulator's
``job_workdir`` (the "image": by default this checkout, so ``python -m services ...`` finds the app), with an
environment of its own (the job's ``environment`` and ``secrets``, ``HF_ENDPOINT`` pointing back at the emulator, a
fresh ``PLAYGROUND_HOME`` per job standing for the container's disk, ``HF_JOB_ID``) rather than the caller's.
Members of one network group all run on this machine, so inside each of them ``HF_NETWORK_GROUP_HOSTNAME`` is
``localhost`` (the real one resolves to every member) and ``HF_NETWORK_GROUP_PREFIX`` is empty.

Who may run jobs: a token whose entry has ``"jobs": False`` lacks the permission (403), a user whose entry has
``"plan": "free"`` has no Jobs access (402). Faults for tests, on ``HubState.job_faults``: ``schedule_s`` (seconds a
job waits in SCHEDULING, default 0.2) and ``drop_logs_after`` (a log stream breaks once per job after that many
lines, mid-chunk, as a dropped connection does).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
_HW = [
    # name, pretty name, cpu, ram, accelerator (model, quantity, vram) or None, micro-USD per minute
    ("cpu-basic", "CPU Basic", "2 vCPU", "16 GB", None, 167),
    ("cpu-upgrade", "CPU Upgrade", "8 vCPU", "32 GB", None, 500),
    ("t4-small", "Nvidia T4 - small", "4 vCPU", "15 GB", ("T4", "1", "16 GB"), 6667),
    ("a10g-small", "Nvidia A10G - small", "4 vCPU", "15 GB", ("A10G", "1", "24 GB"), 16667),
    ("a10g-large", "Nvidia A10G - large", "12 vCPU", "46 GB", ("A10G", "1", "24 GB"), 25000),
    ("a100-large", "Nvidia A100 - large", "12 vCPU", "142 GB", ("A100", "1", "80 GB"), 41667),
    ("h200", "Nvidia H200", "23 vCPU", "256 GB", ("H200", "1", "141 GB"), 83333),
]
HARDWARE = [
    {
        "name": name, "prettyName": pretty, "cpu": cpu, "ram": ram, "ephemeralStorage": "50 GB",
        "accelerator": None if acc is None else
        {"type": "gpu", "model": acc[0], "quantity": acc[1], "vram": acc[2], "manufacturer": "Nvidia"},
        "unitCostMicroUSD": cost, "unitCostUSD": cost / 1e6, "unitLabel": "minute",
    }
    for name, pretty, cpu, ram, acc, cost in _HW
]  # fmt: skip
# The caller's variables a container would not have (the emulator's own process runs the tests).
_NOT_INHERITED = ("HF_", "PLAYGROUND_", "HUGGING_FACE_", "PYTEST", "SPACE_ID")


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass
class EmuJob:
    id: str
    namespace: str
    spec: dict[str, Any]
    stage: str = "SCHEDULING"
    message: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    logs: list[dict[str, str]] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen | None = None
    dropped: bool = False
    home: str = ""

    def to_json(self, owner_id: str) -> dict[str, Any]:
        spec = self.spec
        running = (self.finished or time.time()) - self.started if self.started else None
        data = {
            "id": self.id,
            "createdAt": _iso(self.created),
            "startedAt": _iso(self.started),
            "finishedAt": _iso(self.finished),
            "command": spec.get("command"),
            "arguments": spec.get("arguments", []),
            "environment": spec.get("environment", {}),
            "secrets": {name: "********" for name in spec.get("secrets", {})},  # never echoed back
            "flavor": spec.get("flavor"),
            "labels": spec.get("labels"),
            "status": {"stage": self.stage, "message": self.message},
            "owner": {"id": owner_id, "name": self.namespace, "type": "user"},
            "durations": {
                "schedulingSecs": int((self.started or time.time()) - self.created),
                "runningSecs": None if running is None else int(running),
                "totalSecs": int((self.finished or time.time()) - self.created),
            },
            "type": "job",
        }
        if "network" in spec:
            data["network"] = spec["network"]
        data["spaceId" if "spaceId" in spec else "dockerImage"] = spec.get("spaceId") or spec.get("dockerImage")
        return data


@dataclass
class JobsState:
    jobs: dict[str, EmuJob] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(default_factory=threading.Condition)
    workdir: Path = ROOT
    faults: dict[str, Any] = field(default_factory=dict)


class JobsRoutes:
    """Mixed into the emulator's request handler (which provides `_require_auth`, `_json`, `_json_body`, `state`).
    Served outside the emulator's global lock: a log stream stays open for as long as its job runs."""

    state: Any
    hub_error: Any  # the emulator's HubError (set by the handler class: `python -m` runs it as __main__)

    def _jobs_identity(self, namespace: str) -> dict[str, Any]:
        ident = self._require_auth()  # type: ignore[attr-defined]
        if namespace not in [ident["user"], *ident["orgs"]]:
            raise self.hub_error(403, f"You don't have the rights to run Jobs in the namespace {namespace}")
        return ident

    def _jobs_can_run(self, ident: dict[str, Any]) -> None:
        if ident.get("jobs") is False or ident.get("role") != "write":
            raise self.hub_error(403, "This token is not allowed to run Jobs: it lacks the 'job.write' permission")
        if ident.get("plan") == "free":
            raise self.hub_error(402, "Jobs are available to PRO users and Team or Enterprise organizations")

    def _job(self, namespace: str, job_id: str) -> EmuJob:
        self._jobs_identity(namespace)
        job = self.state.jobs_state.jobs.get(job_id)
        if job is None or job.namespace != namespace:
            raise self.hub_error(404, "Job not found")
        return job

    def jobs_hardware(self, query: dict[str, str]) -> None:
        self._json(200, HARDWARE)  # type: ignore[attr-defined]

    def jobs_create(self, query: dict[str, str], ns: str) -> None:
        ident = self._jobs_identity(ns)
        self._jobs_can_run(ident)
        spec = self._json_body()  # type: ignore[attr-defined]
        flavors = [h["name"] for h in HARDWARE]
        if spec.get("flavor") not in flavors:
            raise self.hub_error(400, f"Invalid flavor '{spec.get('flavor')}': expected one of {', '.join(flavors)}")
        if not isinstance(spec.get("command"), list) or not spec["command"]:
            raise self.hub_error(400, "A job needs a command")
        jobs: JobsState = self.state.jobs_state
        job = EmuJob(hashlib.sha1(f"{ns}:{time.time_ns()}".encode()).hexdigest()[:24], ns, spec)
        with jobs.lock:
            jobs.jobs[job.id] = job
        threading.Thread(target=_run, args=(self.state, job, self.base_url), daemon=True).start()  # type: ignore[attr-defined]
        self._json(200, job.to_json(_owner_id(ns)))  # type: ignore[attr-defined]

    def jobs_list(self, query: dict[str, str], ns: str) -> None:
        self._jobs_identity(ns)
        jobs = [j.to_json(_owner_id(ns)) for j in self.state.jobs_state.jobs.values() if j.namespace == ns]
        self._json(200, jobs)  # type: ignore[attr-defined]

    def jobs_inspect(self, query: dict[str, str], ns: str, job_id: str) -> None:
        self._json(200, self._job(ns, job_id).to_json(_owner_id(ns)))  # type: ignore[attr-defined]

    def jobs_cancel(self, query: dict[str, str], ns: str, job_id: str) -> None:
        job = self._job(ns, job_id)
        job.cancel.set()
        with self.state.jobs_state.lock:  # with _run's start: a cancel never misses a process just started
            if job.proc is not None and job.proc.poll() is None:
                _signal(job.proc, signal.SIGTERM)
        self._json(200, {})  # type: ignore[attr-defined]

    def jobs_logs(self, query: dict[str, str], ns: str, job_id: str) -> None:
        """Server-sent events: every line so far (or the last `tail`), then new ones until the job ends."""
        job = self._job(ns, job_id)
        jobs: JobsState = self.state.jobs_state
        self.send_response(200)  # type: ignore[attr-defined]
        self.send_header("Content-Type", "text/event-stream")  # type: ignore[attr-defined]
        self.send_header("Transfer-Encoding", "chunked")  # type: ignore[attr-defined]
        self.send_header("Connection", "close")  # type: ignore[attr-defined]
        self.end_headers()  # type: ignore[attr-defined]
        self.close_connection = True
        sent = max(0, len(job.logs) - int(query["tail"])) if query.get("tail") else 0
        drop_after = jobs.faults.get("drop_logs_after")
        count, last_beat = 0, time.monotonic()
        while True:
            with jobs.changed:
                if len(job.logs) <= sent and job.stage not in TERMINAL:
                    jobs.changed.wait(timeout=1.0)
            lines = job.logs[sent:]
            for event in lines:
                if drop_after is not None and not job.dropped and count >= int(drop_after):
                    job.dropped = True
                    self.wfile.write(b'40\r\ndata: {"broken')  # type: ignore[attr-defined]  # a chunk cut short
                    self.wfile.flush()  # type: ignore[attr-defined]
                    return
                self._chunk(f"data: {json.dumps(event)}\n\n")
                sent, count = sent + 1, count + 1
            if not lines and time.monotonic() - last_beat > 10:
                self._chunk(": keep-alive\n\n")
                last_beat = time.monotonic()
            if job.stage in TERMINAL and sent >= len(job.logs):
                self._chunk("")
                return

    def _chunk(self, text: str) -> None:
        body = text.encode()
        self.wfile.write(f"{len(body):x}\r\n".encode() + body + b"\r\n")  # type: ignore[attr-defined]
        self.wfile.flush()  # type: ignore[attr-defined]


def _owner_id(namespace: str) -> str:
    return hashlib.md5(namespace.encode()).hexdigest()[:24]


def _signal(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _log(state: Any, job: EmuJob, line: str) -> None:
    jobs: JobsState = state.jobs_state
    with jobs.changed:
        job.logs.append({"timestamp": _iso(time.time()), "data": line})
        jobs.changed.notify_all()


def _finish(state: Any, job: EmuJob, stage: str, message: str | None = None) -> None:
    jobs: JobsState = state.jobs_state
    with jobs.changed:
        job.stage, job.message, job.finished = stage, message, time.time()
        jobs.changed.notify_all()


def _environment(job: EmuJob, emulator_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_NOT_INHERITED)}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")  # the image's `python`
    job.home = tempfile.mkdtemp(prefix=f"emulated-job-{job.id[:8]}-")
    env.update(
        HF_ENDPOINT=emulator_url, HF_HUB_DISABLE_XET="1", HF_HUB_DISABLE_TELEMETRY="1", HF_JOB_ID=job.id,
        PLAYGROUND_HOME=job.home, PYTHONUNBUFFERED="1", CUDA_VISIBLE_DEVICES="",
    )  # fmt: skip
    # Converted packaged models are part of the image (its build converted them), not of each job's disk.
    if os.environ.get("PLAYGROUND_PACKS_DIR"):
        env["PLAYGROUND_PACKS_DIR"] = os.environ["PLAYGROUND_PACKS_DIR"]
    if "network" in job.spec:
        env.update(HF_NETWORK_GROUP_HOSTNAME="localhost", HF_NETWORK_GROUP_PREFIX="")
    env.update({str(k): str(v) for k, v in (job.spec.get("environment") or {}).items()})
    env.update({str(k): str(v) for k, v in (job.spec.get("secrets") or {}).items()})
    return env


def _run(state: Any, job: EmuJob, emulator_url: str) -> None:
    """Schedule, run and supervise one job's command (the job's container, emulated)."""
    jobs: JobsState = state.jobs_state
    if job.cancel.wait(timeout=float(jobs.faults.get("schedule_s", 0.2))):
        _finish(state, job, "CANCELED", "Canceled by user")
        return
    env = _environment(job, emulator_url)
    with jobs.lock:
        if job.cancel.is_set():
            _finish(state, job, "CANCELED", "Canceled by user")
            return
        job.stage, job.started = "RUNNING", time.time()
        _log(state, job, f"===== Job started at {_iso(job.started)} =====")
        try:
            job.proc = subprocess.Popen(
                [*job.spec["command"], *job.spec.get("arguments", [])], cwd=jobs.workdir, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", bufsize=1, start_new_session=True,
            )  # fmt: skip
        except OSError as err:
            _log(state, job, f"exec failed: {err}")
            _finish(state, job, "ERROR", "Job failed to start")
            return
    timeout = job.spec.get("timeoutSeconds")
    timer = None
    if timeout:
        timer = threading.Timer(float(timeout), lambda: (job.__setattr__("message", "timeout"),
                                                         _signal(job.proc, signal.SIGKILL)))  # fmt: skip
        timer.daemon = True
        timer.start()
    assert job.proc.stdout is not None
    for line in job.proc.stdout:
        _log(state, job, line.rstrip("\n"))
    code = job.proc.wait()
    _signal(job.proc, signal.SIGKILL)  # what the command left behind goes with its container
    if timer is not None:
        timer.cancel()
    if job.cancel.is_set():
        _finish(state, job, "CANCELED", "Canceled by user")
    elif job.message == "timeout":
        _finish(state, job, "ERROR", f"Job timeout after {timeout} seconds")
    elif code == 0:
        _finish(state, job, "COMPLETED")
    else:
        _finish(state, job, "ERROR", f"Job failed with exit code: {code}")


JOB_ROUTES = [
    ("GET", r"/api/jobs/hardware", JobsRoutes.jobs_hardware),
    ("POST", r"/api/jobs/(?P<ns>[^/]+)", JobsRoutes.jobs_create),
    ("GET", r"/api/jobs/(?P<ns>[^/]+)", JobsRoutes.jobs_list),
    ("GET", r"/api/jobs/(?P<ns>[^/]+)/(?P<job_id>[0-9a-f]+)", JobsRoutes.jobs_inspect),
    ("POST", r"/api/jobs/(?P<ns>[^/]+)/(?P<job_id>[0-9a-f]+)/cancel", JobsRoutes.jobs_cancel),
    ("GET", r"/api/jobs/(?P<ns>[^/]+)/(?P<job_id>[0-9a-f]+)/logs", JobsRoutes.jobs_logs),
]
