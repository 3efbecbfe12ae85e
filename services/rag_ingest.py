"""RAG ingestion: files into a collection, the embedding model, the chunk preview and the shared demo collection.

`ingest()` reads each file (services.rag_extract), cuts it in tokens of the embedding model's tokenizer
(services.rag_chunk), embeds the chunks with sentence-transformers and stores them (services.rag_store); the same
file twice is skipped by its SHA-256, and every refusal is a sentence in the summary.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from services.config import get_settings
from services.errors import PlaygroundError
from services.rag_chunk import DEFAULT_OVERLAP, DEFAULT_SIZE, chunk_sections
from services.rag_extract import ExtractError, extract
from services.rag_store import DEMO, Collection, list_names, rag_root

logger = logging.getLogger(__name__)

EMBEDDER = "all-minilm-l6-v2"
RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"
DOCS_DIR = Path(__file__).resolve().parent.parent / "assets" / "docs"
Progress = Callable[[float, str], None]
BATCH_CHUNKS = 512  # chunks embedded and stored together: big batches for the model, one write of the vectors


# ---- models -------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def embedder(model: str = EMBEDDER):
    """A sentence-transformers model: the packaged MiniLM offline, any sentence-transformers id on a Space."""
    from sentence_transformers import SentenceTransformer

    from services import packs

    location = str(packs.ensure_ready(model)) if model in packs.PACKS else model
    if model not in packs.PACKS and get_settings().offline:
        raise PlaygroundError(f"'{model}' is a Hub model and the playground is offline: use {EMBEDDER}.")
    from services.system import device_info

    return SentenceTransformer(location, device=device_info().device)


def embed(texts: list[str], model: str = EMBEDDER, batch_size: int = 64) -> np.ndarray:
    vectors = embedder(model).encode(
        texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=1)
def reranker(model: str = RERANKER):
    from sentence_transformers import CrossEncoder

    if get_settings().offline:
        raise PlaygroundError("The re-ranker is a Hub model and the playground is offline: turn re-ranking off.")
    return CrossEncoder(model)


# ---- ingestion ----------------------------------------------------------------------------------------------


def ingest(
    collection: str,
    paths: list[str | Path],
    owner: str,
    *,
    chunk_size: int = DEFAULT_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Progress | None = None,
    model: str = EMBEDDER,
) -> dict:
    """Add files to a collection (made when new); returns what was added, skipped and refused, in words."""
    progress = progress or (lambda f, m: None)
    store = Collection.open(collection, owner, create=True)
    tokenizer = embedder(model).tokenizer
    added, skipped, refused = [], [], []
    pending: list[dict] = []  # documents read and cut, waiting to be embedded together (batches of 64 texts)
    settings = get_settings()

    def flush(fraction: float) -> None:
        if not pending:
            return
        texts = [_embedding_text(c.text, c.heading) for p in pending for c in p["chunks"]]
        progress(fraction, f"Embedding {len(texts)} chunks")
        vectors = embed(texts, model)
        added.extend(store.add_many(pending, vectors, model, skipped))
        pending.clear()

    for number, raw in enumerate(paths):
        path = Path(raw)
        progress(number / max(len(paths), 1), f"Reading {path.name}")
        size = path.stat().st_size if path.exists() else 0
        if size > settings.max_upload_bytes:
            refused.append(
                f"'{path.name}' is {size / 2**20:.0f} MB; files up to {settings.max_upload_bytes / 2**20:.0f} MB are "
                "accepted."
            )
            continue
        try:
            documents = extract(path.name, path.read_bytes())
        except (ExtractError, OSError) as err:
            refused.append(str(err))
            continue
        for document in documents:
            if document.error:
                refused.append(document.error)
                continue
            digest = hashlib.sha256(document.data).hexdigest()
            if store.has(digest) or digest in {p["sha256"] for p in pending}:
                skipped.append(f"'{document.name}' is already in the collection.")
                continue
            chunks = chunk_sections(document.sections, tokenizer, chunk_size, overlap)
            if not chunks:
                refused.append(f"'{document.name}' has no text to index.")
                continue
            pages = len({s.page for s in document.sections if s.page is not None})
            pending.append({"name": document.name, "sha256": digest, "size": len(document.data), "pages": pages,
                            "chunks": chunks})  # fmt: skip
            if sum(len(p["chunks"]) for p in pending) >= BATCH_CHUNKS:
                flush(number / max(len(paths), 1))
    flush(1.0)
    total = sum(a["chunks"] for a in added)
    progress(1.0, f"Indexed {total} chunks from {len(added)} document(s)")
    if not added and not skipped and refused:
        raise PlaygroundError(" ".join(refused))
    return {"collection": store.name, "added": added, "skipped": skipped, "refused": refused, "chunks": total}


def _embedding_text(text: str, heading: str | None) -> str:
    return f"{heading}\n{text}" if heading and not text.lstrip("# ").startswith(heading) else text


def preview(path: str | Path, chunk_size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP, limit: int = 40) -> dict:
    """How a file would be cut, before anything is indexed: its first sections with their chunks' spans."""
    path = Path(path)
    documents = [d for d in extract(path.name, path.read_bytes()) if not d.error]
    tokenizer = embedder().tokenizer
    out = []
    for document in documents[:5]:
        chunks = chunk_sections(document.sections, tokenizer, chunk_size, overlap)
        out.append(
            {
                "name": document.name,
                "sections": [{"text": s.text, "page": s.page, "heading": s.heading} for s in document.sections[:10]],
                "chunks": [c.__dict__ for c in chunks[:limit]],
                "total_chunks": len(chunks),
            }
        )
    return {"documents": out}


