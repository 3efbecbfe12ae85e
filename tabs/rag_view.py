"""HTML for the RAG chat tab: citations that open their chunk, the retrieval inspector, the chunk preview with coloured
boundaries, and the documents of a collection. Plain functions of dicts; no Gradio here."""

from __future__ import annotations

import html
import itertools

_COLOURS = ("#fde68a", "#bfdbfe", "#bbf7d0", "#fbcfe8", "#ddd6fe", "#fed7aa")


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def citations_html(citations: list[dict]) -> str:
    if not citations:
        return "<div class='pg-empty'>Sources appear here: each [n] in an answer opens its passage.</div>"
    items = []
    for n, c in enumerate(citations, 1):
        page = f" · page {c['page']}" if c.get("page") else ""
        items.append(
            f"<details class='pg-cite' id='cite-{n}'><summary><b>[{n}]</b> {_e(c['source'])}{page} "
            f"<small>score {c['score']:.4f}</small></summary><div class='pg-cite-text'>{_e(c['text'])}</div></details>"
        )
    items = "".join(items)
    return f"<div class='pg-cites'>{items}</div>"


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


INSPECTOR_HEADERS = [
    "#",
    "document",
    "BM25 rank (score)",
    "vector rank (cosine)",
    "fused (RRF)",
    "re-ranked",
    "chunk",
    "sentences the model read",
]
INSPECTOR_WIDTHS = ["4%", "11%", "11%", "11%", "9%", "8%", "22%", "24%"]


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
