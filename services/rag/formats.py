"""How each format becomes text for RAG: `Section`s and `Document`s, the `TextBudget` a job reads against, the
sentences of what went wrong, and one parser per format (Markdown, HTML, PDF, DOCX, CSV; TXT is decoded)."""

from __future__ import annotations

import codecs
import csv
import html
import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser

from services.core.errors import PlaygroundError
from services.core.limits import get_limits


class ExtractError(PlaygroundError):
    """A document whose text cannot be read; the message says why."""


class TextCapReached(ExtractError):
    """A document that would take one indexing job past its cap on text."""

    def __init__(self, name: str, cap: int):
        super().__init__(cap_sentence([name], cap))
        self.name = name


def cap_sentence(names: list[str], cap: int) -> str:
    """One sentence for the documents left out because the job's text cap was reached."""
    listed = ", ".join(f"'{n}'" for n in names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"{listed} {'was' if len(names) == 1 else 'were'} not indexed: one indexing job reads at most "
        f"{cap / 2**20:g} MB of text. Index the rest in another job."
    )


class TextBudget:
    """Bytes of text one indexing job may still read (the limit `ingest_text_bytes` unless given)."""

    def __init__(self, total: int | None = None):
        self.total = get_limits().ingest_text_bytes if total is None else int(total)
        self.used = 0

    @property
    def left(self) -> int:
        return max(0, self.total - self.used)

    def charge(self, name: str, size: int) -> None:
        if size > self.left:
            raise TextCapReached(name, self.total)
        self.used += size


@dataclass
class Section:
    text: str
    page: int | None = None
    heading: str | None = None


@dataclass
class Document:
    name: str
    sections: list[Section]
    sha256: str = ""  # of the original bytes: it tells a re-upload from a new file (the bytes are not kept)
    size: int = 0  # bytes
    error: str | None = None  # an archive member that could not be read, and why (reported, not indexed)
    over_cap: bool = False  # refused because the job's text cap was reached
    partial: bool = False  # a preview that read only the beginning


def _decode(name: str, data: bytes, cut: bool = False) -> str:
    if b"\x00" in data[:65536]:
        raise ExtractError(f"'{name}' is not a text file: it holds binary data.")
    try:  # a beginning cut mid-character loses that character, nothing else
        return codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=not cut)
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


def _pdf(name: str, data: bytes, cap: int, preview: bool) -> tuple[list[Section], bool]:
    """Pages with text, up to `cap` characters: a preview stops there, an indexing job refuses the document."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    sections, chars = [], 0
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise ExtractError(f"'{name}' is password-protected: save an unprotected copy and upload that.")
        for number, page in enumerate(reader.pages, 1):
            if preview and chars >= cap:
                return sections, True
            text = (page.extract_text() or "").strip()
            if chars + len(text) > cap and not preview:
                raise TextCapReached(name, cap)
            if text:
                sections.append(Section(text, page=number))
                chars += len(text)
    except (PdfReadError, ValueError, KeyError) as err:
        raise ExtractError(f"'{name}' is not a readable PDF ({type(err).__name__}).") from err
    if not sections:
        raise ExtractError(
            f"'{name}' has no text layer (it looks scanned: pages are pictures). Run OCR on it first, then upload it."
        )
    return sections, False


def _docx(name: str, data: bytes, cap: int, preview: bool) -> list[Section]:
    import docx

    try:  # a .docx is a zip whose parts are read whole: what they claim to hold must fit (zipfile stops there)
        claimed = sum(m.file_size for m in zipfile.ZipFile(io.BytesIO(data)).infolist())
    except (zipfile.BadZipFile, ValueError) as err:
        raise ExtractError(f"'{name}' is not a readable Word document (.docx).") from err
    if claimed > cap:
        if preview:
            raise ExtractError(f"'{name}' is too large to preview: index it to see its chunks.")
        raise TextCapReached(name, cap)
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
