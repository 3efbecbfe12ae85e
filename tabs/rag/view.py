"""HTML for the RAG chat tab: citations that open their chunk, the retrieval inspector, the chunk preview with coloured
boundaries, and the documents of a collection. Plain functions of dicts; no Gradio here."""

from __future__ import annotations

import html
import itertools
import re

from markdown_it import MarkdownIt

from services.rag import guide as rag_guide

_COLOURS = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa")
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML in a document is shown as text
_MARKS = re.compile(r"(?m)^\s{0,3}#{1,6}\s+|\*\*|__")
_CODE = re.compile(r"(```[\s\S]*?(?:```|$)|`[^`\n]*`)")  # code spans and blocks: the Chatbot escapes those itself


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def citations_html(citations: list[dict]) -> str:
    """Each source as a closed box: its number, document, page, rank and how well it matches (the reason on hover);
    open, the passage itself (Markdown documents rendered, every other text shown as it is, always escaped)."""
    if not citations:
        return "<div class='pg-empty'>Sources appear here: each [n] in an answer opens its passage.</div>"
    items = []
    for n, c in enumerate(citations, 1):
        page = f" · page {_e(c['page'])}" if c.get("page") else ""
        label = c.get("match")
        match = (
            f"<span class='pg-match pg-match-{_e(label)}' title='{_e(c.get('why', ''))}'>rank {n} · {_e(label)} "
            "match</span>"
            if label in ("strong", "some", "weak")
            else f"<span class='pg-match'>rank {n}</span>"
        )
        items.append(
            f"<details class='pg-cite' id='cite-{n}'><summary><b>[{n}]</b> {_e(c['source'])}{page} {match}</summary>"
            f"{passage_html(c['source'], c['text'])}</details>"
        )
    items = "".join(items)
    return f"<div class='pg-cites'>{items}</div>"


def passage_html(source: str, text: str) -> str:
    """A passage as HTML: Markdown documents rendered (raw HTML in them shown as text), others escaped."""
    if str(source).lower().endswith((".md", ".markdown")):
        return f"<div class='pg-cite-text pg-cite-md'>{_MARKDOWN.render(text or '')}</div>"
    return f"<div class='pg-cite-text'>{_e(text)}</div>"


def explain(citations: list[dict], hits: list[dict]) -> list[dict]:
    """The citations with how well each matched ("match", and "why" for the tooltip), as shown and kept."""
    out = []
    for c, h in zip(citations, hits, strict=False):
        label, why = rag_guide.match(h)
        out.append({**c, "match": label, "why": why})
    return out + citations[len(out) :]


def inspector_html(hits: list[dict]) -> str:
    """The retrieval inspector as a table with short headers (each explained on hover) that never break a word."""
    if not hits:
        return "<div class='pg-empty'>Ask a question: each passage retrieved for it is listed here.</div>"

    def fmt(rank, score, digits=2):
        return "—" if rank is None else f"#{rank} <small>({(score or 0.0):.{digits}f})</small>"

    reranked = any(h.get("rerank_rank") is not None for h in hits)  # the column only when re-ranking is on
    columns = [c for c in INSPECTOR_COLUMNS if reranked or c[0] != "rerank"]
    head = "".join(f"<th title='{_e(tip)}'>{_e(name)}</th>" for name, tip in columns)
    rows = []
    for h in hits:
        label, why = rag_guide.match(h)
        text = _MARKS.sub("", h["text"]).strip()  # an excerpt: heading marks and emphasis left out
        text = (text[:140] + "…") if len(text) > 140 else text
        weighed = h.get("answers") or {}  # the answerability classifier's P(answers), when it ordered the reading
        read = " … ".join(_e(t) + (f" <small class='pg-answers'>(answers {weighed[t]:.0%})</small>" if t in weighed
                                   else "") for t in h.get("shown") or []) or "—"  # fmt: skip
        page = f" p.{_e(h['page'])}" if h.get("page") else ""
        cells = [
            str(int(h["rank"])),
            f"{_e(h['source'])}{page}",
            f"<span class='pg-match pg-match-{label}' title='{_e(why)}'>{label}</span>",
            fmt(h.get("bm25_rank"), h.get("bm25_score")),
            fmt(h.get("vector_rank"), h.get("vector_score")),
            f"{h['fused']:.4f}",
            *([fmt(h.get("rerank_rank"), h.get("rerank_score"))] if reranked else []),
            _e(text),
            read,
        ]
        short = len(cells) - 2  # the passage and what was read wrap at spaces; every other cell stays on one line
        rows.append("<tr>" + "".join(f"<td{' class=pg-short' * (i < short)}>{c}</td>" for i, c in enumerate(cells))
                    + "</tr>")  # fmt: skip
    return (
        f"<div class='pg-inspector'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "<small>Hover a header for what it means. Ranks are among the passages each search returned.</small></div>"
    )


