"""The job engine: long work in background threads the manager owns, recorded in SQLite.

Two kinds of job:
- in-process: ``submit(kind, owner, fn)`` runs ``fn(ctx)`` in a thread; `JobContext` reports progress, logs,
  metrics and artifacts, and tells the work when Cancel was pressed (it gets to save, then returns).
- child-process: ``submit_command(kind, owner, args)`` runs ``python -m services ARGS`` (under
  ``accelerate launch`` when the machine has several GPUs); a supervisor thread turns the child's JSON-lines
  events (`services.jobs.events`) into progress. A crash, an out-of-memory kill or a cancel of the child never
  touches the app. Cancel sends SIGTERM, waits the grace period, then kills the process group.

Status: queued -> running -> succeeded | failed | cancelled | interrupted. Jobs that need the GPU wait for one of
`gpu_slots`, other jobs for one of `job_slots` workers; a free slot goes to the owner holding the fewest
(`services.jobs.slots`). An owner may have `jobs_per_owner` jobs waiting or running at once, and a job that runs
longer than `job_seconds` is stopped (its saved work is kept). Jobs left running by a manager that died are marked
`interrupted` when the next manager starts (their orphaned child processes are stopped). Every read and cancel names
the owner: a job of another owner is reported as not found. What a visitor is shown of a job (`public_view`) holds
no server paths, command lines or owner ids.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.core.errors import JobNotFound, PlaygroundError
from services.core.limits import LimitExceeded
from services.core.redact import mask, redact, scrub, visible_log
from services.jobs.adopt import REMOTE_KINDS, AdoptJobs, is_remote
from services.jobs.child import ChildProcessJobs, identity_alive, launcher_command, process_identity
from services.jobs.context import JobCancelled, JobContext, JobDetached
from services.jobs.reports import JobReports, public_view
from services.jobs.slots import FairSlots
from services.jobs.store import JobRecord, JobStore

__all__ = ["JobCancelled", "JobContext", "JobManager", "launcher_command", "mask", "public_view", "redact"]

# Jobs that wait on the network, not the machine: they never queue for a worker slot.
LIGHT_KINDS = frozenset({"push"}) | REMOTE_KINDS
# What one job may write into the shared job database (the whole output stays in the job's output.log).
MAX_LOG_LINES = 5_000
MAX_METRIC_EVENTS = 20_000

logger = logging.getLogger(__name__)


class JobManager(ChildProcessJobs, JobReports, AdoptJobs):
    """Owns every background thread and child process of the app. One per app process."""

    def __init__(
        self,
        db_path: Path,
        jobs_dir: Path,
        gpu_slots: int = 1,
        cancel_grace_s: float = 30.0,
        recover: bool = True,
        *,
        job_slots: int | None = None,
        jobs_per_owner: int | None = None,
        job_seconds: float | None = None,
    ):
        """`job_slots`, `jobs_per_owner` and `job_seconds` of None mean no limit (`from_settings` sets them)."""
        self.store = JobStore(db_path)
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self.cancel_grace_s = cancel_grace_s
        self.jobs_per_owner = jobs_per_owner
        self.job_seconds = job_seconds
        self.identity = process_identity(os.getpid()) or f"{os.getpid()}:0"
        self._gpu = FairSlots(gpu_slots)
        self._workers = FairSlots(job_slots)
        self._timed_out: set[str] = set()
        self._written: dict[tuple[str, str], int] = {}  # (job id, event type) -> events stored
        self._swept = time.monotonic()
        self.max_log_lines, self.max_metric_events = MAX_LOG_LINES, MAX_METRIC_EVENTS
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._last_write: dict[str, tuple[float, str | None]] = {}
        self._procs: dict[str, subprocess.Popen] = {}
        self.closing = threading.Event()  # set by shutdown: followers of remote jobs let go
        self.recovered = self._recover() if recover else []
        # Child processes run in their own sessions, so they would outlive the app: stop them with it.
        atexit.register(self._stop_children)

    @classmethod
    def from_settings(cls, recover: bool = True) -> JobManager:
        from services.core.config import get_settings
        from services.core.limits import get_limits

        s, limits = get_settings(), get_limits()
        return cls(
            s.db_path,
            s.jobs_dir,
            gpu_slots=s.gpu_slots,
            cancel_grace_s=s.cancel_grace_s,
            recover=recover,
            job_slots=limits.job_slots,
            jobs_per_owner=limits.jobs_per_visitor,
            job_seconds=limits.job_minutes * 60 or None,
        )

    # ---- submitting -------------------------------------------------------------------------------------------

    def submit(
        self,
        kind: str,
        owner: str,
        fn: Callable[[JobContext], dict | None],
        *,
        title: str,
        config: dict | None = None,
        needs_gpu: bool = False,
    ) -> str:
        """Run `fn(ctx)` in a background thread; its returned dict becomes the job's result."""
        record = self._create(kind, owner, title, config, needs_gpu, command=None)
        self._start(record, config or {}, lambda ctx: self._run_function(record.id, fn, ctx))
        return record.id

    def submit_command(
        self,
        kind: str,
        owner: str,
        args: list[str],
        *,
        title: str,
        config: dict | None = None,
        needs_gpu: bool = False,
        module: str = "services",
        env: dict[str, str] | None = None,
    ) -> str:
        """Run ``python -m MODULE ARGS`` as a supervised child process. `env` (e.g. a token) is never stored."""
        command = launcher_command(module, args)
        record = self._create(kind, owner, title, config, needs_gpu, command=redact(command))
        self._start(record, config or {}, lambda ctx: self._run_child(record.id, command, env or {}, ctx))
        return record.id

    def _create(self, kind, owner, title, config, needs_gpu, command) -> JobRecord:
        if not owner:
            raise ValueError("every job needs an owner")
        with self._lock:  # the count and the new row together: two clicks at once cannot both pass the quota
            self._check_quota(owner)
            record = self._record(kind, owner, title, config, needs_gpu, command)
            self.store.create(record)
        return record

    def _check_quota(self, owner: str) -> None:
        if self.jobs_per_owner is None:
            return
        active = self.store.count_active(owner)
        if active >= self.jobs_per_owner:
            raise LimitExceeded(
                f"You have {active} jobs running or waiting, the most one visitor may have at once "
                f"({self.jobs_per_owner}): wait for one to finish, or cancel one in the Jobs tab."
            )

    def _record(self, kind, owner, title, config, needs_gpu, command) -> JobRecord:
        return JobRecord(
            id=uuid.uuid4().hex[:12],
            kind=kind,
            owner=owner,
            title=title,
            config=redact(config or {}),
            status="queued",
            manager=self.identity,
            needs_gpu=needs_gpu,
            command=command,
            message="Waiting to start",
        )

    def _start(self, record: JobRecord, config: dict, body: Callable[[JobContext], None]) -> None:
        cancel = threading.Event()
        workdir = self.jobs_dir / record.id
        workdir.mkdir(parents=True, exist_ok=True)
        # The work gets the config as given; only the stored copy is redacted.
        ctx = JobContext(record.id, config, workdir, self, cancel)
        thread = threading.Thread(
            target=self._lifecycle, args=(record, body, ctx), name=f"job-{record.id}", daemon=True
        )
        with self._lock:
            self._threads[record.id] = thread
            self._cancels[record.id] = cancel
        thread.start()

    # ---- the lifecycle, in the job's own thread ----------------------------------------------------------------

    def _lifecycle(self, record: JobRecord, body: Callable[[JobContext], None], ctx: JobContext) -> None:
        cancel = self._cancels[record.id]
        slots = None
        watchdog = None
        try:
            if record.kind not in LIGHT_KINDS or record.needs_gpu:
                slots = self._gpu if record.needs_gpu else self._workers
                what = "the GPU" if record.needs_gpu else "a free worker"
                if not slots.acquire(
                    record.id,
                    record.owner,
                    cancel,
                    lambda ahead: self._set_message(record.id, f"Waiting for {what} ({ahead} job(s) ahead)"),
                ):
                    slots = None
                    self._finish(record.id, "cancelled", message="Cancelled before it started")
                    return
            if cancel.is_set():
                self._finish(record.id, "cancelled", message="Cancelled before it started")
                return
            self.store.update(record.id, only_active=True, status="running", started_at=time.time(), message="Running")
            if self.job_seconds:
                watchdog = threading.Timer(self.job_seconds, self._time_up, args=(record.id, cancel))
                watchdog.daemon = True
                watchdog.start()
            body(ctx)
        except Exception as err:  # the app must survive anything a job does
            logger.exception("Job %s crashed in its supervisor", record.id)
            self._finish(record.id, "failed", error=f"Internal error: {type(err).__name__}")
        finally:
            if watchdog is not None:
                watchdog.cancel()
            if slots is not None:
                slots.release(record.owner)
            with self._lock:
                self._threads.pop(record.id, None)
                self._cancels.pop(record.id, None)
                self._last_write.pop(record.id, None)
                self._timed_out.discard(record.id)
                for kind in ("log", "metrics"):
                    self._written.pop((record.id, kind), None)
                sweep_due = time.monotonic() - self._swept > 3600
            if sweep_due:  # in this job's own thread, once an hour at most
                try:
                    self.sweep_uploads()
                except OSError:
                    logger.exception("Could not clean the staged uploads")

    def _time_up(self, job_id: str, cancel: threading.Event) -> None:
        """The job ran for longer than a job may here: stop it like a Cancel (its saved work is kept)."""
        with self._lock:
            self._timed_out.add(job_id)
        self._set_message(job_id, "Stopping: the job reached its time limit")
        cancel.set()

    def time_limit_error(self) -> str:
        minutes = round((self.job_seconds or 0) / 60)
        return (
            f"Stopped after {minutes} minutes, the longest a job may run here. What it saved is kept "
            "(a training continues from its last checkpoint when started again)."
        )

    def _run_function(self, job_id: str, fn: Callable[[JobContext], dict | None], ctx: JobContext) -> None:
        try:
            result = fn(ctx)
        except JobDetached:  # the manager is closing: the record stays as it is, for the next one to take over
            return
        except JobCancelled:
            if job_id in self._timed_out:
                self._finish(job_id, "failed", error=self.time_limit_error())
            else:
                self._finish(job_id, "cancelled", message="Cancelled")
            return
        except PlaygroundError as err:
            self._on_log(job_id, f"Error: {err}")
            self._finish(job_id, "failed", error=str(err))
            return
        except Exception as err:
            # The traceback goes to the app's log only: it names server files.
            logger.exception("Job %s failed", job_id)
            (ctx.workdir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
            self._on_log(job_id, f"Error: {type(err).__name__}: {err}")
            self._finish(job_id, "failed", error=f"{type(err).__name__}: {err}")
            return
        if job_id in self._timed_out:
            self._finish(job_id, "failed", error=self.time_limit_error(), result=result)
        elif ctx.cancelled:
            self._finish(job_id, "cancelled", message="Cancelled (work saved so far is kept)", result=result)
        else:
            self._finish(job_id, "succeeded", result=result)

    def _finish(
        self,
        job_id: str,
        status: str,
        *,
        message: str | None = None,
        error: str | None = None,
        result: dict | None = None,
    ) -> None:
        fields: dict[str, Any] = {"status": status, "finished_at": time.time()}
        fields["message"] = message or {"succeeded": "Done", "failed": "Failed"}.get(status, status.capitalize())
        if status == "succeeded":
            fields["progress"] = 1.0
        if error is not None:
            fields["error"] = scrub(mask(error))
        if result is not None:
            fields["result"] = redact(result)
        # Compare-and-set: a job another manager already marked interrupted stays interrupted.
        if self.store.update(job_id, only_active=True, **fields):
            logger.info("Job %s %s%s", job_id, status, f": {fields.get('error')}" if error else "")

    # ---- reading and cancelling, always for one owner ----------------------------------------------------------

    def get(self, job_id: str, owner: str) -> JobRecord:
        record = self.store.get(job_id)
        if record is None or record.owner != owner:
            raise JobNotFound(f"There is no job '{job_id}' among your jobs.")
        return record

    def list(self, owner: str, limit: int = 100) -> list[JobRecord]:
        return self.store.list(owner, limit)

    def logs(self, job_id: str, owner: str, tail: int = 200) -> list[str]:
        self.get(job_id, owner)
        return visible_log(self.store.tail_logs(job_id, tail))  # records older than the cleaning are cleaned here

    def events(self, job_id: str, owner: str, after: int = 0, types: tuple[str, ...] | None = None) -> list[dict]:
        self.get(job_id, owner)
        return self.store.events(job_id, after, types)

    def cancel(self, job_id: str, owner: str) -> JobRecord:
        """Ask the job to stop; it ends as `cancelled` once it has saved. Finished jobs are left as they are."""
        record = self.get(job_id, owner)
        with self._lock:
            event = self._cancels.get(job_id)
        if event is not None and not record.done:
            self._set_message(job_id, "Cancelling")
            event.set()
        return self.store.get(job_id)  # type: ignore[return-value]

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """Block until the job's thread ends (tests and the CLI); returns the final record."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.store.get(job_id)  # type: ignore[return-value]

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel everything still running and wait a little for it to save. Remote jobs are let go, not cancelled:
        their work goes on elsewhere, and the next manager follows it again."""
        self.closing.set()
        with self._lock:
            cancels, threads = dict(self._cancels), dict(self._threads)
        remote = {i for i in threads if (r := self.store.get(i)) is not None and r.kind in REMOTE_KINDS}
        for job_id, event in cancels.items():
            if job_id not in remote:
                event.set()
        deadline = time.monotonic() + timeout
        for job_id, thread in threads.items():
            if job_id not in remote:
                thread.join(max(0.0, deadline - time.monotonic()))

    def paths_in_use(self) -> list[str]:
        """The files named by jobs still waiting or running (their staged uploads must stay)."""
        return [arg for r in self.store.active() for arg in (r.command or []) if str(arg).startswith("/")]

    def sweep_uploads(self) -> int:
        """Remove staged uploads no job needs any more (see `services.core.uploads.sweep`)."""
        from services.core.uploads import sweep

        with self._lock:
            self._swept = time.monotonic()
        return sweep(self.paths_in_use())

    def _recover(self) -> list[str]:
        """Mark jobs whose manager is gone as interrupted, and stop their orphaned child processes."""
        recovered = []
        for record in self.store.active():
            if record.manager == self.identity or identity_alive(record.manager):
                continue
            if is_remote(record):  # it runs on Hugging Face: followed again when its owner next looks at it
                self.store.update(record.id, message="Running on Hugging Face Jobs: open it to follow it again")
                continue
            if identity_alive(record.child):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(int(record.child.split(":")[0]), signal.SIGTERM)  # type: ignore[union-attr]
            self.store.update(
                record.id,
                only_active=True,
                status="interrupted",
                finished_at=time.time(),
                message="Interrupted",
                error="The app restarted while this job was running. Its saved files are kept; start it again.",
            )
            recovered.append(record.id)
        if recovered:
            logger.warning("Marked %d job(s) interrupted after a restart: %s", len(recovered), ", ".join(recovered))
        return recovered
