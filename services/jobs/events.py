"""The child side of a child-process job: JSON-lines events on stdout, and graceful cancel on SIGTERM.

A job's command (``python -m services ...``) writes one line per event, prefixed so that ordinary library
output on the same stream stays a log line::

    @@playground-event {"type": "progress", "fraction": 0.4, "message": "epoch 2/5"}

The supervisor thread in `services.jobs.manager` turns these into job progress, metrics and artifacts. Under
`accelerate launch` only the main process (RANK 0) writes events. On cancel the supervisor sends SIGTERM;
`cancel_requested()` turns true and the work gets `PLAYGROUND_CANCEL_GRACE_S` seconds to save and exit.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from typing import Any, TextIO

logger = logging.getLogger(__name__)

EVENT_PREFIX = "@@playground-event "


def parse_event(line: str) -> dict | None:
    """The event in one output line, or None when the line is ordinary output."""
    if not line.startswith(EVENT_PREFIX):
        return None
    try:
        event = json.loads(line[len(EVENT_PREFIX) :])
    except ValueError:
        return None
    return event if isinstance(event, dict) and isinstance(event.get("type"), str) else None


class EventWriter:
    """Writes events for the supervising job manager (or to a terminal, where they are still readable)."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout
        # Outside a job (a person at a terminal) events become log lines instead of machine-readable output.
        self.supervised = "PLAYGROUND_JOB_ID" in os.environ
        self.enabled = int(os.environ.get("RANK", "0")) == 0
        self._lock = threading.Lock()

    def emit(self, type_: str, **data: Any) -> None:
        if not self.enabled:
            return
        if not self.supervised:
            if type_ in ("progress", "log", "error"):
                logger.info("%s", data.get("message") or data.get("line") or "")
            return
        line = EVENT_PREFIX + json.dumps({"type": type_, **data}, default=str)
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()

    def progress(self, fraction: float, message: str = "") -> None:
        self.emit("progress", fraction=max(0.0, min(1.0, float(fraction))), message=message)

    def log(self, line: str) -> None:
        self.emit("log", line=line)

    def metrics(self, values: dict, step: int | None = None) -> None:
        self.emit("metrics", values=values, step=step)

    def artifact(self, path: str, kind: str = "file", **meta: Any) -> None:
        self.emit("artifact", path=str(path), kind=kind, **meta)

    def result(self, values: dict) -> None:
        self.emit("result", values=values)

    def error(self, message: str) -> None:
        self.emit("error", message=message)


_cancel = threading.Event()


def install_cancel_handler() -> threading.Event:
    """Make SIGTERM (sent by Cancel) set an event the work polls, instead of killing the process at once."""

    def _handler(signum, frame):
        _cancel.set()

    signal.signal(signal.SIGTERM, _handler)
    return _cancel


def cancel_requested() -> bool:
    return _cancel.is_set()
