"""RAG: your documents, retrieved and cited, answered by a model you choose.

- `ingest(collection, files, owner)`: text out of each file (services.rag.extract), chunks in tokens of the embedding
  model's tokenizer (services.rag.chunk), embeddings with sentence-transformers, stored per owner
  (services.rag.store); the same file twice is skipped by its SHA-256.
- `retrieve(...)`: BM25 and vector search fused by reciprocal rank (services.rag.index), optionally re-ranked by a
  cross-encoder (on a Space; needs the Hub); every hit keeps its ranks and scores for the retrieval inspector.
- `stream_answer(...)` / `ask(...)`: a chat model answers from numbered sources and cites them as [1], [2]. The
  sources are the sentences of each chunk closest to the question (measured in bench/rag.py): the packaged SmolLM2
  reads the best ones one at a time, other models the six best together (services.rag.reading); a question no
  source is close to is answered "the documents do not say" without asking the model.

What a visitor sends is checked against the caps of `services.core.limits` before any retrieval: the question
(`question_chars`), top-k (1-MAX_TOP_K), the system prompt (`prompt_chars`) and tokens to generate (`new_tokens`);
the chat history is cut to its newest HISTORY_TURNS turns of at most `prompt_chars` characters.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from services.core.errors import PlaygroundError
from services.core.limits import check_number, check_text, get_limits
from services.rag import index as rag_index
from services.rag import reading
from services.rag.chunk import sentences
from services.rag.ingest import (  # noqa: F401  (re-exported: services.rag.answer is the face of RAG)
    EMBEDDER,
    _embedding_text,
    collections,
    embed,
    embedder,
    ensure_demo,
    ingest,
    ingest_dataset,
    preview,
    reranker,
    stage,
)
from services.rag.store import DEMO, Collection, CollectionError
from services.rag.text import NOT_FOUND, SYSTEM_PROMPT, focus_of, plain, tidy

logger = logging.getLogger(__name__)

CHAT_MODEL = "smollm2-135m-instruct"  # the packaged chat model
# The default answering model: the packaged model with the grounded-answers adapter (assets/adapters/), which reads
# one sentence at a time and copies the fact from it as the plain model does only with context-aware decoding, at
# the plain model's speed (bench/RESULTS.md, "RAG answering model (issue 17)"). Everywhere else the plain model.
ANSWER_MODEL = "grounded-answers"
# What a small model is shown: the sentences most relevant to the question over all passages (bench/rag_quality.py).
PROMPT_SENTENCES = 6
PROMPT_STYLE = "chat"  # "chat": a system turn and a user turn; "plain": one user turn
PROMPT_ORDER = "source"  # "source": sentences grouped under their passage; "relevance": most relevant last
PROMPT_EXAMPLE = False  # one worked question before the real one (measured in bench/rag_quality.py)
EXAMPLE = [
    {
        "role": "user",
        "content": "Sources:\n[1] The Harlow bridge was finished in 1902. It is built from red sandstone.\n"
        "[2] The ferry runs every hour.\n\nQuestion: What is the Harlow bridge made of?",
    },
    {"role": "assistant", "content": "Red sandstone [1]."},
]
CONTRAST = reading.TOGETHER_CONTRAST  # context-aware decoding when reading six sentences together (off)
WORD_BONUS = 0.5
NUMBER_BONUS = 0.1
# Weight of the cosine between a sentence and the question without its names ("What colour is the dial of
# Tanner's Clock?" -> "What colour is the dial of?"): the name makes the page's opening sentence look like the answer
# to every question about it; what the question asks about says which sentence answers it. The answer's sentence
# ranked first: 23 -> 37 of 48 (weight 4, bench/rag_quality.py --focus 4). Off by default: the plain model's answers
# did not gain from it (58% facts with the relevance order, 48% with the source order; bench/RESULTS.md).
FOCUS_WEIGHT = 0.0
_NUMBER_QUESTION = re.compile(
    r"\b(how (many|much|long|tall|high|far|old|big|heavy|wide|deep)|when|what year|which year|what date|"
    r"how often|greatest|largest|smallest|maximum|minimum|capacity|population)\b",
    re.IGNORECASE,
)
# Below this cosine similarity between the question and the best chunk, nothing in the documents is about it.
RELEVANCE_FLOOR = 0.25
MAX_TOP_K = 20
HISTORY_TURNS = 4  # earlier turns the model reads; older ones are dropped first


@dataclass
class Hit:
    chunk_id: int
    text: str
    source: str
    page: int | None
    heading: str | None
    fused: float
    rank: int
    vector_rank: int | None = None
    vector_score: float | None = None
    bm25_rank: int | None = None
    bm25_score: float | None = None
    rerank_rank: int | None = None
    rerank_score: float | None = None
    sentences: list[str] = field(default_factory=list)
    scored: list[tuple[int, float, str]] = field(default_factory=list)  # (position, relevance, sentence)
    answers: dict[str, float] = field(default_factory=dict)  # sentence: P(it answers), from services.rag.answerable

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# ---- retrieval ----------------------------------------------------------------------------------------------


class _Indexes:
    """Opened collections (BM25 + FAISS), rebuilt when the collection's version changes. Small LRU, one lock."""

    def __init__(self, size: int = 8):
        self.size = size
        self.items: OrderedDict[str, tuple[int, rag_index.BM25, object]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, store: Collection):
        key = str(store.folder)
        version = store.version
        with self.lock:
            cached = self.items.get(key)
            if cached and cached[0] == version:
                self.items.move_to_end(key)
                return cached[1], cached[2]
        rows = store.chunks()
        bm25 = rag_index.BM25([r["id"] for r in rows], [_embedding_text(r["text"], r["heading"]) for r in rows])
        ids, vectors = store.vectors()
        index = rag_index.build_vectors(ids, np.asarray(vectors))
        with self.lock:
            self.items[key] = (version, bm25, index)
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return bm25, index


