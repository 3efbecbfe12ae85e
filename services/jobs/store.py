"""Durable job records in SQLite: one row per job, plus an append-only table of its events (logs, metrics).

Each call opens its own short-lived connection (WAL mode), so any thread, the CLI and a restarted app can read
the same file safely. `services.jobs.manager.JobManager` is the only writer of status changes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from services.core.redact import bar_key

ACTIVE = ("queued", "running")
FINAL = ("succeeded", "failed", "cancelled", "interrupted")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    config TEXT NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    metrics TEXT NOT NULL DEFAULT '{}',
    artifacts TEXT NOT NULL DEFAULT '[]',
    result TEXT,
    error TEXT,
    needs_gpu INTEGER NOT NULL DEFAULT 0,
    command TEXT,
    manager TEXT NOT NULL,
    child TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, created_at);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    type TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (job_id, seq)
);
"""

_JSON_FIELDS = {"config": dict, "metrics": dict, "artifacts": list, "command": list, "result": dict}


@dataclass
class JobRecord:
    """Everything known about one job. `to_dict()` is what the API and the CLI show."""

    id: str
    kind: str
    owner: str
    title: str
    config: dict
    status: str
    manager: str
    progress: float = 0.0
    message: str = ""
    metrics: dict = field(default_factory=dict)
    artifacts: list = field(default_factory=list)
    result: dict | None = None
    error: str | None = None
    needs_gpu: bool = False
    command: list | None = None
    child: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL

    def to_dict(self) -> dict:
        data = asdict(self)
        for private in ("manager", "child", "owner"):
            data.pop(private)
        return data


def _encode(name: str, value: Any) -> Any:
    if name in _JSON_FIELDS:
        return None if value is None else json.dumps(value)
    if name == "needs_gpu":
        return int(bool(value))
    return value


def _decode(row: sqlite3.Row) -> JobRecord:
    data = dict(row)
    for name in _JSON_FIELDS:
        if data.get(name) is not None:
            data[name] = json.loads(data[name])
    data["needs_gpu"] = bool(data["needs_gpu"])
    return JobRecord(**data)


class JobStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One manager writes a given job's rows; this lock keeps its threads' event numbers unique.
        self._write_lock = threading.Lock()
        with closing(self._connect()) as conn, conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def create(self, record: JobRecord) -> None:
        data = {k: _encode(k, v) for k, v in asdict(record).items()}
        columns = ", ".join(data)
        marks = ", ".join("?" for _ in data)
        with self._write_lock, closing(self._connect()) as conn, conn:
            conn.execute(f"INSERT INTO jobs ({columns}) VALUES ({marks})", list(data.values()))

    def update(self, job_id: str, *, only_active: bool = False, **fields: Any) -> bool:
        """Write fields; with `only_active`, only while the job is still queued or running (a compare-and-set
        that keeps a finished or interrupted record from being overwritten). Returns whether a row changed."""
        if not fields:
            return False
        # Progress never moves back (a late or coarser report, a cancel): a job keeps the furthest it got.
        assignments = ", ".join(
            "progress = MAX(progress, ?)" if name == "progress" else f"{name} = ?" for name in fields
        )
        values = [_encode(k, v) for k, v in fields.items()]
        where = "id = ?" + (f" AND status IN ({', '.join(repr(s) for s in ACTIVE)})" if only_active else "")
        with self._write_lock, closing(self._connect()) as conn, conn:
            cursor = conn.execute(f"UPDATE jobs SET {assignments} WHERE {where}", [*values, job_id])
            return cursor.rowcount > 0

    def get(self, job_id: str) -> JobRecord | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _decode(row) if row else None

    def list(self, owner: str, limit: int = 100) -> list[JobRecord]:
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT * FROM jobs WHERE owner = ? ORDER BY created_at DESC LIMIT ?", (owner, limit)
            ).fetchall()
        return [_decode(r) for r in rows]

    def count_active(self, owner: str) -> int:
        with closing(self._connect()) as conn:
            return conn.execute(
                f"SELECT COUNT(*) FROM jobs WHERE owner = ? AND status IN ({', '.join('?' for _ in ACTIVE)})",
                (owner, *ACTIVE),
            ).fetchone()[0]

    def active(self) -> list[JobRecord]:
        with closing(self._connect()) as conn:
            rows = conn.execute(
                f"SELECT * FROM jobs WHERE status IN ({', '.join('?' for _ in ACTIVE)})", ACTIVE
            ).fetchall()
        return [_decode(r) for r in rows]

    def add_event(self, job_id: str, type_: str, data: dict) -> int:
        with self._write_lock, closing(self._connect()) as conn, conn:
            seq = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE job_id = ?", (job_id,)).fetchone()[
                0
            ]
            conn.execute(
                "INSERT INTO events (job_id, seq, ts, type, data) VALUES (?, ?, ?, ?, ?)",
                (job_id, seq, time.time(), type_, json.dumps(data)),
            )
        return seq

    def redraw_log(self, job_id: str, line: str) -> bool:
        """When `line` is a new state of the progress bar the job's last log line shows, write it over that line
        and return True; otherwise change nothing and return False (the caller adds the line)."""
        key = bar_key(line)
        if key is None:
            return False
        with self._write_lock, closing(self._connect()) as conn, conn:
            row = conn.execute(
                "SELECT seq, data FROM events WHERE job_id = ? AND type = 'log' ORDER BY seq DESC LIMIT 1", (job_id,)
            ).fetchone()
            if row is None or bar_key(json.loads(row["data"]).get("line", "")) != key:
                return False
            conn.execute(
                "UPDATE events SET data = ?, ts = ? WHERE job_id = ? AND seq = ?",
                (json.dumps({"line": line}), time.time(), job_id, row["seq"]),
            )
        return True

    def delete_finished(self, owner: str, job_ids: list[str]) -> list[str]:
        """Delete those of `job_ids` that belong to `owner` and have ended, with their events; returns the ids
        deleted. The status is checked in the same statement, so a job still queued or running is never deleted."""
        if not job_ids:
            return []
        marks, finals = ", ".join("?" for _ in job_ids), ", ".join("?" for _ in FINAL)
        where = f"owner = ? AND status IN ({finals}) AND id IN ({marks})"
        with self._write_lock, closing(self._connect()) as conn, conn:  # one transaction: the rows read are deleted
            gone = [r["id"] for r in conn.execute(f"SELECT id FROM jobs WHERE {where}", (owner, *FINAL, *job_ids))]
            if gone:
                conn.execute(f"DELETE FROM jobs WHERE {where}", (owner, *FINAL, *job_ids))
                conn.execute(f"DELETE FROM events WHERE job_id IN ({', '.join('?' for _ in gone)})", gone)
        return gone

    def events(self, job_id: str, after: int = 0, types: tuple[str, ...] | None = None, limit: int = 10_000) -> list:
        query = "SELECT seq, ts, type, data FROM events WHERE job_id = ? AND seq > ?"
        params: list[Any] = [job_id, after]
        if types:
            query += f" AND type IN ({', '.join('?' for _ in types)})"
            params.extend(types)
        query += " ORDER BY seq LIMIT ?"
        params.append(limit)
        with closing(self._connect()) as conn:
            rows = conn.execute(query, params).fetchall()
        return [{"seq": r["seq"], "ts": r["ts"], "type": r["type"], **json.loads(r["data"])} for r in rows]

    def tail_logs(self, job_id: str, lines: int = 200) -> list[str]:
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT data FROM events WHERE job_id = ? AND type = 'log' ORDER BY seq DESC LIMIT ?", (job_id, lines)
            ).fetchall()
        return [json.loads(r["data"])["line"] for r in reversed(rows)]
