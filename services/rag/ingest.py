"""RAG ingestion: files into a collection, the embedding model, the chunk preview and the shared demo collection.

`ingest()` reads each file (services.rag.extract), cuts it in tokens of the embedding model's tokenizer
(services.rag.chunk), embeds the chunks with sentence-transformers and stores them (services.rag.store); the same
file twice is skipped by its SHA-256, and every refusal is a sentence in the summary. Documents come one at a time
and chunks are embedded and stored in batches, so a job's memory stays about one document's text plus one batch;
the text one job reads is capped (services.core.limits `ingest_text_bytes`). The preview reads only what it shows.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.rag.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE, chunk_sections, iter_chunks
from services.rag.extract import (
    PREVIEW_CHARS,
    ExtractError,
    Section,
    TextBudget,
    TextCapReached,
    cap_sentence,
    extract,
    iter_documents,
)
from services.rag.store import (
    DEMO,
    Collection,
    check_new_name,
    drop_if_empty,
    in_use,
    list_names,
    owner_root,
    rag_root,
)

logger = logging.getLogger(__name__)

EMBEDDER = "all-minilm-l6-v2"
RERANKER = "cross-encoder/ms-marco-MiniLM-L6-v2"
DOCS_DIR = Path(__file__).resolve().parents[2] / "assets" / "docs"
Progress = Callable[[float, str], None]
BATCH_CHUNKS = 512  # chunks embedded and stored together: big batches for the model, one write of the vectors
PREVIEW_DOCUMENTS = 5  # documents of an archive shown by the chunk preview


# ---- models -------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def embedder(model: str = EMBEDDER):
    """A sentence-transformers model: the packaged MiniLM offline, any sentence-transformers id on a Space."""
    from sentence_transformers import SentenceTransformer

    from services.models import packs

    location = str(packs.ensure_ready(model)) if model in packs.PACKS else model
    if model not in packs.PACKS and get_settings().offline:
        raise PlaygroundError(f"'{model}' is a Hub model and the playground is offline: use {EMBEDDER}.")
    from services.core.system import device_info

    return SentenceTransformer(location, device=device_info().device)


def embed(texts: list[str], model: str = EMBEDDER, batch_size: int | None = None) -> np.ndarray:
    """Unit vectors of `texts`. On a CPU the model runs 16 texts at a time: as fast as 64 there (65 against 56
    chunks/s on 2 cores) and ~270 MB less memory at its peak; a GPU takes 64."""
    encoder = embedder(model)
    if batch_size is None:
        batch_size = 16 if encoder.device.type == "cpu" else 64
    vectors = encoder.encode(
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


class _Job:
    """One indexing job: documents read one at a time against the job's text budget, their chunks embedded and
    stored BATCH_CHUNKS at a time, even inside one document (its row is begun with its first chunk and completed
    with the batch that holds its last), so memory holds one document's text and one batch, whatever the total."""

    def __init__(self, store: Collection, model: str, size: int, overlap: int, progress: Progress):
        self.store, self.model, self.size, self.overlap, self.progress = store, model, size, overlap, progress
        self.tokenizer = embedder(model).tokenizer
        self.budget = TextBudget()
        self.rows: list[tuple] = []  # (doc_id, order, chunk) waiting to be embedded
        self.done: dict[int, int] = {}  # documents whose last chunk is in `rows`: doc_id -> chunk count
        self.open: dict[int, dict] = {}  # begun, not complete yet: doc_id -> its line in the summary
        self.added: list[dict] = []
        self.skipped: list[str] = []
        self.refused: list[str] = []
        self.capped: list[str] = []  # documents past the text budget, reported in one sentence
        self.seen: set[str] = set()

    def read(self, path: Path, fraction: float) -> None:
        notes: list[str] = []  # an archive's bad members, reported unless the whole archive is refused
        try:
            for document in iter_documents(path.name, path, self.budget):
                if document.over_cap:
                    self.capped.append(document.name)
                elif document.error:
                    notes.append(document.error)
                elif self.store.has(document.sha256) or document.sha256 in self.seen:
                    self.skipped.append(f"'{document.name}' is already in the collection.")
                else:
                    self.seen.add(document.sha256)
                    pages = len({s.page for s in document.sections if s.page is not None})
                    chunks = iter_chunks(document.sections, self.tokenizer, self.size, self.overlap)
                    self.add(document.name, document.sha256, document.size, pages, chunks, fraction)
                    del chunks
                del document  # its text goes before the next one is read
        except TextCapReached as err:
            self.capped.append(err.name)
        except (ExtractError, OSError) as err:
            notes = [str(err)]
        self.refused += notes

    def add(self, name: str, sha256: str, size: int, pages: int, chunks: Iterator, fraction: float) -> None:
        first = next(chunks, None)
        if first is None:
            self.refused.append(f"'{name}' has no text to index.")
            return
        doc_id = self.store.begin(name, sha256, size, pages, self.model)
        if doc_id is None:  # added meanwhile by another job
            self.skipped.append(f"'{name}' is already in the collection.")
            return
        self.open[doc_id] = {"name": name, "chunks": 0, "pages": pages}
        for order, chunk in enumerate(itertools.chain([first], chunks)):
            self.rows.append((doc_id, order, chunk))
            if len(self.rows) >= BATCH_CHUNKS:
                self.flush(fraction)
        self.open[doc_id]["chunks"] = self.done[doc_id] = order + 1

    def flush(self, fraction: float) -> None:
        if not self.rows and not self.done:
            return
        texts = [_embedding_text(chunk.text, chunk.heading) for _, _, chunk in self.rows]
        if texts:
            self.progress(fraction, f"Embedding {len(texts)} chunks")
        vectors = embed(texts, self.model) if texts else np.zeros((0, 1), dtype=np.float32)
        self.store.append(self.rows, vectors, self.model, self.done)
        self.added += [self.open.pop(doc_id) for doc_id in self.done]
        self.rows, self.done = [], {}

    def abort(self) -> None:
        """A failed job leaves no half document behind."""
        for doc_id in list(self.open):
            try:
                self.store.abort(doc_id)
            except Exception:  # the job's own error is the one to report
                logger.exception("Could not remove the unfinished document %s from %s", doc_id, self.store.folder)

    def summary(self) -> dict:
        if self.capped:
            self.refused.append(cap_sentence(self.capped, self.budget.total))
        total = sum(a["chunks"] for a in self.added)
        self.progress(1.0, f"Indexed {total} chunks from {len(self.added)} document(s)")
        if not self.added and not self.skipped and self.refused:
            raise PlaygroundError(" ".join(self.refused))
        return {"collection": self.store.name, "added": self.added, "skipped": self.skipped,
                "refused": self.refused, "chunks": total}  # fmt: skip


