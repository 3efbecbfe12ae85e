"""How RAG chat's model reads the sources: all the shown sentences together in one prompt (`together`), or one
sentence at a time (`one_by_one`): the model is shown the best-ranked sentence alone and answers from it or
declines; on a decline it reads the next one, up to READ_AT_MOST of them, and after that the answer is "the
documents do not say". A small model picks the wrong sentence when it reads six at once (bench/RESULTS.md, issue 17);
reading one, it only has to tell whether that sentence answers the question and copy the fact from it. Which
sentence it reads first is the answerability classifier's choice among the best-ranked (services.rag.answerable)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from services.rag import answerable
from services.rag.text import NOT_FOUND, SYSTEM_PROMPT, plain

READ_AT_MOST = 3
POOL = answerable.POOL  # the ranked sentences the classifier re-orders before the first READ_AT_MOST are read
# Sentences are ranked with the question's focus (services.rag.answer.FOCUS_WEIGHT): the answer's sentence ranks first
# for 37 of bench/rag_eval's 48 questions instead of 23, which matters when the first one read is the one answered.
FOCUS_WEIGHT = 4.0
# The answering models that read one sentence at a time by default, with how strongly each leans on it by default
# (context-aware decoding): the packaged SmolLM2 copies the fact from the one sentence it reads far more often with
# it (58% -> 69% right facts on bench/rag_eval), the grounded-answers adapter learned to (69% without it). Larger
# chat models read the six best sentences together.
ONE_BY_ONE = {"smollm2-135m-instruct": 0.5, "grounded-answers": 0.0}
CONTRAST = 0.5  # for a model made to read one at a time that is not in ONE_BY_ONE
# Reading six sentences together, off by default: it gained 2 of 48 answers and sometimes echoes the source list
# (bench/RESULTS.md); a choice in the settings.
TOGETHER_CONTRAST = 0.0
_CONTINUED = re.compile(r"\n\s*(?:Question|Sources?):")  # a small model goes on to write the next question itself


def reads_one_by_one(model: str) -> bool:
    return model in ONE_BY_ONE


def default_contrast(model: str, one_by_one: bool | None = None) -> float:
    """How strongly the sources outweigh the model's own beliefs by default (RAG chat's "Lean on the sources")."""
    one_by_one = reads_one_by_one(model) if one_by_one is None else one_by_one
    return ONE_BY_ONE.get(model, CONTRAST) if one_by_one else TOGETHER_CONTRAST


def prompt(question: str, number: int, sentence: str, system_prompt: str | None = None) -> list[dict]:
    """The chat messages for one sentence, under the number of the passage it comes from (so [n] cites it)."""
    return [
        {"role": "system", "content": system_prompt or SYSTEM_PROMPT},
        {"role": "user", "content": f"Sources:\n[{number}] {plain(sentence)}\n\nQuestion: {question}"},
    ]


def candidates(question: str, hits: list, ranked: list[tuple[float, int, int, str]],
               owner: str | None = None) -> list[tuple[float, int, int, str]]:  # fmt: skip
    """The sentences read, in the order they are read: `ranked` (services.rag.answer._ranked's list of the best
    POOL) re-ordered by the answerability classifier (services.rag.answerable), its first READ_AT_MOST."""
    return answerable.order(question, hits, ranked, owner)[:READ_AT_MOST]


def together(model: str, question: str, messages: list[dict], *, owner: str | None, history: list[dict],
             params: dict, contrast: float = 0.0) -> Iterator[str]:  # fmt: skip
    """The answer so far, as it streams, from one prompt that holds all the shown sentences (`messages`)."""
    from services.pipelines import stream as generate

    if history:  # earlier turns (without their sources) give the model the conversation
        messages = [*messages[:-1], *history, messages[-1]]
    # the same conversation without the sources, for context-aware decoding
    without = [*messages[:-1], {"role": messages[-1]["role"], "content": f"Question: {question}"}]
    for part in generate(model, messages, owner=owner, contrast=(without, float(contrast)), **params):
        yield part.get("text", "")


def one_by_one(model: str, question: str, read: list[tuple[int, str]], *, owner: str | None,
               system_prompt: str | None, history: list[dict], params: dict,
               contrast: float = 0.0) -> Iterator[str]:  # fmt: skip
    """The answer so far, as it streams: each sentence of `read` in turn until the model answers from one; a decline
    is held back (its first words are not shown) and the next sentence is read. Ends with NOT_FOUND when the model
    declines every one."""
    from services.pipelines import stream as generate

    refusal = NOT_FOUND.split(".")[0]
    for number, sentence in read:
        messages = prompt(question, number, sentence, system_prompt)
        if history:
            messages = [messages[0], *history, messages[-1]]
        text, answering = "", False
        without = [*messages[:-1], {"role": "user", "content": f"Question: {question}"}]  # context-aware decoding
        parts = generate(model, messages, owner=owner, contrast=(without, float(contrast)), **params)
        try:
            for part in parts:
                text = part.get("text", text)
                if not answering:
                    start = text.lstrip()
                    if start.startswith(refusal):
                        break  # declined: the rest of it is not needed
                    answering = len(start) >= len(refusal) or not refusal.startswith(start)
                if answering and _CONTINUED.search(text):
                    break  # it has answered and goes on to a question of its own
                if answering:
                    yield text
        finally:
            parts.close()
        if answering or (text.strip() and not text.lstrip().startswith(refusal)):  # (a short answer can end
            yield cite(text, number)  # while it still reads like the start of a decline)
            return
    yield NOT_FOUND


def cite(answer: str, number: int) -> str:
    """The answer citing the one source it was read from, [number], at its end: it read no other, so another number
    (or one at its start, where a small model echoes the source line) is dropped."""
    body = _CONTINUED.split(answer, maxsplit=1)[0]
    body = re.sub(r"\s*\[\d+\]", "", body).strip()
    if not body:
        return answer
    return f"{body[:-1]} [{number}]." if body.endswith(".") else f"{body} [{number}]"
