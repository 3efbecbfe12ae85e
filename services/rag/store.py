"""Where RAG collections live: per owner under ``PLAYGROUND_HOME/rag/<owner>/<collection>/``.

- ``chunks.sqlite``: documents (name, SHA-256 of the bytes, so a re-upload adds nothing), chunks (text, page,
  heading, span) and meta (embedding model, dimension, a version bumped on every change);
- ``vectors.npy`` + ``ids.npy``: the normalised embeddings and their chunk ids (the FAISS index is rebuilt from them
  when a collection is opened, and after a delete), kept by services.rag.vectors (a batch is appended in place);
- chat history per owner in ``chats.sqlite`` beside the collections (services.rag.history, re-exported here).

A document is written batch by batch (`begin`, `append`, completed by the last append, `abort` on failure): until
it is complete it is listed in the ``pending`` table and invisible to readers; one left by a job that died is
removed by the next writer. Writers take a file lock, so an ingest job (a child process) and a delete from the app
never interleave; an ingest job also holds a shared "in use" lock, so an empty collection (which does not count
toward MAX_COLLECTIONS) is cleared away only when nobody works in it. The demo collection (the playground's own
documentation) lives under ``rag/_demo`` and is read-only for everyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np

from services.core.config import get_settings
from services.core.errors import AccessDenied, PlaygroundError
from services.core.owners import owner_dir, safe_name
from services.rag import vectors as rag_vectors
from services.rag.history import history, new_chat, remember  # noqa: F401  (their home before; callers import them here)

DEMO = "playground-docs"
MAX_COLLECTIONS = 20  # collections with documents, per owner
MAX_DOCUMENTS = 500
READ_ONLY = "The demo collection is shared and read-only: make your own to add documents."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (id INTEGER PRIMARY KEY, name TEXT, sha256 TEXT UNIQUE, size INTEGER,
    pages INTEGER, chunks INTEGER, added REAL);
CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER, ord INTEGER, text TEXT,
    page INTEGER, heading TEXT, start INTEGER, end_ INTEGER, tokens INTEGER);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS pending (doc_id INTEGER PRIMARY KEY, pid INTEGER);
"""


class CollectionError(PlaygroundError):
    """A collection that does not exist, cannot be made, or is not yours."""


def rag_root() -> Path:
    return get_settings().home / "rag"


def owner_root(owner: str) -> Path:
    return owner_dir(rag_root(), owner)


def clean_name(name: str) -> str:
    clean = safe_name((name or "").strip(), "")
    if not clean or clean != (name or "").strip():
        raise CollectionError("Name the collection with letters, digits, '-', '_' or '.' (for example my-notes).")
    return clean


def check_new_name(name: str, owner: str) -> str:
    """The clean name of a collection to index into: the name and the per-owner limit are checked, nothing is made
    (one of the owner's existing collections always passes)."""
    if (name or "").strip() == DEMO:
        raise AccessDenied(READ_ONLY)
    clean = clean_name(name)
    if not (owner_root(owner) / clean / "chunks.sqlite").exists() and len(_counted(owner)) >= MAX_COLLECTIONS:
        raise CollectionError(f"You have {MAX_COLLECTIONS} collections already: delete one first.")
    return clean


