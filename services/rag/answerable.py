"""Which retrieved sentence answers the question: the packaged classifier `minilm-answerable` (a LoRA on the
packaged MiniLM, assets/adapters/) reads "question [SEP] heading: sentence" and says `answers` or `does not`.

RAG chat's answering model reads one sentence at a time (services.rag.reading), so the sentence it reads first
decides most answers. Ranked by similarity, the sentence that holds the fact comes first for 39 of bench/rag_eval's
48 questions; re-ordered by this classifier, for 43 (bench/RESULTS.md, issue 17). It only re-orders: its
probabilities are too low on documents unlike its training pages to decline on (measured there too), so declining
stays with the relevance floor and the answering model.
"""

from __future__ import annotations

import logging

from services.core.errors import PlaygroundError
from services.rag.text import plain

logger = logging.getLogger(__name__)

JUDGE = "minilm-answerable"
ANSWERS = "answers"
# The sentences it re-orders: the best POOL by similarity (the fact's sentence is among the best 8 for all 48
# questions of bench/rag_eval, among the best 3 for 44).
POOL = 8


def pair(question: str, heading: str | None, sentence: str) -> str:
    """What the classifier reads (its training rows are written by the same function: tools/make_answerable.py)."""
    head = f"{heading}: " if heading else ""
    return f"{question.strip()} [SEP] {head}{plain(sentence)}"


def scores(question: str, items: list[tuple[str | None, str]], owner: str | None = None) -> list[float] | None:
    """P(answers) for each (heading, sentence); None when the classifier cannot run here (its base is missing)."""
    from services import pipelines

    if not items:
        return []
    try:
        texts = [pair(question, h, s) for h, s in items]
        results = pipelines.run("text-classification", JUDGE, texts, owner=owner, top_k=None, batch_size=len(texts))
    except PlaygroundError as err:  # the ranking by similarity stays: an answer is still given
        logger.warning("the answerability classifier is unavailable: %s", err)
        return None
    out = []
    for result in results:
        labels = result if isinstance(result, list) else [result]
        out.append(next((float(r["score"]) for r in labels if r.get("label") == ANSWERS), 0.0))
    return out


def order(question: str, hits: list, ranked: list[tuple[float, int, int, str]], owner: str | None = None) -> list:
    """`ranked` (services.rag.answer._ranked's list) re-ordered by the classifier, most likely answer first; ties and
    a classifier that cannot run keep the similarity order. Each hit's `answers` gets its sentences' probabilities."""
    probabilities = scores(question, [(hits[n - 1].heading, text) for _, n, _, text in ranked], owner)
    if probabilities is None:
        return list(ranked)
    for (_, n, _, text), probability in zip(ranked, probabilities, strict=True):  # the retrieval inspector shows them
        hits[n - 1].answers[text] = round(probability, 4)
    positions = sorted(range(len(ranked)), key=lambda i: (-probabilities[i], i))
    return [ranked[i] for i in positions]