_demo_lock = threading.Lock()


def ensure_demo() -> Collection:
    """The shared demo collection, built from the playground's own documentation the first time it is needed and
    brought up to date when a page changes (`python app.py` does it before serving; the lock keeps concurrent first
    visitors from building it twice)."""
    store = Collection(rag_root_demo(), DEMO, read_only=True)
    files = [*sorted(DOCS_DIR.glob("*.md")), Path(__file__).resolve().parent.parent / "README.md"]
    wanted = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in files}
    if {d["name"]: d["sha256"] for d in store.documents()} == wanted:
        return store
    with _demo_lock:
        writable = Collection(store.folder, DEMO)
        writable.folder.mkdir(parents=True, exist_ok=True)
        writable._init()
        for document in writable.documents():  # pages that changed or went away
            if wanted.get(document["name"]) != document["sha256"]:
                writable.delete(document["id"])
        tokenizer = embedder().tokenizer
        for path in files:
            document = extract(path.name, path.read_bytes())[0]
            digest = hashlib.sha256(document.data).hexdigest()
            if writable.has(digest):
                continue
            chunks = chunk_sections(document.sections, tokenizer)
            vectors = embed([_embedding_text(c.text, c.heading) for c in chunks])
            writable.add(document.name, digest, len(document.data), 0, chunks, vectors, EMBEDDER)
    return store


def rag_root_demo() -> Path:
    return rag_root() / "_demo" / DEMO


def collections(owner: str) -> list[dict]:
    """The owner's collections (and the shared demo), with document and chunk counts."""
    out = []
    for name in [DEMO, *list_names(owner)]:
        store = Collection.open(name, owner) if name != DEMO else Collection(rag_root_demo(), DEMO, read_only=True)
        documents = store.documents()
        out.append(
            {
                "name": name,
                "documents": len(documents),
                "chunks": sum(d["chunks"] for d in documents),
                "shared": name == DEMO,
            }
        )
    return out


def stage(paths: list[str], owner: str) -> list[str]:
    """Copy uploads into the owner's folder (type and size checked, names kept readable) for an ingest job."""
    from services import uploads
    from services.rag_extract import SUFFIXES

    kind = "a document type RAG reads: use TXT, Markdown, HTML, PDF, DOCX, CSV or a ZIP"
    return uploads.stage(paths, owner, "rag", (*SUFFIXES, ".zip"), kind, name=display_name)


def display_name(stem: str, max_len: int = 100) -> str:
    """A file name stem that keeps its letters in any script (people see it in citations) but loses path parts,
    control characters and leading dots."""
    import unicodedata

    stem = unicodedata.normalize("NFC", Path(stem.replace("\\", "/")).name)
    stem = "".join(ch for ch in stem if unicodedata.category(ch)[0] != "C" and ch not in '/\\:*?"<>|')
    return stem.strip(" .")[:max_len] or "document"


def ingest_dataset(
    collection: str,
    dataset: str,
    column: str,
    owner: str,
    *,
    split: str = "train",
    limit: int = 20_000,
    chunk_size: int = DEFAULT_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    progress: Progress | None = None,
) -> dict:
    """Index one text column of a Hub dataset (on a Space: it needs the Hub), at most `limit` rows; each row is a
    section, so a chunk never mixes rows, and its row number is kept as the chunk's page."""
    from services.datasets import load, require_columns
    from services.rag_extract import Section

    progress = progress or (lambda f, m: None)
    progress(0.0, f"Loading {dataset}")
    rows = load(dataset, split=split)["train"]
    require_columns(rows, {"text column": column})
    rows = rows.select(range(min(limit, rows.num_rows)))
    sections = [Section(str(text), page=i + 1) for i, text in enumerate(rows[column]) if str(text or "").strip()]
    if not sections:
        raise PlaygroundError(f"The column '{column}' of {dataset} has no text.")
    store = Collection.open(collection, owner, create=True)
    name = f"{dataset} [{split}] {column}"
    digest = hashlib.sha256(f"{dataset}\n{split}\n{column}\n{len(sections)}".encode()).hexdigest()
    if store.has(digest):
        return {"collection": store.name, "added": [], "skipped": [f"'{name}' is already in the collection."],
                "refused": [], "chunks": 0}  # fmt: skip
    chunks = chunk_sections(sections, embedder().tokenizer, chunk_size, overlap)
    progress(0.3, f"Embedding {len(chunks)} chunks")
    vectors = embed([c.text for c in chunks])
    skipped: list[str] = []
    item = {"name": name, "sha256": digest, "size": sum(len(s.text) for s in sections), "pages": len(sections),
            "chunks": chunks}  # fmt: skip
    added = store.add_many([item], vectors, EMBEDDER, skipped)
    progress(1.0, f"Indexed {len(chunks)} chunks from {len(sections)} rows")
    return {"collection": store.name, "added": added, "skipped": skipped, "refused": [], "chunks": len(chunks)}