class Collection:
    def __init__(self, folder: Path, name: str, read_only: bool = False):
        self.folder, self.name, self.read_only = folder, name, read_only
        self.db = folder / "chunks.sqlite"

    # ---- opening ----------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, name: str, owner: str, create: bool = False) -> Collection:
        """One of the owner's collections (or the shared demo, read-only); nobody reaches another owner's."""
        if name == DEMO:
            return cls(rag_root() / "_demo" / DEMO, DEMO, read_only=True)
        clean = clean_name(name)
        folder = owner_root(owner) / clean
        if not (folder / "chunks.sqlite").exists():
            if not create:
                raise CollectionError(f"You have no collection called '{clean}'. Upload documents to make one.")
            check_new_name(clean, owner)
            if len(list_names(owner)) >= MAX_COLLECTIONS:
                _clear_empty(owner)  # empty leftovers do not count, and do not pile up either
            folder.mkdir(parents=True, exist_ok=True)
        collection = cls(folder, clean)
        collection._init()
        return collection

    def _init(self) -> None:
        with closing(self._connect()) as conn, conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db, timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        if self.read_only:
            raise AccessDenied(READ_ONLY)
        self.folder.mkdir(parents=True, exist_ok=True)
        # The lock file sits beside the folder, so the folder holds only the collection (it can be pushed as is).
        with open(self.folder.parent / f".{self.name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---- reading ----------------------------------------------------------------------------------------------

    def meta(self) -> dict:
        if not self.db.exists():
            return {}
        with closing(self._connect()) as conn:
            return _meta(conn)

    @property
    def version(self) -> int:
        return int(self.meta().get("version", 0))

    def documents(self) -> list[dict]:
        """The complete documents (one still being written is left out)."""
        if not self.db.exists():
            return []
        with closing(self._connect()) as conn:
            rows = conn.execute(
                "SELECT id, name, sha256, size, pages, chunks, added FROM documents "
                f"WHERE {_visible(conn, 'id')} ORDER BY added"
            )
            return [dict(r) for r in rows]

    def has(self, sha256: str) -> dict | None:
        with closing(self._connect()) as conn:
            row = conn.execute(
                f"SELECT id, name FROM documents WHERE sha256 = ? AND {_visible(conn, 'id')}", (sha256,)
            ).fetchone()
            return dict(row) if row else None

    def chunks(self, ids: list[int] | None = None) -> list[dict]:
        with closing(self._connect()) as conn:
            query = (
                "SELECT c.id, c.text, c.page, c.heading, c.ord, c.start, c.end_ AS end, c.tokens, d.name AS source "
                f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {_visible(conn, 'c.doc_id')}"
            )
            if ids is None:
                return [dict(r) for r in conn.execute(query + " ORDER BY c.id")]
            found = {
                r["id"]: dict(r)
                for r in conn.execute(query + f" AND c.id IN ({','.join('?' * len(ids))})", [int(i) for i in ids])
            }
        return [found[i] for i in ids if i in found]

    def outline(self, limit: int = 60) -> list[dict]:
        """The first chunk under each heading of each document, newest document first: {source, heading, text}."""
        if not self.db.exists():
            return []
        with closing(self._connect()) as conn:  # SQLite takes the other columns from the row of MIN(c.id)
            rows = conn.execute(
                "SELECT d.name AS source, c.heading, c.text, MIN(c.id) AS first FROM chunks c JOIN documents d "
                f"ON d.id = c.doc_id WHERE {_visible(conn, 'c.doc_id')} GROUP BY c.doc_id, c.heading "
                "ORDER BY d.added DESC, first LIMIT ?",
                (int(limit),),
            )
            return [{"source": r["source"], "heading": r["heading"], "text": r["text"]} for r in rows]

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """Chunk ids and their vectors (memory-mapped), without those of a document still being written."""
        ids, vectors = self._stored_vectors()
        if len(ids) and self.db.exists():
            with closing(self._connect()) as conn:
                hidden = [r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE NOT {_visible(conn, 'doc_id')}")]
            if hidden:
                keep = ~np.isin(ids, hidden)
                return ids[keep], np.asarray(vectors)[keep]
        return ids, vectors

    def _stored_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        return rag_vectors.load(self.folder, int(self.meta().get("dim", 384)))

    # ---- writing ----------------------------------------------------------------------------------------------

    def add(self, name: str, sha256: str, size: int, pages: int, chunks: list, vectors: np.ndarray, model: str) -> int:
        """Add one document with its chunks and their vectors (rows in the same order)."""
        item = {"name": name, "sha256": sha256, "size": size, "pages": pages, "chunks": chunks}
        skipped: list[str] = []
        self.add_many([item], vectors, model, skipped)
        if skipped:
            raise CollectionError(skipped[0])
        return int(self.has(sha256)["id"])  # type: ignore[index]

    def add_many(self, items: list[dict], vectors: np.ndarray, model: str, skipped: list[str]) -> list[dict]:
        """Add documents ({name, sha256, size, pages, chunks}) with their chunks' vectors (rows in order) in one
        write of the vectors; one already here (or added meanwhile by another writer) goes to `skipped`."""
        added, rows, keep, done, row = [], [], [], {}, 0
        try:
            for item in items:
                count = len(item["chunks"])
                doc_id = self.begin(item["name"], item["sha256"], item["size"], item["pages"], model)
                if doc_id is None:
                    skipped.append(f"'{item['name']}' is already in the collection.")
                else:
                    rows += [(doc_id, order, chunk) for order, chunk in enumerate(item["chunks"])]
                    keep += range(row, row + count)
                    done[doc_id] = count
                    added.append({"name": item["name"], "chunks": count, "pages": item["pages"]})
                row += count
            self.append(rows, vectors[keep], model, done)
        except BaseException:
            for doc_id in done:
                self.abort(doc_id)
            raise
        return added

    def begin(self, name: str, sha256: str, size: int, pages: int, model: str) -> int | None:
        """Start a document whose chunks come with `append`; None when these bytes are already here."""
        with self.writing(), closing(self._connect()) as conn, conn:
            meta = _meta(conn)
            if meta.get("model") and meta["model"] != model:
                raise CollectionError(
                    f"This collection was embedded with {meta['model']}; add documents with the same model."
                )
            self._clear_stale(conn)
            if conn.execute("SELECT 1 FROM documents WHERE sha256 = ?", (sha256,)).fetchone():
                return None
            if conn.execute("SELECT COUNT(*) FROM documents").fetchone()[0] >= MAX_DOCUMENTS:
                raise CollectionError(f"A collection holds at most {MAX_DOCUMENTS} documents.")
            cursor = conn.execute(
                "INSERT INTO documents (name, sha256, size, pages, chunks, added) VALUES (?, ?, ?, ?, 0, ?)",
                (name, sha256, size, pages, time.time()),
            )
            conn.execute("INSERT INTO pending (doc_id, pid) VALUES (?, ?)", (cursor.lastrowid, os.getpid()))
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('model', ?)", (json.dumps(model),))
            return int(cursor.lastrowid)

    def append(self, rows: list[tuple], vectors: np.ndarray, model: str, done: dict[int, int]) -> None:
        """Chunks (doc_id, order, chunk) of begun documents with their vectors (rows in order); the documents in
        `done` (doc_id: chunk count) are complete after this and become visible."""
        with self.writing():
            if rows:
                ids = []
                with closing(self._connect()) as conn, conn:
                    for doc_id, order, c in rows:
                        cursor = conn.execute(
                            "INSERT INTO chunks (doc_id, ord, text, page, heading, start, end_, tokens) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (doc_id, order, c.text, c.page, c.heading, c.start, c.end, c.tokens),
                        )
                        ids.append(int(cursor.lastrowid))
                    dim = json.dumps(int(vectors.shape[1]))
                    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('dim', ?)", (dim,))
                # After the commit: chunk ids (AUTOINCREMENT) are never reused, so a crash here leaves at most rows
                # for chunks nobody sees, and the pending document goes with its chunks.
                rag_vectors.append(self.folder, np.asarray(ids), vectors)
            if done:
                with closing(self._connect()) as conn, conn:
                    for doc_id, count in done.items():
                        conn.execute(
                            "UPDATE documents SET chunks = ?, added = ? WHERE id = ?", (count, time.time(), doc_id)
                        )
                        conn.execute("DELETE FROM pending WHERE doc_id = ?", (doc_id,))
                    self._bump(conn, model=model)

    def abort(self, doc_id: int) -> None:
        """Remove a document that was begun and not completed (its job failed), with what it had stored."""
        with self.writing(), closing(self._connect()) as conn:
            with conn:
                gone = self._remove(conn, [int(doc_id)])
            rag_vectors.drop(self.folder, gone)

    def delete(self, doc_id: int) -> str:
        """Remove a document, its chunks and its vectors; returns its name."""
        with self.writing(), closing(self._connect()) as conn:
            with conn:
                row = conn.execute(
                    f"SELECT name FROM documents WHERE id = ? AND {_visible(conn, 'id')}", (int(doc_id),)
                ).fetchone()
                if row is None:
                    raise CollectionError("That document is not in this collection.")
                gone = self._remove(conn, [int(doc_id)])
                self._bump(conn)
            rag_vectors.drop(self.folder, gone)
            return row["name"]

    def destroy(self) -> None:
        with self.writing():
            shutil.rmtree(self.folder, ignore_errors=True)

    def _remove(self, conn: sqlite3.Connection, doc_ids: list[int]) -> list[int]:
        marks = ",".join("?" * len(doc_ids))
        gone = [r[0] for r in conn.execute(f"SELECT id FROM chunks WHERE doc_id IN ({marks})", doc_ids)]
        for table, column in (("chunks", "doc_id"), ("documents", "id"), ("pending", "doc_id")):
            conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", doc_ids)
        return gone

    def _clear_stale(self, conn: sqlite3.Connection) -> None:
        """Documents begun by a job that is gone (killed, out of memory) are removed."""
        stale = [r["doc_id"] for r in conn.execute("SELECT doc_id, pid FROM pending") if not _alive(r["pid"])]
        if stale:
            rag_vectors.drop(self.folder, self._remove(conn, stale))

    @staticmethod
    def _bump(conn: sqlite3.Connection, **values) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        values["version"] = (json.loads(row["value"]) if row else 0) + 1
        for key, value in values.items():
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))


