"""The child-process half of the job engine: start ``python -m services ...`` (under ``accelerate launch`` with
several GPUs), read its JSON-lines events, cancel it gracefully, and never let it outlive its supervisor.

`ChildProcessJobs` is mixed into `services.jobs.manager.JobManager`, which provides `store`, `cancel_grace_s`, the
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
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.core.config import PROJECT_ROOT
from services.core.redact import HUB_TOKEN_VARS, mask, redact
from services.jobs.events import parse_event

if TYPE_CHECKING:
    from services.jobs.context import JobContext

logger = logging.getLogger(__name__)


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
    _timed_out: set[str]

    def _run_child(self, job_id: str, command: list[str], env: dict[str, str], ctx: JobContext) -> None:
        from services.core.system import oom_kills

        log_path = ctx.workdir / "output.log"
        kills_before = oom_kills()
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
        _lower_priority(proc.pid)
        with self._lock:
            self._procs[job_id] = proc
        usage = _Usage(enabled=kills_before is None)
        watcher = threading.Thread(target=self._watch, args=(job_id, proc, ctx._cancel, usage), daemon=True)
        watcher.start()
        error_message = None
        tail: list[str] = []
        hiding = False  # inside a Python traceback: it names server files, so only its last line is shown
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
                        if line.startswith("Traceback (most recent call last)"):
                            hiding = True
                            continue
                        if hiding and (line[:1].isspace() or not line.strip()):
                            continue
                        hiding = False
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
        if job_id in self._timed_out:
            self._finish(job_id, "failed", error=self.time_limit_error())  # type: ignore[attr-defined]
        elif ctx.cancelled:
            self._finish(job_id, "cancelled", message="Cancelled (work saved so far is kept)")
        elif code == 0:
            self._finish(job_id, "succeeded")
        elif code in (-signal.SIGKILL, 137):
            self._finish(job_id, "failed", error=_why_killed(kills_before, usage))
        else:
            reason = error_message or next((t for t in reversed(tail) if t.strip()), "") or f"exit status {code}"
            self._finish(job_id, "failed", error=reason)

    def retry(self, job_id: str, owner: str, env: dict[str, str] | None = None) -> str:
        """Start a finished command job again (same command, title and config) as a new job; returns its id.

        Only jobs that did not succeed are retried. Secrets were never stored, so the caller hands them over again
        in `env` (a push gets the user's token this way)."""
        from services.core.errors import PlaygroundError

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

    def _watch(self, job_id: str, proc: subprocess.Popen, cancel: threading.Event, usage: _Usage) -> None:
        """Turn Cancel into SIGTERM (then SIGKILL after the grace period); note the child's peak memory; reap
        leftovers once the child exits."""
        while proc.poll() is None:
            usage.sample(proc.pid)
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


class _Usage:
    """The peak memory a child process (with its own children) used, sampled every few seconds while it runs, only
    where the kernel's out-of-memory count cannot be read (`enabled`). It reads /proc directly: psutil's process
    tree walk read all of /proc each time and, twice a second, slowed the app's requests 1.7x (measured)."""

    def __init__(self, enabled: bool, every_s: float = 3.0) -> None:
        self.enabled, self.every_s = enabled, every_s
        self.peak = 0
        self._next = 0.0

    def sample(self, pid: int) -> None:
        now = time.monotonic()
        if not self.enabled or now < self._next:
            return
        self._next = now + self.every_s
        total, todo, seen = 0, [pid], set()
        while todo and len(seen) < 256:
            current = todo.pop()
            seen.add(current)
            try:
                with open(f"/proc/{current}/statm", encoding="ascii") as handle:
                    total += int(handle.read().split()[1]) * _PAGE
                for task in os.listdir(f"/proc/{current}/task"):
                    with open(f"/proc/{current}/task/{task}/children", encoding="ascii") as handle:
                        todo += [int(c) for c in handle.read().split() if int(c) not in seen]
            except (OSError, ValueError):  # gone, or not Linux
                continue
        self.peak = max(self.peak, total)


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _why_killed(kills_before: int | None, usage: _Usage) -> str:
    """A sentence for a child that died of SIGKILL: the kernel's out-of-memory killer, or someone else."""
    from services.core.system import memory_limit_bytes, oom_kills

    kills_after = oom_kills()
    if kills_before is not None and kills_after is not None:
        out_of_memory = kills_after > kills_before
    else:  # no counter to read: judge by how close to the machine's memory the job came
        out_of_memory = usage.peak >= 0.8 * memory_limit_bytes()
    if out_of_memory:
        return (
            "The job ran out of memory and the system stopped it. Try a smaller model, a smaller batch size or "
            "shorter texts."
        )
    return (
        "The job's process was stopped from outside the app (it was killed) while nothing in its work had "
        "failed. Start it again: a training continues from its last checkpoint."
    )


def _lower_priority(pid: int) -> None:
    """Jobs run behind interactive requests. By default their processes are SCHED_IDLE: they get only the CPU time
    nothing else wants (measured: two busy loops at nice 19 still slowed a 75 ms /run 1.1-1.2x, as SCHED_IDLE
    1.00-1.03x). PLAYGROUND_JOB_PRIORITY=N uses nice N instead; children the job starts later inherit either."""
    from services.core.limits import get_limits

    priority = get_limits().job_priority
    with contextlib.suppress(OSError, AttributeError, ValueError):
        if priority == "idle":
            os.sched_setscheduler(pid, os.SCHED_IDLE, os.sched_param(0))
        elif int(priority) > 0:
            os.setpriority(os.PRIO_PGRP, pid, min(19, int(priority)))


def _child_environment(job_id: str, workdir: Path, extra: dict[str, str]) -> dict[str, str]:
    """The child's environment: the app's, offline when the app is, and on a Space without the Space's own token
    (a visitor's job runs with the visitor's token, passed in `extra`, or none)."""
    from services.core.config import get_settings

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
        from services.core.system import device_info

        return device_info().gpu_count
    except Exception:
        return 0
