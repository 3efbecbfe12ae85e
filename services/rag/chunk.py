"""Chunking for RAG, counted in tokens of the embedding model's own tokenizer.

A section (a page, or the text under one heading) is cut into sentences; sentences are packed into chunks of at most
`size` tokens, and each new chunk starts with the last sentences of the previous one up to `overlap` tokens. Chunks
never cross a section, so headings and pages are respected; a sentence longer than `size` is cut at token
boundaries. Each chunk keeps its character span in the section, which the preview colours.

Chunks come one at a time (`iter_chunks`): sentences are counted in bounded batches and only their token counts
are kept, so a document of any size is cut in memory that does not grow with it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from services.core.errors import PlaygroundError
from services.rag.extract import Section

DEFAULT_SIZE = 160
DEFAULT_OVERLAP = 32
COUNT_BATCH = 256  # sentences counted in one tokenizer call ...
COUNT_CHARS = 200_000  # ... or this many characters, whichever comes first
WINDOW_CHARS = 50_000  # a longer sentence is tokenized window by window, cut at a space
# A sentence ends at . ! ? (or a run of them, with closing quotes/brackets) followed by space, or at a blank line.
_SENTENCE = re.compile(r"(?:[^\n.!?]|[.!?](?!\s|$))*(?:[.!?]+[\"')\]]*(?=\s|$)|\n|$)", re.S)


@dataclass
class Chunk:
    text: str
    page: int | None
    heading: str | None
    section: int  # index of its section in the document
    start: int  # character span in the section's text
    end: int
    tokens: int


def iter_sentences(text: str) -> Iterator[tuple[int, int]]:
    """Character spans of the sentences (and paragraph ends) in `text`, without surrounding spaces."""
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            yield start, end


def sentences(text: str) -> list[tuple[int, int]]:
    return list(iter_sentences(text))


def _counts(tokenizer, texts: list[str]) -> list[int]:
    encoded = tokenizer(texts, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False)
    return [len(ids) for ids in encoded["input_ids"]]


def _split_long(tokenizer, text: str, span: tuple[int, int], size: int) -> Iterator[tuple[int, int, int]]:
    """A sentence cut into windows of `size` tokens (by offsets), or itself when it has at most `size` tokens. A
    very long one is tokenized WINDOW_CHARS at a time, cut at a space (where a WordPiece token never spans)."""
    start, end = span
    pending: list[tuple[int, int]] = []
    total, position = 0, start
    while position < end:
        stop = min(end, position + WINDOW_CHARS)
        if stop < end:
            space = max(text.rfind(" ", position + 1, stop), text.rfind("\t", position + 1, stop))
            stop = space if space > position else stop
        found = tokenizer(text[position:stop], add_special_tokens=False, return_offsets_mapping=True)
        pending += [(position + a, position + b) for a, b in found["offset_mapping"]]
        position = stop
        while len(pending) > size:  # more is coming, so this window of `size` tokens is a piece
            yield pending[0][0], pending[size - 1][1], size
            total += size
            del pending[:size]
    if total == 0 and len(pending) <= size:
        yield start, end, len(pending)
    elif pending:
        yield pending[0][0], pending[-1][1], len(pending)


def _pieces(tokenizer, text: str, size: int) -> Iterator[tuple[int, int, int]]:
    """The sentences of a section as (start, end, tokens), long ones cut; counted in bounded batches."""
    batch: list[tuple[int, int]] = []
    chars = 0
    for span in iter_sentences(text):
        if span[1] - span[0] > WINDOW_CHARS:
            yield from _counted(tokenizer, text, batch, size)
            batch, chars = [], 0
            yield from _split_long(tokenizer, text, span, size)
            continue
        batch.append(span)
        chars += span[1] - span[0]
        if len(batch) >= COUNT_BATCH or chars >= COUNT_CHARS:
            yield from _counted(tokenizer, text, batch, size)
            batch, chars = [], 0
    yield from _counted(tokenizer, text, batch, size)


def _counted(tokenizer, text: str, spans: list[tuple[int, int]], size: int) -> Iterator[tuple[int, int, int]]:
    if not spans:
        return
    for (a, b), count in zip(spans, _counts(tokenizer, [text[a:b] for a, b in spans]), strict=True):
        if count > size:
            yield from _split_long(tokenizer, text, (a, b), size)
        else:
            yield a, b, count


def iter_chunks(
    sections: list[Section], tokenizer, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> Iterator[Chunk]:
    """The chunks of a document's sections, in order, one at a time (the sizes are checked at once)."""
    if not 16 <= size <= 2048:
        raise PlaygroundError("The chunk size must be between 16 and 2048 tokens.")
    if not 0 <= overlap < size:
        raise PlaygroundError("The overlap must be at least 0 and smaller than the chunk size.")

    def chunks() -> Iterator[Chunk]:
        for index, section in enumerate(sections):
            text = section.text
            for group in _pack(_pieces(tokenizer, text, size), size, overlap):
                a, b = group[0][0], group[-1][1]
                yield Chunk(text[a:b], section.page, section.heading, index, a, b, sum(p[2] for p in group))

    return chunks()


def chunk_sections(
    sections: list[Section], tokenizer, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    return list(iter_chunks(sections, tokenizer, size, overlap))


def _pack(pieces: Iterable[tuple[int, int, int]], size: int, overlap: int) -> Iterator[list[tuple[int, int, int]]]:
    """Sentences (start, end, tokens) packed into groups of at most `size` tokens; each group after the first
    starts with whole sentences from the end of the previous one, up to `overlap` tokens."""
    current: list[tuple[int, int, int]] = []
    total = 0
    for piece in pieces:
        if current and total + piece[2] > size:
            yield current
            carried: list[tuple[int, int, int]] = []
            kept = 0
            for previous in reversed(current):
                if kept + previous[2] > overlap or kept + previous[2] + piece[2] > size:
                    break
                carried.insert(0, previous)
                kept += previous[2]
            current, total = carried, kept
        current.append(piece)
        total += piece[2]
    if current:
        yield current
