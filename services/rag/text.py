"""What RAG chat's model reads and what it says, as text: passages without Markdown markup (`plain`) and the answer
with its citations kept to the sources that exist (`tidy`); NOT_FOUND is the sentence that declines."""

from __future__ import annotations

import re

import numpy as np

from services.rag import index as rag_index

NOT_FOUND = "The documents do not say. I could not find this in them."
SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources. Answer in one or two short sentences and cite the "
    "source you used like [1]. If the sources do not contain the answer, say that the documents do not say."
)


_MARKUP = re.compile(r"\*\*|__|`|^#+\s*|(?<=\s)#+\s", re.MULTILINE)
_CELL = re.compile(r"\s*\|\s*")
_BULLET = re.compile(r"(^|\s)[-*+]\s+(?=\S)")


def plain(text: str) -> str:
    """A passage as the model reads it: on one line, without Markdown's table bars, bold, code and heading marks
    and list bullets (a small model copies "| **Fine-tune** |" and loops on it; measured on the demo collection)."""
    text = _CELL.sub(" ", _MARKUP.sub("", text))
    return " ".join(_BULLET.sub(r"\1", text).split())


def tidy(answer: str, hits: list) -> str:  # hits: services.rag.answer.Hit (their .text and .sentences)
    """Citations kept to sources that exist; an answer without any gets the source it draws most words from; a
    declined answer is the NOT_FOUND sentence alone."""
    answer = re.sub(r"\s*\[(\d+)\]", lambda m: m.group(0) if 1 <= int(m.group(1)) <= len(hits) else "", answer)
    answer = answer.strip()
    if answer.startswith(NOT_FOUND.split(".")[0]):  # declining cites nothing (the model may add a number anyway)
        return NOT_FOUND
    if not answer or re.search(r"\[\d+\]", answer):
        return answer or NOT_FOUND
    words = set(rag_index.words(answer))
    overlap = [len(words & set(rag_index.words(" ".join(h.sentences) or h.text))) for h in hits]
    if hits and max(overlap) > 0:
        answer += f" [{int(np.argmax(overlap)) + 1}]"
    return answer


# Words of a question that stay in its focus even when capitalised, and that do not count as what it asks about.
_QUESTION_WORD_LIST = (
    "what which who whom whose when where why how in on at is are was were does do did can could the a an of for "
    "to from by with if and or"
)
_QUESTION_WORDS = frozenset(_QUESTION_WORD_LIST.split())


def focus_of(question: str) -> str:
    """The question without its names (capitalised words after its first), or "" when it has none or too little
    is left: what it asks about the subject, not the subject itself."""
    words = question.strip().rstrip("?").split()
    kept = [w for i, w in enumerate(words) if i == 0 or not w[:1].isupper() or w.lower() in _QUESTION_WORDS]
    asked = [w for w in kept if w.lower().strip(",.;:'\"") not in _QUESTION_WORDS]
    if len(kept) == len(words) or not asked:
        return ""
    return " ".join(kept) + "?"
