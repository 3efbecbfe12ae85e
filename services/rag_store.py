"""Where RAG collections live: per owner under ``PLAYGROUND_HOME/rag/<owner>/<collection>/``.

- ``chunks.sqlite``: documents (name, SHA-256 of the bytes, so a re-upload adds nothing), chunks (text, page,
  heading, span) and meta (embedding model, dimension, a version bumped on every change);
- ``vectors.npy`` + ``ids.npy``: the normalised embeddings and their chunk ids (the FAISS index is rebuilt from them
  when a collection is opened, and after a delete);
- chat history per owner in ``chats.sqlite`` beside the collections.

Writers take a file lock, so an ingest job (a child process) and a delete from the app never interleave. The demo
collection (the playground's own documentation) lives under ``rag/_demo`` and is read-only for everyone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import numpy as np

from services.config import get_settings
from services.errors import AccessDenied, PlaygroundError
from services.owners import owner_dir, safe_name

DEMO = "playground-docs"
MAX_COLLECTIONS = 20
MAX_DOCUMENTS = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (id INTEGER PRIMARY KEY, name TEXT, sha256 TEXT UNIQUE, size INTEGER,
    pages INTEGER, chunks INTEGER, added REAL);
CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY AUTOINCREMENT, doc_id INTEGER, ord INTEGER, text TEXT,
    page INTEGER, heading TEXT, start INTEGER, end_ INTEGER, tokens INTEGER);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
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
            if len(list_names(owner)) >= MAX_COLLECTIONS:
                raise CollectionError(f"You have {MAX_COLLECTIONS} collections already: delete one first.")
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
            raise AccessDenied("The demo collection is shared and read-only: make your own to add documents.")
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
            return {r["key"]: json.loads(r["value"]) for r in conn.execute("SELECT key, value FROM meta")}

    @property
    def version(self) -> int:
        return int(self.meta().get("version", 0))

    def documents(self) -> list[dict]:
        if not self.db.exists():
            return []
        with closing(self._connect()) as conn:
            rows = conn.execute("SELECT id, name, sha256, size, pages, chunks, added FROM documents ORDER BY added")
            return [dict(r) for r in rows]

    def has(self, sha256: str) -> dict | None:
        with closing(self._connect()) as conn:
            row = conn.execute("SELECT id, name FROM documents WHERE sha256 = ?", (sha256,)).fetchone()
            return dict(row) if row else None

    def chunks(self, ids: list[int] | None = None) -> list[dict]:
        query = (
            "SELECT c.id, c.text, c.page, c.heading, c.ord, c.start, c.end_ AS end, c.tokens, d.name AS source "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id"
        )
        with closing(self._connect()) as conn:
            if ids is None:
                return [dict(r) for r in conn.execute(query + " ORDER BY c.id")]
            found = {
                r["id"]: dict(r)
                for r in conn.execute(query + f" WHERE c.id IN ({','.join('?' * len(ids))})", [int(i) for i in ids])
            }
        return [found[i] for i in ids if i in found]

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids_path, vec_path = self.folder / "ids.npy", self.folder / "vectors.npy"
        if not ids_path.exists():
            return np.zeros(0, dtype=np.int64), np.zeros((0, int(self.meta().get("dim", 384))), dtype=np.float32)
        return np.load(ids_path), np.load(vec_path, mmap_mode="r")

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
        transaction and one write of the vectors; one added meanwhile by another writer goes to `skipped`."""
        with self.writing():
            meta = self.meta()
            if meta.get("model") and meta["model"] != model:
                raise CollectionError(
                    f"This collection was embedded with {meta['model']}; add documents with the same model."
                )
            if len(self.documents()) + len(items) > MAX_DOCUMENTS:
                raise CollectionError(f"A collection holds at most {MAX_DOCUMENTS} documents.")
            added, ids, rows, row = [], [], [], 0
            with closing(self._connect()) as conn, conn:
                for item in items:
                    count = len(item["chunks"])
                    if conn.execute("SELECT 1 FROM documents WHERE sha256 = ?", (item["sha256"],)).fetchone():
                        skipped.append(f"'{item['name']}' is already in the collection.")
                        row += count
                        continue
                    cursor = conn.execute(
                        "INSERT INTO documents (name, sha256, size, pages, chunks, added) VALUES (?, ?, ?, ?, ?, ?)",
                        (item["name"], item["sha256"], item["size"], item["pages"], count, time.time()),
                    )
                    doc_id = int(cursor.lastrowid)
                    for order, chunk in enumerate(item["chunks"]):
                        cursor = conn.execute(
                            "INSERT INTO chunks (doc_id, ord, text, page, heading, start, end_, tokens) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                doc_id,
                                order,
                                chunk.text,
                                chunk.page,
                                chunk.heading,
                                chunk.start,
                                chunk.end,
                                chunk.tokens,
                            ),
                        )
                        ids.append(int(cursor.lastrowid))
                        rows.append(row + order)
                    row += count
                    added.append({"name": item["name"], "chunks": count, "pages": item["pages"]})
                if ids:
                    old_ids, old_vectors = self.vectors()
                    self._save_vectors(
                        np.concatenate([old_ids, np.asarray(ids, dtype=np.int64)]),
                        np.concatenate([np.asarray(old_vectors), vectors[rows].astype(np.float32)]),
                    )
                    self._bump(conn, model=model, dim=int(vectors.shape[1]))
            return added

    def delete(self, doc_id: int) -> str:
        """Remove a document, its chunks and its vectors; returns its name."""
        with self.writing():
            with closing(self._connect()) as conn, conn:
                row = conn.execute("SELECT name FROM documents WHERE id = ?", (int(doc_id),)).fetchone()
                if row is None:
                    raise CollectionError("That document is not in this collection.")
                gone = {r["id"] for r in conn.execute("SELECT id FROM chunks WHERE doc_id = ?", (int(doc_id),))}
                conn.execute("DELETE FROM chunks WHERE doc_id = ?", (int(doc_id),))
                conn.execute("DELETE FROM documents WHERE id = ?", (int(doc_id),))
                ids, vectors = self.vectors()
                keep = ~np.isin(ids, list(gone))
                self._save_vectors(ids[keep], np.asarray(vectors)[keep])
                self._bump(conn)
            return row["name"]

    def destroy(self) -> None:
        with self.writing():
            shutil.rmtree(self.folder, ignore_errors=True)

    def _save_vectors(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        # Written beside and renamed: a reader never sees half a file.
        for name, array in (("vectors.npy", vectors), ("ids.npy", ids)):
            tmp = self.folder / f".{name}.tmp.npy"
            np.save(tmp, array)
            tmp.replace(self.folder / name)

    @staticmethod
    def _bump(conn: sqlite3.Connection, **values) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        values["version"] = (json.loads(row["value"]) if row else 0) + 1
        for key, value in values.items():
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))