def inspector_rows(hits: list[dict]) -> list[list]:
    def fmt(rank, score):
        return "—" if rank is None else f"#{rank} ({score:.3f})"

    return [
        [
            h["rank"],
            h["source"] + (f" p.{h['page']}" if h.get("page") else ""),
            fmt(h.get("bm25_rank"), h.get("bm25_score") or 0.0),
            fmt(h.get("vector_rank"), h.get("vector_score") or 0.0),
            f"{h['fused']:.4f}",
            fmt(h.get("rerank_rank"), h.get("rerank_score") or 0.0),
            (h["text"][:140] + "…") if len(h["text"]) > 140 else h["text"],
            " … ".join(h.get("shown") or []) or "—",
        ]
        for h in hits
    ]


INSPECTOR_COLUMNS = [
    ("#", "The passage's place in the answer's sources: [1] is the first."),
    ("doc", "The document the passage comes from (and its page)."),
    ("match", "How well the passage matches the question, from its meaning similarity and shared keywords."),
    ("BM25", "Keyword search: rank (BM25 score, higher is better); — when the passage shares no keyword."),
    ("vector", "Meaning search: rank (cosine similarity of MiniLM embeddings, 0 to 1)."),
    ("RRF", "Reciprocal-rank fusion of the two ranks: it orders the passages; its size means little alone."),
    ("rerank", "The cross-encoder's rank (score), when re-ranking is on."),
    ("passage", "The beginning of the passage."),
    (
        "read",
        "The sentences of it the model may read (up to three in all), each with how likely the answerability "
        "classifier finds it answers the question: the likeliest is read first.",
    ),
]
INSPECTOR_HEADERS = [name for name, _ in INSPECTOR_COLUMNS]


def chat_html(text: str) -> str:
    """A chat message for the Chatbot, which renders Markdown and drops HTML tags: '&' and '<' outside code are
    escaped, so "<repo_name>" in a question, an answer or a quoted document stays visible (`chat_text` undoes it)."""
    parts = _CODE.split(text or "")
    return "".join(p if i % 2 else p.replace("&", "&amp;").replace("<", "&lt;") for i, p in enumerate(parts))


def chat_text(content) -> str:
    """The text of a Chatbot message as it was before `chat_html` (content may be a list of text blocks)."""
    if isinstance(content, list):
        content = "\n".join((b.get("text") or "") if isinstance(b, dict) else str(b) for b in content)
    parts = _CODE.split(content if isinstance(content, str) else "")
    return "".join(p if i % 2 else p.replace("&lt;", "<").replace("&amp;", "&") for i, p in enumerate(parts))


def preview_html(preview: dict) -> str:
    """Each section with its chunks' spans coloured in turn; where chunks overlap, the overlap is striped. A preview
    that read only the beginning of the file says so first."""
    parts = []
    if preview.get("partial"):
        chars, documents = preview.get("preview_chars"), preview.get("preview_documents")
        limits = f"up to {documents} documents, " if documents else ""
        limits += f"the first {chars:,} characters of each" if chars else "the first part of each"
        parts.append(
            f"<div class='pg-note' id='rag-preview-partial'>Only the beginning is previewed ({limits}); indexing "
            "reads the whole file.</div>"
        )
    for document in preview.get("documents", []):
        chunks = document["chunks"]
        shown = f" (first {len(chunks)} shown)" if len(chunks) < document["total_chunks"] else ""
        counted = " in its beginning" if document.get("partial") else ""
        parts.append(f"<h4>{_e(document['name'])} · {document['total_chunks']} chunks{counted}{shown}</h4>")
        for index, section in enumerate(document["sections"]):
            mine = [(c["start"], c["end"], n) for n, c in enumerate(chunks) if c["section"] == index]
            if not mine:
                continue
            text = section["text"]
            cuts = sorted({0, len(text), *[a for a, _, _ in mine], *[b for _, b, _ in mine]})
            spans = []
            for a, b in itertools.pairwise(cuts):
                owners = [n for s, e, n in mine if s <= a and b <= e]
                piece = _e(text[a:b])
                if not owners:
                    spans.append(piece)
                elif len(owners) == 1:
                    spans.append(f"<span style='background:{_COLOURS[owners[0] % len(_COLOURS)]}'>{piece}</span>")
                else:
                    one, two = (_COLOURS[n % len(_COLOURS)] for n in owners[:2])
                    stripes = f"repeating-linear-gradient(45deg,{one} 0 6px,{two} 6px 12px)"
                    spans.append(f"<span style='background:{stripes}' title='overlap'>{piece}</span>")
            label = f"page {section['page']}" if section.get("page") else (section.get("heading") or "")
            parts.append(f"<div class='pg-chunks'><small>{_e(label)}</small><div>{''.join(spans)}</div></div>")
    return "".join(parts) or "<div class='pg-empty'>Nothing to preview.</div>"


def documents_rows(documents: list[dict]) -> list[list]:
    return [[d["name"], d["chunks"], d["pages"] or "—", f"{(d['size'] or 0) / 1024:.0f} KB"] for d in documents]