_indexes = _Indexes()


def open_collection(collection: str, owner: str) -> Collection:
    if collection == DEMO:
        return ensure_demo()
    return Collection.open(collection, owner)


def retrieve(
    collection: str,
    question: str,
    owner: str,
    *,
    top_k: int = 4,
    hybrid_weight: float = 0.5,
    rerank: bool = False,
    focus: float | None = None,
) -> list[Hit]:
    """The `top_k` chunks for a question, best first, with every rank and score that led there; `focus`: the weight
    of the question's focus in each sentence's score (default FOCUS_WEIGHT)."""
    question, top_k = _check_question(question, top_k)
    store = open_collection(collection, owner)
    if not store.documents():
        raise CollectionError(f"'{collection}' has no documents yet: upload some first.")
    bm25, index = _indexes.get(store)
    pool = max(int(top_k) * 5, 20)
    query = embed([question], store.meta().get("model", EMBEDDER))[0]
    vector_hits = rag_index.search_vectors(index, query, pool)
    bm25_hits = bm25.search(question, pool)
    weight = min(max(float(hybrid_weight), 0.0), 1.0)
    fused = rag_index.fuse(vector_hits, bm25_hits, weight)[: pool if rerank else int(top_k)]
    rows = {r["id"]: r for r in store.chunks([c for c, _ in fused])}
    v_rank = {c: (i + 1, s) for i, (c, s) in enumerate(vector_hits)}
    b_rank = {c: (i + 1, s) for i, (c, s) in enumerate(bm25_hits)}
    hits = []
    for rank, (c, score) in enumerate(fused, 1):
        if c in rows:
            row, (vr, vs), (br, bs) = rows[c], v_rank.get(c, (None, None)), b_rank.get(c, (None, None))
            hits.append(Hit(c, row["text"], row["source"], row["page"], row["heading"], score, rank, vr, vs, br, bs))
    if rerank and hits:
        scores = reranker().predict([(question, h.text) for h in hits])
        order = np.argsort(-np.asarray(scores))
        for position, i in enumerate(order, 1):
            hits[i].rerank_rank, hits[i].rerank_score = position, float(scores[i])
        hits = [hits[i] for i in order[: int(top_k)]]
    hits = hits[: int(top_k)]
    _select_sentences(hits, query, store.meta().get("model", EMBEDDER), question, focus=focus)
    return hits


def _check_question(question: str, top_k) -> tuple[str, int]:
    if question is not None and not isinstance(question, str):
        raise PlaygroundError("The question must be a text.")
    question = check_text((question or "").strip(), "That question", get_limits().question_chars)
    if not question:
        raise PlaygroundError("Type a question first.")
    return question, check_number(top_k, "top-k", MAX_TOP_K, 1)


