"""What in-process job work reports through: `JobContext` (progress, logs, metrics, artifacts, cancel) and
`JobCancelled`. The manager hands one to each function it runs; children of `services.jobs.child` use it too."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class JobCancelled(Exception):
    """Raised by `JobContext.check_cancelled()`; the job ends as `cancelled`, not `failed`."""


class JobDetached(Exception):
    """Raised by work that follows a job running elsewhere when the app closes: the record is left running."""


@dataclass
class JobContext:
    """Handed to in-process work: report with it, and poll `cancelled` between steps."""

    job_id: str
    config: dict
    workdir: Path
    _manager: Any  # the JobManager: its _on_* callbacks record what the work reports
    _cancel: threading.Event = field(repr=False)

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check_cancelled(self) -> None:
        if self._cancel.is_set():
            raise JobCancelled()

    def progress(self, fraction: float, message: str | None = None) -> None:
        self._manager._on_progress(self.job_id, fraction, message)

    def log(self, line: str) -> None:
        self._manager._on_log(self.job_id, line)

    def metrics(self, values: dict, step: int | None = None) -> None:
        self._manager._on_metrics(self.job_id, values, step)

    def artifact(self, path: str | Path, kind: str = "file", **meta: Any) -> None:
        self._manager._on_artifact(self.job_id, {"path": str(path), "kind": kind, **meta})
