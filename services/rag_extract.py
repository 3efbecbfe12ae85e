"""Text out of documents for RAG: TXT, Markdown, HTML, PDF (page by page), DOCX, CSV, and ZIP archives of them.

Each file becomes a list of `Section`s (text, page number where the format has pages, the heading it sits under).
Problems are sentences: an empty file, a PDF without a text layer (scanned), a binary file renamed .txt, an archive
with paths such as ``../../x`` (such members are skipped: nothing is ever written outside the archive's folder;
archives are read in memory, never extracted to disk) or too many / too large members.
"""

from __future__ import annotations

import csv
import html
import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path, PurePosixPath

from services.errors import PlaygroundError

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx", ".csv")
ZIP_MAX_MEMBERS = 200
ZIP_MAX_BYTES = 200 * 2**20  # uncompressed, all members together (a zip bomb stops here)


class ExtractError(PlaygroundError):
    """A document whose text cannot be read; the message says why."""


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class Document:
    name: str
    sections: list[Section]
    data: bytes  # the original bytes: their hash tells a re-upload from a new file
    error: str | None = None  # an archive member that could not be read, and why (reported, not indexed)


def _decode(name: str, data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise ExtractError(f"'{name}' is not a text file: it holds binary data.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ExtractError(f"'{name}' is not UTF-8 text (maybe a binary file renamed).") from err


def _markdown(text: str) -> list[Section]:
    """Paragraphs under their latest heading; headings start new sections so chunks respect them."""
    front = re.match(r"\A---\n.*?\n---\n", text, re.S)  # YAML front matter is metadata, not content
    if front:
        text = text[front.end() :]
    sections, heading, lines = [], None, []
    for line in text.splitlines():
        match = re.match(r"^\s{0,3}(#{1,6})\s+(.*)$", line)
        if match:
            if any(x.strip() for x in lines):
                sections.append(Section("\n".join(lines).strip(), heading=heading))
            heading, lines = match.group(2).strip(), [line]
        else:
            lines.append(line)
    if any(x.strip() for x in lines):
        sections.append(Section("\n".join(lines).strip(), heading=heading))
    return sections


class _HTMLText(HTMLParser):
    BLOCKS = frozenset(
        {"p", "div", "br", "li", "tr", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "td"}
    )

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style", "noscript", "template"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")
            if tag.startswith("h") and len(tag) == 2:
                self.parts.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag):
        if tag in ("script", "style", "noscript", "template") and self.skip:
            self.skip -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def _html(text: str) -> list[Section]:
    parser = _HTMLText()
    parser.feed(text)
    plain = html.unescape("".join(parser.parts))
    plain = re.sub(r"[ \t\r\f\v]+", " ", plain)
    plain = re.sub(r"\n\s*\n\s*(\n\s*)+", "\n\n", plain)
    return _markdown(plain.strip())


def _pdf(name: str, data: bytes) -> list[Section]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractError(f"'{name}' is password-protected: save an unprotected copy and upload that.")
        pages = [(i + 1, (page.extract_text() or "").strip()) for i, page in enumerate(reader.pages)]
    except (PdfReadError, ValueError, KeyError) as err:
        raise ExtractError(f"'{name}' is not a readable PDF ({type(err).__name__}).") from err
    sections = [Section(text, page=number) for number, text in pages if text]
    if not sections:
        raise ExtractError(
            f"'{name}' has no text layer (it looks scanned: pages are pictures). Run OCR on it first, then upload it."
        )
    return sections


def _docx(name: str, data: bytes) -> list[Section]:
    import docx

    try:
        document = docx.Document(io.BytesIO(data))
    except Exception as err:  # python-docx raises several kinds for a broken file
        raise ExtractError(f"'{name}' is not a readable Word document (.docx).") from err
    lines = []
    for paragraph in document.paragraphs:
        style = (paragraph.style.name or "").lower() if paragraph.style is not None else ""
        text = paragraph.text.strip()
        if not text:
            lines.append("")
        elif style.startswith("heading"):
            level = int(style.split()[-1]) if style.split()[-1].isdigit() else 1
            lines += ["", "#" * level + " " + text]
        else:
            lines.append(text)
    for table in document.tables:
        for row in table.rows:
            lines.append(" | ".join(cell.text.strip() for cell in row.cells))
    return _markdown("\n".join(lines))


def _csv(text: str) -> list[Section]:
    """Each row as `column: value` lines, a blank line between rows."""
    try:
        dialect = csv.Sniffer().sniff(text[:65536], delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    blocks = ["\n".join(f"{k}: {v}" for k, v in row.items() if k and v) for row in rows]
    return [Section("\n\n".join(b for b in blocks if b))] if any(blocks) else []


def extract(name: str, data: bytes) -> list[Document]:
    """The documents in one uploaded file (several for a ZIP)."""
    suffix = Path(name).suffix.lower()
    if suffix == ".zip":
        return _zip(name, data)
    if suffix not in SUFFIXES:
        raise ExtractError(
            f"'{name}' is not a document type RAG reads: use TXT, Markdown, HTML, PDF, DOCX, CSV or a ZIP of them."
        )
    if not data.strip():
        raise ExtractError(f"'{name}' is empty.")
    if suffix == ".pdf":
        if not data.startswith(b"%PDF"):
            raise ExtractError(f"'{name}' is not a PDF, whatever its name says.")
        sections = _pdf(name, data)
    elif suffix == ".docx":
        if not data.startswith(b"PK"):
            raise ExtractError(f"'{name}' is not a Word document, whatever its name says.")
        sections = _docx(name, data)
    else:
        text = _decode(name, data)
        sections = {".html": _html, ".htm": _html, ".csv": _csv}.get(suffix, _markdown)(text)
    sections = [s for s in sections if s.text.strip()]
    if not sections:
        raise ExtractError(f"'{name}' has no text in it.")
    return [Document(name, sections, data)]


def _zip(name: str, data: bytes) -> list[Document]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as err:
        raise ExtractError(f"'{name}' is not a ZIP archive, whatever its name says.") from err
    members = [m for m in archive.infolist() if not m.is_dir()]
    if len(members) > ZIP_MAX_MEMBERS:
        raise ExtractError(f"'{name}' holds {len(members)} files; at most {ZIP_MAX_MEMBERS} are read from an archive.")
    if sum(m.file_size for m in members) > ZIP_MAX_BYTES:
        raise ExtractError(f"'{name}' unpacks to more than {ZIP_MAX_BYTES // 2**20} MB: upload fewer files at once.")
    documents = []
    for member in members:
        path = PurePosixPath(member.filename.replace("\\", "/"))
        # Absolute paths and ../ are skipped, never followed; so are hidden files and other types.
        if path.is_absolute() or ".." in path.parts:
            documents.append(Document(member.filename, [], b"", f"'{member.filename}' points outside the archive."))
            continue
        if path.name.startswith(".") or "__MACOSX" in path.parts or path.suffix.lower() not in SUFFIXES:
            continue
        try:
            documents += extract(path.as_posix(), archive.read(member))
        except ExtractError as err:  # one bad member does not sink the archive; it is reported, the rest indexed
            documents.append(Document(path.as_posix(), [], b"", str(err)))
    if not any(d.sections for d in documents):
        raise ExtractError(f"'{name}' holds no document RAG can read (TXT, Markdown, HTML, PDF, DOCX, CSV).")
    return documents
