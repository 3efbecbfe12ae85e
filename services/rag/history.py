"""Chat history of the RAG tab, per owner in ``PLAYGROUND_HOME/rag/<owner>/chats.sqlite`` beside the collections:
the latest chat about each collection with its citations (a new chat keeps the old one in the database), and the
collection the visitor last worked with, so a reload opens it again."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing

from services.core.config import get_settings
from services.core.owners import owner_dir


def _history_db(owner: str) -> sqlite3.Connection:
    root = owner_dir(get_settings().home / "rag", owner)  # beside the owner's collections (rag_store)
    root.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(root / "chats.sqlite", timeout=30)
    conn.row_factory = sqlite3.Row
    conn.execute(
        "CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, collection TEXT, chat INTEGER, ts REAL, "
        "role TEXT, content TEXT, citations TEXT)"
    )
    conn.execute("CREATE TABLE IF NOT EXISTS prefs (key TEXT PRIMARY KEY, value TEXT)")
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


def last_collection(owner: str) -> str | None:
    """The collection this owner last chose, asked or indexed into (None before any)."""
    with closing(_history_db(owner)) as conn:
        row = conn.execute("SELECT value FROM prefs WHERE key = 'collection'").fetchone()
        return row["value"] if row else None


def choose_collection(owner: str, collection: str) -> None:
    with closing(_history_db(owner)) as conn, conn:
        conn.execute("INSERT OR REPLACE INTO prefs (key, value) VALUES ('collection', ?)", (collection,))