def _meta(conn: sqlite3.Connection) -> dict:
    return {r["key"]: json.loads(r["value"]) for r in conn.execute("SELECT key, value FROM meta")}


def _visible(conn: sqlite3.Connection, column: str) -> str:
    """SQL that keeps documents still being written out of sight (a database from before had no such table)."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'pending'").fetchone():
        return f"{column} NOT IN (SELECT doc_id FROM pending)"
    return "1"


def _alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError, TypeError):
        return True
    return True


def list_names(owner: str) -> list[str]:
    root = owner_root(owner)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "chunks.sqlite").exists())


@contextlib.contextmanager
def in_use(owner: str, name: str) -> Iterator[None]:
    """Held (shared) by a job that writes into a collection, so that an empty one is not cleared away under it."""
    root = owner_root(owner)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{clean_name(name)}.use", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


def drop_if_empty(owner: str, name: str) -> bool:
    """Remove a collection with no document unless a job works in it; True when it went."""
    root = owner_root(owner)
    folder = root / clean_name(name)
    if not (folder / "chunks.sqlite").exists():
        return False
    with open(root / f".{folder.name}.use", "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        store = Collection(folder, folder.name)
        with store.writing():
            with closing(store._connect()) as conn, conn:
                conn.executescript(_SCHEMA)
                store._clear_stale(conn)
                if conn.execute("SELECT 1 FROM documents LIMIT 1").fetchone():
                    return False
            shutil.rmtree(folder, ignore_errors=True)
        return True


def _counted(owner: str) -> list[str]:
    """The owner's collections that count toward MAX_COLLECTIONS: those with documents."""
    root = owner_root(owner)
    return [n for n in list_names(owner) if Collection(root / n, n).documents()]


def _clear_empty(owner: str) -> None:
    for name in list_names(owner):
        drop_if_empty(owner, name)
