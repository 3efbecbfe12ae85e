"""What the RAG tab tells a visitor besides the answer: questions to try on a collection (built from its own
documents), and how well each retrieved passage matches a question, in plain words.

- `suggested_questions(store)`: the demo collection's hand-written questions; for any other collection, questions
  made from its newest documents: "What is X?" from an opening sentence such as "X is a small harbour town", and
  "What does X say about “Heading”?" for its section headings.
- `match(hit)`: "strong", "some" or "weak" from the two retrieval signals a visitor can follow: how close the
  passage's meaning is to the question (the MiniLM cosine, 0-1) and whether it shares the question's words (found
  by BM25). The fused RRF score (about 0.016 at best) ranks passages but says nothing on its own.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from services.rag.chunk import sentences
from services.rag.store import DEMO, Collection

DEMO_QUESTIONS = [
    "How do I fine-tune a model on my own data?",
    "Can other visitors see my jobs?",
    "What is max_length?",
]
SUGGESTIONS = 3
_LONGEST = 50  # characters of a title or heading that still reads as a question
SHOWN = 60  # the characters of a suggestion the page shows before it cuts it with "..."
_NAMED = re.compile(r"^([A-Z][\w'’-]*(?:\s+[A-Z0-9][\w'’-]*){0,4})\s+(is|was|are|were)\s")
_THE = re.compile(r"^[Tt]he\s+([\w'’-]+(?:\s+[\w'’-]+){0,3}?)\s+(is|was|are|were)\s")

# Cosine similarity of the question and the passage (all-MiniLM-L6-v2): unrelated questions stay under 0.25
# (services.rag.answer.RELEVANCE_FLOOR), the passage that answers is mostly above 0.45 (measured on assets/docs and
# bench/rag_eval with their questions).
STRONG, STRONG_ALONE, SOME, FLOOR = 0.45, 0.60, 0.35, 0.25


def suggested_questions(store: Collection, count: int = SUGGESTIONS) -> list[str]:
    """Questions to try on this collection; none for a collection without documents."""
    if store.name == DEMO:
        return DEMO_QUESTIONS[:count]
    per_document: dict[str, list[str]] = {}
    titles: dict[str, str] = {}
    for row in store.outline():
        source, heading = row["source"], (row["heading"] or "").strip()
        asked = per_document.setdefault(source, [])
        if source not in titles:  # the first chunk: the document's title and its opening sentence
            titles[source] = heading if heading and len(heading) <= _LONGEST else _stem(source)
            opening = _opening_question(row["text"])
            asked.append(opening or f"What is {_mid_sentence(titles[source])} about?")
        elif heading and len(heading) <= _LONGEST and heading != titles[source]:
            for question in (f"What does {_mid_sentence(titles[source])} say about “{heading}”?",
                             f"What is said about “{heading}”?"):  # fmt: skip
                if len(question) <= SHOWN:
                    asked.append(question)
                    break
    questions: list[str] = []
    for turn in range(max((len(q) for q in per_document.values()), default=0)):  # one of each document in turn
        for asked in per_document.values():
            if turn < len(asked) and asked[turn] not in questions:
                questions.append(asked[turn])
    return questions[:count]


def _stem(name: str) -> str:
    stem = PurePosixPath(name).stem.replace("_", " ").replace("-", " ").strip()
    return (stem or name)[:_LONGEST]


def _mid_sentence(title: str) -> str:
    """A title as it reads inside a sentence: "The nebuloscope" -> "the nebuloscope"."""
    return "the " + title[4:] if title.startswith("The ") else title


def _opening_question(text: str) -> str | None:
    """A question from the opening sentence: "Quillhaven is a small harbour town…" gives "What is Quillhaven?"."""
    body = "\n".join(line for line in (text or "").splitlines() if not line.lstrip().startswith("#")).strip()
    spans = sentences(body)
    if not spans:
        return None
    first = body[spans[0][0] : spans[0][1]].strip()
    named = _NAMED.match(first)
    if named:
        return f"What {named[2]} {_mid_sentence(named[1])}?"
    the = _THE.match(first)
    return f"What {the[2]} the {the[1]}?" if the else None


def match(hit: dict) -> tuple[str, str]:
    """("strong" | "some" | "weak", a sentence saying why) for one retrieved passage (a `Hit.to_dict()`)."""
    cosine = hit.get("vector_score")
    words = hit.get("bm25_rank") is not None
    meaning = "not among the closest in meaning" if cosine is None else f"meaning similarity {cosine:.2f} (0 to 1)"
    shared = "shares keywords with the question" if words else "shares no keyword with the question"
    cosine = cosine or 0.0
    if cosine >= STRONG_ALONE or (words and cosine >= STRONG):
        label = "strong"
    elif cosine >= SOME or (words and cosine >= FLOOR):
        label = "some"
    else:
        label = "weak"
    rule = (
        f"Strong: similarity at least {STRONG_ALONE:.2f}, or {STRONG:.2f} with shared keywords; some: at least "
        f"{SOME:.2f}, or {FLOOR:.2f} with shared keywords; weak: less."
    )
    return label, f"{label.capitalize()} match: {meaning}, {shared}. {rule}"
