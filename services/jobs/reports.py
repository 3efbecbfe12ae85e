"""What job work reports, written to the job store (`JobReports`, mixed into `JobManager`): progress at most
five times a second, logs as the visitor reads them and capped per job, metrics, artifacts; and `public_view`,
a job as its owner sees it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from services.core.redact import mask, redact, scrub, visible_line
from services.jobs.store import JobRecord


class JobReports:
    """Mixed into `JobManager`, which provides `store`, `_lock`, `_written`, `_last_write` and the caps."""

    # ---- reports from the work ---------------------------------------------------------------------------------

    def _on_progress(self, job_id: str, fraction: float, message: str | None) -> None:
        fields: dict[str, Any] = {"progress": max(0.0, min(1.0, float(fraction)))}
        if message:
            fields["message"] = scrub(mask(str(message)))
        # Progress may arrive thousands of times a second; a new message is always written, a bare number at
        # most five times a second.
        now = time.monotonic()
        last_time, last_message = self._last_write.get(job_id, (0.0, None))
        if message == last_message and fraction < 1.0 and now - last_time < 0.2:
            return
        self._last_write[job_id] = (now, message or last_message)
        self.store.update(job_id, only_active=True, **fields)

    def _room_for(self, job_id: str, kind: str, cap: int) -> bool:
        """Whether one more event of `kind` fits in the job's share of the database (a note marks the cut)."""
        with self._lock:
            count = self._written[(job_id, kind)] = self._written.get((job_id, kind), 0) + 1
        if count == cap + 1 and kind == "log":
            self.store.add_event(job_id, "log", {"line": f"(more than {cap:,} lines: the rest are not shown)"})
        return count <= cap

    def _on_log(self, job_id: str, line: str) -> None:
        line = visible_line(line)  # stored as the visitor reads it; a progress bar's redraw replaces its last state
        new = line is not None and not self.store.redraw_log(job_id, line)
        if new and self._room_for(job_id, "log", self.max_log_lines):
            self.store.add_event(job_id, "log", {"line": line})

    def _on_metrics(self, job_id: str, values: dict, step: int | None) -> None:
        if not self._room_for(job_id, "metrics", self.max_metric_events):
            return
        values = redact(values)
        self.store.add_event(job_id, "metrics", {"values": values, "step": step})
        record = self.store.get(job_id)
        if record is not None:
            self.store.update(job_id, metrics={**record.metrics, **values})

    def _on_artifact(self, job_id: str, artifact: dict) -> None:
        record = self.store.get(job_id)
        if record is not None:
            self.store.update(job_id, artifacts=[*record.artifacts, redact(artifact)])

    def _set_message(self, job_id: str, message: str) -> None:
        self.store.update(job_id, only_active=True, message=message)


def public_view(record: JobRecord) -> dict:
    """A job as its owner sees it in the app and the API: no command line, no server paths, no owner ids;
    artifacts by file name and kind (a `path` key would read as a file to download)."""
    data = record.to_dict()
    data.pop("command", None)
    artifacts = [
        {"name": Path(str(a.get("path", ""))).name, **{k: v for k, v in a.items() if k != "path"}}
        for a in data.get("artifacts") or []
    ]
    data = scrub(data)
    data["artifacts"] = scrub(artifacts)
    return data