@contextlib.contextmanager
def _job(collection: str, owner: str, model: str, size: int, overlap: int, progress: Progress) -> Iterator[_Job]:
    """A job on the collection, which it holds in use while it runs. One the job made is removed again when the
    job added nothing to it (everything refused, or it failed); a failure removes its half-written document."""
    name = check_new_name(collection, owner)
    created = False
    try:
        with in_use(owner, name):
            created = not (owner_root(owner) / name / "chunks.sqlite").exists()
            job = _Job(Collection.open(name, owner, create=True), model, size, overlap, progress)
            try:
                yield job
                job.flush(1.0)
            except BaseException:
                job.abort()
                raise
    finally:
        if created:
            drop_if_empty(owner, name)


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
    """Add files to a collection (made when new); returns what was added, skipped and refused, in words. Text
    beyond the job's cap (PLAYGROUND_MAX_INGEST_TEXT_MB) is refused and the rest indexed."""
    progress = progress or (lambda f, m: None)
    settings = get_settings()
    with _job(collection, owner, model, chunk_size, overlap, progress) as job:
        for number, raw in enumerate(paths):
            path = Path(raw)
            progress(number / max(len(paths), 1), f"Reading {path.name}")
            size = path.stat().st_size if path.exists() else 0
            if size > settings.max_upload_bytes:
                job.refused.append(
                    f"'{path.name}' is {size / 2**20:.0f} MB; files up to {settings.max_upload_bytes / 2**20:.0f} MB "
                    "are accepted."
                )
                continue
            job.read(path, number / max(len(paths), 1))
    return job.summary()


