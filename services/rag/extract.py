"""Text out of documents for RAG: TXT, Markdown, HTML, PDF (page by page), DOCX, CSV, and ZIP archives of them.

Each file becomes a list of `Section`s (text, page number where the format has pages, the heading it sits under).
Problems are sentences: an empty file, a PDF without a text layer (scanned), a binary file renamed .txt, an archive
with paths such as ``../../x`` (such members are skipped: nothing is ever written outside the archive's folder;
archives are read as streams, never extracted to disk) or too many / too large members.

Text is read against a `TextBudget` (one indexing job's cap, PLAYGROUND_MAX_INGEST_TEXT_MB): archive members are
decompressed as streams and counted as they come, so a zip bomb or a member whose header lies stops at the cap,
and a document past it is refused while the rest is indexed. `iter_documents` yields one document at a time and
keeps only its hash, not its bytes; with ``preview=True`` it reads only the beginning of the first documents.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from services.rag.formats import (  # noqa: F401  (their home before; callers import them here)
    Document,
    ExtractError,
    Section,
    TextBudget,
    TextCapReached,
    _csv,
    _decode,
    _docx,
    _html,
    _HTMLText,
    _markdown,
    _pdf,
    cap_sentence,
)

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv")
ZIP_MAX_MEMBERS = 200
ZIP_MAX_BYTES = 200 * 2**20  # what the headers claim, all members together: an obvious bomb is refused unread
ZIP_MAX_DIRECTORY = 4 * 2**20  # the archive's table of contents (200 entries take a few tens of KB)
READ_BLOCK = 2**20
PREVIEW_CHARS = 100_000  # a preview shows the beginning of each document: at most this many characters
PREVIEW_BYTES = 4 * PREVIEW_CHARS  # raw bytes read for that from a text file (markup and UTF-8 take more)
PREVIEW_BINARY_BYTES = 20 * 2**20  # a PDF or DOCX has to be read whole: bigger ones are not previewed
_BINARY = (".pdf", ".docx")


def extract(name: str, data: bytes, budget: TextBudget | None = None) -> list[Document]:
    """The documents in one uploaded file (several for a ZIP), from its bytes."""
    return list(iter_documents(name, data, budget))


def iter_documents(
    name: str, source: bytes | Path, budget: TextBudget | None = None, *, preview: bool = False
) -> Iterator[Document]:
    """The documents in one file (its bytes or its path), one at a time, each read against `budget` (the job's text
    cap). With `preview`, only the beginning of each is read and a document cut short is marked `partial`."""
    budget = TextBudget() if budget is None else budget
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        yield from _zip(name, source, budget, preview)
        return
    if suffix not in SUFFIXES:
        raise ExtractError(
            f"'{name}' is not a document type RAG reads: use TXT, Markdown, HTML, PDF, DOCX, CSV or a ZIP of them."
        )
    cap = _cap(suffix, budget, preview)
    if isinstance(source, Path):
        if not preview and source.stat().st_size > cap:
            raise TextCapReached(name, budget.total)
        with source.open("rb") as stream:
            data, cut = _read(stream, cap)
    else:
        data, cut = (source, False) if preview or len(source) <= cap else (b"", True)
    document = _document(name, data, budget, preview, cut)
    del data  # only the hash is kept
    yield document


def _cap(suffix: str, budget: TextBudget, preview: bool) -> int:
    if preview:
        return PREVIEW_BINARY_BYTES if suffix in _BINARY else PREVIEW_BYTES
    return budget.left


def _read(stream, cap: int) -> tuple[bytearray, bool]:
    """At most `cap` bytes of a stream, counted as they are decompressed (a header's claim is not trusted), and
    whether there was more."""
    data = bytearray()
    while len(data) <= cap:
        block = stream.read(min(READ_BLOCK, cap + 1 - len(data)))
        if not block:
            return data, False
        data += block
    del data[cap:]
    return data, True


def _document(name: str, data: bytes | bytearray, budget: TextBudget, preview: bool, cut: bool) -> Document:
    """One file's bytes as sections; charged to the budget (an indexing job) or cut at its beginning (a preview)."""
    suffix = Path(name).suffix.lower()
    if cut and not preview:
        raise TextCapReached(name, budget.total)
    if cut and suffix in _BINARY:
        raise ExtractError(f"'{name}' is too large to preview: index it to see its chunks.")
    if not data or data.isspace():
        raise ExtractError(f"'{name}' is empty.")
    if suffix in _BINARY:
        if not data.startswith(b"%PDF" if suffix == ".pdf" else b"PK"):
            kind = "a PDF" if suffix == ".pdf" else "a Word document"
            raise ExtractError(f"'{name}' is not {kind}, whatever its name says.")
        try:
            if suffix == ".pdf":
                sections, cut = _pdf(name, data, PREVIEW_CHARS if preview else budget.left, preview)
            else:
                sections = _docx(name, data, PREVIEW_BINARY_BYTES if preview else budget.left, preview)
        except TextCapReached:
            raise TextCapReached(name, budget.total) from None
    else:
        text = _decode(name, data, cut)
        if preview and len(text) > PREVIEW_CHARS:
            text, cut = text[:PREVIEW_CHARS], True
        sections = {".html": _html, ".htm": _html, ".csv": _csv}.get(suffix, _markdown)(text)
        del text
    sections = [s for s in sections if s.text and not s.text.isspace()]
    if preview:
        sections, trimmed = _trim(sections, PREVIEW_CHARS)
        cut = cut or trimmed
    if not sections:
        raise ExtractError(f"'{name}' has no text in it.")
    if preview:
        return Document(name, sections, size=len(data), partial=cut)
    budget.charge(name, max(len(data), sum(len(s.text) for s in sections)))
    return Document(name, sections, hashlib.sha256(data).hexdigest(), len(data))


def _trim(sections: list[Section], cap: int) -> tuple[list[Section], bool]:
    kept, chars = [], 0
    for section in sections:
        if chars + len(section.text) > cap:
            if cap > chars:
                kept.append(Section(section.text[: cap - chars], section.page, section.heading))
            return kept, True
        kept.append(section)
        chars += len(section.text)
    return kept, False


def _zip(name: str, source: bytes | Path, budget: TextBudget, preview: bool) -> Iterator[Document]:
    with source.open("rb") if isinstance(source, Path) else io.BytesIO(source) as stream:
        _check_directory(name, stream)
        try:
            archive = zipfile.ZipFile(stream)
        except zipfile.BadZipFile as err:
            raise ExtractError(f"'{name}' is not a ZIP archive, whatever its name says.") from err
        members = [m for m in archive.infolist() if not m.is_dir()]
        if len(members) > ZIP_MAX_MEMBERS:
            raise ExtractError(
                f"'{name}' holds {len(members)} files; at most {ZIP_MAX_MEMBERS} are read from an archive."
            )
        if sum(m.file_size for m in members) > ZIP_MAX_BYTES:
            raise ExtractError(
                f"'{name}' unpacks to more than {ZIP_MAX_BYTES // 2**20} MB: upload fewer files at once."
            )
        readable = False
        for member in members:
            path = PurePosixPath(member.filename.replace("\\", "/"))
            # Absolute paths and ../ are skipped, never followed; so are hidden files and other types.
            if path.is_absolute() or ".." in path.parts:
                yield Document(member.filename, [], error=f"'{member.filename}' points outside the archive.")
                continue
            if path.name.startswith(".") or "__MACOSX" in path.parts or path.suffix.lower() not in SUFFIXES:
                continue
            document = _member(archive, member, path.as_posix(), budget, preview)
            readable = readable or bool(document.sections) or document.over_cap
            yield document  # one bad member does not sink the archive; it is reported, the rest indexed
            del document  # not held while the next member is read
        if not readable:
            raise ExtractError(f"'{name}' holds no document RAG can read (TXT, Markdown, HTML, PDF, DOCX, CSV).")


def _member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, name: str, budget: TextBudget, preview: bool):
    """One archive member, decompressed as a stream no further than allowed; a problem becomes its `error`."""
    if member.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        # bzip2 and LZMA members inflate a whole block at once, past any budget: they are not read
        error = f"'{name}' is compressed in a way RAG does not read: zip it again with the usual compression."
        return Document(name, [], error=error)
    if member.flag_bits & 0x1:
        return Document(name, [], error=f"'{name}' is password-protected inside the archive.")
    cap = _cap(Path(name).suffix.lower(), budget, preview)
    if not preview and member.file_size > cap:  # a claim too big is believed; one too small is counted below
        return Document(name, [], error=cap_sentence([name], budget.total), over_cap=True)
    try:
        with archive.open(member) as stream:
            data, cut = _read(stream, cap)
        return _document(name, data, budget, preview, cut)
    except TextCapReached as err:
        return Document(name, [], error=str(err), over_cap=True)
    except ExtractError as err:
        return Document(name, [], error=str(err))
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError):  # zipfile stops at the claimed size: a bad CRC
        error = f"'{name}' is damaged inside the archive: its size or checksum does not match its contents."
        return Document(name, [], error=error)


def _check_directory(name: str, stream) -> None:
    """Refuse an archive whose table of contents is huge before zipfile reads all of it into memory."""
    size = stream.seek(0, io.SEEK_END)
    stream.seek(max(0, size - 22 - 65535))
    tail = stream.read()
    at = tail.rfind(b"PK\x05\x06")
    entries = directory = 0
    if at >= 0 and len(tail) - at >= 22:
        entries, directory = struct.unpack("<HI", tail[at + 10 : at + 16])
        if (entries == 0xFFFF or directory == 0xFFFFFFFF) and tail[at - 20 : at - 16] == b"PK\x06\x07":
            stream.seek(struct.unpack("<Q", tail[at - 12 : at - 4])[0])  # the ZIP64 record holds the real counts
            record = stream.read(56)
            if record[:4] == b"PK\x06\x06":
                entries, directory = struct.unpack("<QQ", record[32:48])
    stream.seek(0)
    if entries > 10 * ZIP_MAX_MEMBERS or directory > ZIP_MAX_DIRECTORY:
        raise ExtractError(f"'{name}' holds {entries:,} files; at most {ZIP_MAX_MEMBERS} are read from an archive.")
