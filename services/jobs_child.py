"""The child-process half of the job engine: start ``python -m services ...`` (under ``accelerate launch`` with
several GPUs), read its JSON-lines events, cancel it gracefully, and never let it outlive its supervisor.

`ChildProcessJobs` is mixed into `services.jobs.JobManager`, which provides `store`, `cancel_grace_s`, the
`_lock`/`_procs` bookkeeping and the `_on_*` reporting methods used here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.events import parse_event
from services.redact import HUB_TOKEN_VARS, mask, redact

if TYPE_CHECKING:
    from services.jobs import JobContext

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def process_identity(pid: int) -> str | None:
    """pid plus start time, so a recycled pid is never mistaken for the process we started."""
    try:
        import psutil

        return f"{pid}:{psutil.Process(pid).create_time():.2f}"
    except Exception:
        return None


def identity_alive(identity: str | None) -> bool:
    if not identity:
        return False
    pid = int(identity.split(":")[0])
    return process_identity(pid) == identity


class ChildProcessJobs:
    """Supervision of child-process jobs (see the module docstring)."""

    store: Any
    cancel_grace_s: float
    _lock: threading.Lock
    _procs: dict[str, subprocess.Popen]

    def _run_child(self, job_id: str, command: list[str], env: dict[str, str], ctx: JobContext) -> None:
        log_path = ctx.workdir / "output.log"
        proc = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=_child_environment(job_id, ctx.workdir, env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,  # its own process group: cancel reaches accelerate's workers too
        )
        with self._lock:
            self._procs[job_id] = proc
        watcher = threading.Thread(target=self._watch, args=(job_id, proc, ctx._cancel), daemon=True)
        watcher.start()
        error_message = None
        tail: list[str] = []
        try:
            self.store.update(job_id, child=process_identity(proc.pid))
            with open(log_path, "a", encoding="utf-8") as log_file:
                assert proc.stdout is not None
                for raw in proc.stdout:
                    line = mask(raw.rstrip("\n"))
                    event = parse_event(line)
                    if event is None:
                        log_file.write(line + "\n")
                        log_file.flush()
                        tail = [*tail[-19:], line]
                        self._on_log(job_id, line)
                    elif event["type"] == "error":
                        error_message = mask(str(event.get("message", "")))
                        self._on_log(job_id, f"Error: {error_message}")
                    else:
                        self._on_child_event(job_id, event)
            code = proc.wait()
        finally:
            # Whatever broke the supervisor, the child must not outlive it: stop the whole group.
            if proc.poll() is None:
                self._stop_process(proc)
            with self._lock:
                self._procs.pop(job_id, None)
        if ctx.cancelled:
            self._finish(job_id, "cancelled", message="Cancelled (work saved so far is kept)")
        elif code == 0:
            self._finish(job_id, "succeeded")
        elif code in (-signal.SIGKILL, 137):
            self._finish(job_id, "failed", error="The job was killed, most likely because it ran out of memory.")
        else:
            reason = error_message or next((t for t in reversed(tail) if t.strip()), "") or f"exit status {code}"
            self._finish(job_id, "failed", error=reason)

    def retry(self, job_id: str, owner: str, env: dict[str, str] | None = None) -> str:
        """Start a finished command job again (same command, title and config) as a new job; returns its id.

        Only jobs that did not succeed are retried. Secrets were never stored, so the caller hands them over again
        in `env` (a push gets the user's token this way)."""
        from services.errors import PlaygroundError

        record = self.get(job_id, owner)  # type: ignore[attr-defined]
        if not record.done or record.status == "succeeded":
            raise PlaygroundError("Only a job that failed, was cancelled or was interrupted can be started again.")
        if not record.command:
            raise PlaygroundError("This job cannot be started again from here: start it again from its tab.")
        new = self._create(  # type: ignore[attr-defined]
            record.kind, owner, record.title, record.config, record.needs_gpu, command=record.command
        )
        command = list(record.command)
        self._start(new, record.config or {}, lambda ctx: self._run_child(new.id, command, env or {}, ctx))  # type: ignore[attr-defined]
        return new.id

    def _watch(self, job_id: str, proc: subprocess.Popen, cancel: threading.Event) -> None:
        """Turn Cancel into SIGTERM (then SIGKILL after the grace period); reap leftovers once the child exits."""
        while proc.poll() is None:
            if cancel.wait(timeout=0.5):
                self._set_message(job_id, "Stopping: the job is saving its work")
                self._stop_process(proc)
                break
        # Workers the child left behind (accelerate's, say) would hold the output pipe open forever.
        self._signal_group(proc, signal.SIGKILL)

    def _stop_process(self, proc: subprocess.Popen) -> None:
        self._signal_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout=self.cancel_grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("Process %d ignored SIGTERM for %.0f s: killing it", proc.pid, self.cancel_grace_s)
            self._signal_group(proc, signal.SIGKILL)
            proc.wait()

    @staticmethod
    def _signal_group(proc: subprocess.Popen, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)

    def _on_child_event(self, job_id: str, event: dict) -> None:
        """Apply one event from a child; a malformed one becomes a log line, never a supervisor crash."""
        kind = event["type"]
        try:
            if kind == "progress":
                self._on_progress(job_id, float(event.get("fraction") or 0.0), event.get("message"))
            elif kind == "log":
                self._on_log(job_id, str(event.get("line", "")))
            elif kind == "metrics" and isinstance(event.get("values"), dict):
                step = event.get("step")
                self._on_metrics(job_id, event["values"], step if isinstance(step, int) else None)
            elif kind == "artifact":
                self._on_artifact(job_id, {k: v for k, v in event.items() if k != "type"})
            elif kind == "result" and isinstance(event.get("values"), dict):
                self.store.update(job_id, result=redact(event["values"]))
            else:
                self._on_log(job_id, f"(ignored event) {json.dumps(event)[:500]}")
        except (TypeError, ValueError) as err:
            self._on_log(job_id, f"(ignored malformed {kind} event: {err})")

    def _stop_children(self) -> None:
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                self._signal_group(proc, signal.SIGTERM)


def _child_environment(job_id: str, workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The child's environment: the app's, offline when the app is, and on a Space without the Space's own token
    (a visitor's job runs with the visitor's token, passed in `extra`, or none)."""
    from services.config import get_settings

    settings = get_settings()
    env = dict(os.environ)
    if settings.on_space:
        for name in HUB_TOKEN_VARS:
            env.pop(name, None)
    if settings.offline:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    env.update({"PYTHONUNBUFFERED": "1", "PLAYGROUND_JOB_ID": job_id, "PLAYGROUND_JOB_DIR": str(workdir)})
    return env


def launcher_command(module: str, args: list[str]) -> list[str]:
    """``python -m MODULE ARGS``, under ``accelerate launch`` when more than one GPU is present."""
    gpus = _gpu_count()
    if gpus > 1:
        return [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(gpus), "-m", module, *args]
    return [sys.executable, "-m", module, *args]


def _gpu_count() -> int:
    try:
        from services.system import device_info

        return device_info().gpu_count
    except Exception:
        return 0