def trim_history(history: list[dict] | None) -> list[dict]:
    """The newest HISTORY_TURNS turns of a chat history, at most `prompt_chars` characters together: the oldest are
    dropped first, and a turn longer than what is left keeps its end. A turn's content is a text or a list of text
    blocks (Gradio's chatbot sends those); turns without a user or assistant role or any text are left out."""
    if not isinstance(history, list):
        return []
    turns = []
    for turn in history:
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant"):
            continue
        content = turn.get("content")
        if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
            content = "\n".join((b.get("text") or "") if isinstance(b, dict) else str(b) for b in content)
        if isinstance(content, str) and content.strip():
            turns.append({"role": turn["role"], "content": content})
    budget = get_limits().prompt_chars
    kept: list[dict] = []
    for turn in reversed(turns[-HISTORY_TURNS:]):
        if budget <= 0:
            break
        kept.append({"role": turn["role"], "content": turn["content"][-budget:]})
        budget -= len(kept[-1]["content"])
    return kept[::-1]


def _select_sentences(hits: list[Hit], query: np.ndarray, model: str, question: str = "", per_chunk: int = 3,
                      focus: float | None = None) -> None:  # fmt: skip
    """Score every sentence of the hits against the question, and keep each hit's best ones in reading order.

    A sentence's score is its cosine with the question, plus WORD_BONUS times the share of the question's words it
    holds, each word weighted by how rare it is among these sentences (the name every sentence repeats says little;
    "dial" or "burrs" says which sentence answers), plus NUMBER_BONUS for a sentence with a number when the question
    asks how many, how long or when, plus FOCUS_WEIGHT times its cosine with the question's focus (`focus_of`).
    Measured in bench/rag_quality.py (the answer's sentence among the 3 best: 83% -> 92%; ranked first, with
    FOCUS_WEIGHT 4: 48% -> 77%)."""
    # Headings are context, not answers: they are left out here (the passage's heading prefixes its sentences).
    pieces = [(i, h.text[a:b]) for i, h in enumerate(hits) for a, b in sentences(h.text) if h.text[a] != "#"]
    if not pieces:
        return
    contexts = [_embedding_text(text, hits[i].heading) for i, text in pieces]
    weight = FOCUS_WEIGHT if focus is None else focus
    focused = focus_of(question) if weight else ""
    vectors = embed([*contexts, focused] if focused else contexts, model)  # one call: the focus rides along
    scores = vectors[: len(pieces)] @ query
    if focused:
        scores += weight * (vectors[: len(pieces)] @ vectors[-1])
    asked = {_stem(w) for w in rag_index.words(question)}
    held = [{_stem(w) for w in rag_index.words(text)} for _, text in pieces]
    rarity = {w: float(np.log((len(pieces) + 1) / (sum(w in h for h in held) + 0.5))) for w in asked}
    total = sum(rarity.values()) or 1.0
    wants_number = bool(_NUMBER_QUESTION.search(question))
    by_hit: dict[int, list[tuple[int, float, str]]] = {}
    for order, ((i, text), score, words) in enumerate(zip(pieces, scores, held, strict=True)):
        shared = sum(rarity[w] for w in asked & words) / total
        number = NUMBER_BONUS if wants_number and any(c.isdigit() for c in text) else 0.0
        by_hit.setdefault(i, []).append((order, float(score) + WORD_BONUS * shared + number, text))
    for i, items in by_hit.items():
        hits[i].scored = items
        best = sorted(sorted(items, key=lambda t: -t[1])[:per_chunk])
        hits[i].sentences = [text for _, _, text in best]


def _stem(word: str) -> str:
    """A light suffix cut so that "sashes" meets "sash" and "designed" meets "design"."""
    for suffix in ("ing", "ed", "es", "s", "er"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


# ---- answering ----------------------------------------------------------------------------------------------


def build_prompt(question: str, hits: list[Hit], system_prompt: str | None = None, budget: int | None = None) -> list:
    """The chat messages: the system prompt, then the `budget` most relevant sentences over all hits, under the
    number of the hit they come from (so [n] in the answer is the n-th citation), and the question."""
    ranked = _ranked(hits, budget)
    if PROMPT_ORDER == "relevance" and ranked:  # one line per sentence, the most relevant last (nearest the question)
        sources = "\n".join(f"[{n}] {plain(text)}" for _, n, _, text in reversed(ranked))
    else:
        read = shown(hits, budget)
        sources = "\n".join(f"[{n}] " + plain(" ".join(texts)) for n, texts in enumerate(read, 1) if texts)
    if PROMPT_STYLE == "plain":  # everything in one user turn, ending where the answer starts
        return [
            {
                "role": "user",
                "content": f"{system_prompt or SYSTEM_PROMPT}\n\nSources:\n{sources}\n\nQuestion: {question}\nAnswer:",
            }
        ]
    example = EXAMPLE if PROMPT_EXAMPLE else []
    return [
        {"role": "system", "content": system_prompt or SYSTEM_PROMPT},
        *example,
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question}"},
    ]


