"""Chunking for RAG, counted in tokens of the embedding model's own tokenizer.

A section (a page, or the text under one heading) is cut into sentences; sentences are packed into chunks of at most
`size` tokens, and each new chunk starts with the last sentences of the previous one up to `overlap` tokens. Chunks
never cross a section, so headings and pages are respected; a sentence longer than `size` is cut at token
boundaries. Each chunk keeps its character span in the section, which the preview colours.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.errors import PlaygroundError
from services.rag_extract import Section

DEFAULT_SIZE = 160
DEFAULT_OVERLAP = 32
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


def sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences (and paragraph ends) in `text`, without surrounding spaces."""
    spans = []
    for match in _SENTENCE.finditer(text):
        start, end = match.start(), match.end()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return spans


def _split_long(tokenizer, text: str, span: tuple[int, int], size: int) -> list[tuple[int, int, int]]:
    """A sentence longer than `size` tokens, cut into windows of `size` tokens (by offsets)."""
    start, end = span
    offsets = tokenizer(text[start:end], add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    pieces = []
    for i in range(0, len(offsets), size):
        window = offsets[i : i + size]
        pieces.append((start + window[0][0], start + window[-1][1], len(window)))
    return pieces


def chunk_sections(
    sections: list[Section], tokenizer, size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    if not 16 <= size <= 2048:
        raise PlaygroundError("The chunk size must be between 16 and 2048 tokens.")
    if not 0 <= overlap < size:
        raise PlaygroundError("The overlap must be at least 0 and smaller than the chunk size.")
    chunks: list[Chunk] = []
    for index, section in enumerate(sections):
        text = section.text
        spans = sentences(text)
        if not spans:
            continue
        counts = [len(ids) for ids in tokenizer([text[a:b] for a, b in spans], add_special_tokens=False)["input_ids"]]
        pieces: list[tuple[int, int, int]] = []
        for span, count in zip(spans, counts, strict=True):
            pieces += _split_long(tokenizer, text, span, size) if count > size else [(span[0], span[1], count)]
        for group in _pack(pieces, size, overlap):
            a, b = group[0][0], group[-1][1]
            chunks.append(Chunk(text[a:b], section.page, section.heading, index, a, b, sum(p[2] for p in group)))
    return chunks


def _pack(pieces: list[tuple[int, int, int]], size: int, overlap: int) -> list[list[tuple[int, int, int]]]:
    """Sentences (start, end, tokens) packed into groups of at most `size` tokens; each group after the first
    starts with whole sentences from the end of the previous one, up to `overlap` tokens."""
    groups: list[list[tuple[int, int, int]]] = []
    current: list[tuple[int, int, int]] = []
    for piece in pieces:
        if current and sum(p[2] for p in current) + piece[2] > size:
            groups.append(current)
            carried: list[tuple[int, int, int]] = []
            for previous in reversed(current):
                kept = sum(p[2] for p in carried) + previous[2]
                if kept > overlap or kept + piece[2] > size:
                    break
                carried.insert(0, previous)
            current = carried
        current.append(piece)
    if current:
        groups.append(current)
    return groups