def list_names(owner: str) -> list[str]:
    root = owner_root(owner)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "chunks.sqlite").exists())


# ---- chat history ---------------------------------------------------------------------------------------------


def _history_db(owner: str) -> sqlite3.Connection:
    root = owner_root(owner)
    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(root / "chats.sqlite", timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute(
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, collection TEXT, chat INTEGER, ts REAL, "
        "role TEXT, content TEXT, citations TEXT)"
    )
    return conn


def history(owner: str, collection: str) -> list[dict]:
    """The latest chat about a collection: messages with their citations."""
    with closing(_history_db(owner)) as conn:
        row = conn.execute("SELECT MAX(chat) AS chat FROM messages WHERE collection = ?", (collection,)).fetchone()
        if row["chat"] is None:
            return []
        rows = conn.execute(
            "SELECT role, content, citations FROM messages WHERE collection = ? AND chat = ? AND role != 'system' "
            "ORDER BY id",
            (collection, row["chat"]),
        )
        return [
            {"role": r["role"], "content": r["content"], "citations": json.loads(r["citations"] or "[]")} for r in rows
        ]


def remember(owner: str, collection: str, role: str, content: str, citations: list | None = None) -> None:
    with closing(_history_db(owner)) as conn, conn:
        row = conn.execute("SELECT MAX(chat) AS chat FROM messages WHERE collection = ?", (collection,)).fetchone()
        chat = row["chat"] or 1
        conn.execute(
            "INSERT INTO messages (collection, chat, ts, role, content, citations) VALUES (?, ?, ?, ?, ?, ?)",
            (collection, chat, time.time(), role, content, json.dumps(citations or [])),
        )


def new_chat(owner: str, collection: str) -> None:
    """Start a fresh chat; the old one stays in the database, out of view."""
    with closing(_history_db(owner)) as conn, conn:
        row = conn.execute("SELECT MAX(chat) AS chat FROM messages WHERE collection = ?", (collection,)).fetchone()
        conn.execute(
            "INSERT INTO messages (collection, chat, ts, role, content, citations) "
            "VALUES (?, ?, ?, 'system', '', '[]')",
            (collection, (row["chat"] or 0) + 1, time.time()),
        )