def _ranked(hits: list[Hit], budget: int | None = None) -> list[tuple[float, int, int, str]]:
    """The `budget` best sentences over all hits: (score, hit number from 1, position in its passage, text)."""
    budget = PROMPT_SENTENCES if budget is None else budget
    return sorted(((score, n, order, text) for n, h in enumerate(hits, 1) for order, score, text in h.scored),
                  reverse=True)[:budget]  # fmt: skip


def shown(hits: list[Hit], budget: int | None = None, ranked: list | None = None) -> list[list[str]]:
    """For each hit, the sentences of it the model reads (the `budget` best, or those of `ranked`), in reading order
    (the prompt holds them under the hit's number; the retrieval inspector shows them). Hits without scored sentences
    are read whole."""
    ranked = _ranked(hits, budget) if ranked is None else ranked
    if not ranked:
        return [[h.text] for h in hits]
    return [[text for _, m, _, text in sorted(ranked, key=lambda r: r[2]) if m == n] for n in range(1, len(hits) + 1)]


def citations(hits: list[Hit]) -> list[dict]:
    return [
        {
            "source": h.source,
            "text": h.text,
            "score": round(h.fused, 6),
            "page": h.page,
        }
        for h in hits
    ]


def relevant(hits: list[Hit]) -> bool:
    best = max((h.vector_score or 0.0) for h in hits) if hits else 0.0
    return best >= RELEVANCE_FLOOR


def stream_answer(
    collection: str,
    question: str,
    owner: str,
    *,
    top_k: int = 4,
    hybrid_weight: float = 0.5,
    rerank: bool = False,
    model: str | None = None,
    temperature: float = 0.0,
    max_new_tokens: int = 96,
    system_prompt: str | None = None,
    history: list[dict] | None = None,
    contrast: float | None = None,
    one_by_one: bool | None = None,
) -> Iterator[dict]:
    """Yields {"answer": text so far, "citations", "hits"}; the first yield comes right after retrieval.
    `contrast`: how strongly the sources outweigh the model's own beliefs (context-aware decoding; 0 turns it off).
    `one_by_one`: read the best sentences one at a time (services.rag.reading); by default as the model is meant to."""
    model = (model or "").strip() or ANSWER_MODEL
    one_by_one = reading.reads_one_by_one(model) if one_by_one is None else bool(one_by_one)
    contrast = reading.default_contrast(model, one_by_one) if contrast is None else contrast

    _check_question(question, top_k)
    limits = get_limits()
    max_new_tokens = check_number(max_new_tokens, "max_new_tokens", limits.new_tokens, 1)
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise PlaygroundError("The system prompt must be a text.")
    check_text(system_prompt or "", "That system prompt", limits.prompt_chars)
    history = trim_history(history)
    focus = reading.FOCUS_WEIGHT if one_by_one else None
    hits = retrieve(collection, question, owner, top_k=top_k, hybrid_weight=hybrid_weight, rerank=rerank, focus=focus)
    asked = relevant(hits)  # below the relevance floor the model is not asked and reads nothing
    first = reading.candidates(question, hits, _ranked(hits, reading.POOL), owner) if one_by_one and asked else None
    read = shown(hits, ranked=first) if asked else [[] for _ in hits]
    found = {
        "citations": citations(hits),
        "hits": [{**h.to_dict(), "shown": r} for h, r in zip(hits, read, strict=True)],
    }
    if not asked:
        yield {"answer": NOT_FOUND, **found, "relevant": False}
        return
    yield {"answer": "", **found, "relevant": True}
    params = {"max_new_tokens": int(max_new_tokens), "temperature": float(temperature) or None}
    options = {"owner": owner, "history": history, "params": params, "contrast": contrast}
    if one_by_one:
        read = [(n, text) for _, n, _, text in first]
        texts = reading.one_by_one(model, question, read, system_prompt=system_prompt, **options)
    else:
        texts = reading.together(model, question, build_prompt(question, hits, system_prompt), **options)
    text = ""
    for text in texts:
        yield {"answer": text, **found, "relevant": True}
    final = tidy(text, hits)
    if final != text:
        yield {"answer": final, **found, "relevant": True}


def ask(collection: str, question: str, owner: str, **options) -> dict:
    """The whole answer at once: {"answer", "citations"} (the CLI contract), plus the hits."""
    last: dict = {}
    for last in stream_answer(collection, question, owner, **options):  # noqa: B007 - the final state is the answer
        pass
    return {"answer": last.get("answer", NOT_FOUND), "citations": last.get("citations", []), "hits": last.get("hits")}