def _embedding_text(text: str, heading: str | None) -> str:
    return f"{heading}\n{text}" if heading and not text.lstrip("# ").startswith(heading) else text


def preview(path: str | Path, chunk_size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP, limit: int = 40) -> dict:
    """How a file would be cut, before anything is indexed: its first documents (PREVIEW_DOCUMENTS), the beginning
    of each (PREVIEW_CHARS), their first sections and chunks. Only that much is read, so the time and memory it
    takes do not grow with the file; `partial` says when there is more than was shown."""
    path = Path(path)
    tokenizer = embedder().tokenizer
    out, partial = [], False
    for document in iter_documents(path.name, path, preview=True):
        if document.error:
            continue
        if len(out) == PREVIEW_DOCUMENTS:
            partial = True  # one more readable document than is shown
            break
        chunks = chunk_sections(document.sections, tokenizer, chunk_size, overlap)  # the beginning only
        out.append(
            {
                "name": document.name,
                "sections": [{"text": s.text, "page": s.page, "heading": s.heading} for s in document.sections[:10]],
                "chunks": [c.__dict__ for c in chunks[:limit]],
                "total_chunks": len(chunks),
                "partial": document.partial,
            }
        )
        partial = partial or document.partial
    return {"documents": out, "partial": partial, "preview_chars": PREVIEW_CHARS,
            "preview_documents": PREVIEW_DOCUMENTS}  # fmt: skip


_demo_lock = threading.Lock()


def ensure_demo() -> Collection:
    """The shared demo collection, built from the playground's own documentation the first time it is needed and
    brought up to date when a page changes (`python app.py` does it before serving; the lock keeps concurrent first
    visitors from building it twice)."""
    store = Collection(rag_root_demo(), DEMO, read_only=True)
    files = [*sorted(DOCS_DIR.glob("*.md")), Path(__file__).resolve().parents[2] / "README.md"]
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
            if writable.has(document.sha256):
                continue
            chunks = chunk_sections(document.sections, tokenizer)
            vectors = embed([_embedding_text(c.text, c.heading) for c in chunks])
            writable.add(document.name, document.sha256, document.size, 0, chunks, vectors, EMBEDDER)
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
    from services.core import uploads
    from services.rag.extract import SUFFIXES

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
    from services.data.sources import load, require_columns

    progress = progress or (lambda f, m: None)
    progress(0.0, f"Loading {dataset}")
    rows = load(dataset, split=split)["train"]
    require_columns(rows, {"text column": column})
    rows = rows.select(range(min(limit, rows.num_rows)))
    sections = [Section(str(text), page=i + 1) for i, text in enumerate(rows[column]) if str(text or "").strip()]
    if not sections:
        raise PlaygroundError(f"The column '{column}' of {dataset} has no text.")
    name = f"{dataset} [{split}] {column}"
    digest = hashlib.sha256(f"{dataset}\n{split}\n{column}\n{len(sections)}".encode()).hexdigest()
    with _job(collection, owner, EMBEDDER, chunk_size, overlap, progress) as job:
        if job.store.has(digest):
            job.skipped.append(f"'{name}' is already in the collection.")
        else:
            chunks = iter_chunks(sections, job.tokenizer, chunk_size, overlap)
            job.add(name, digest, sum(len(s.text) for s in sections), len(sections), chunks, 0.3)
    return job.summary()
