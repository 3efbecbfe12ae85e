"""`/v1/embeddings`, and text-embeddings-inference's `/predict` and `/rerank`, micro-batched.

Many clients sending a few texts each are served like one client sending them all: a request's texts go into its
model's queue, and one worker per model takes everything queued (up to `BATCH_TEXTS` texts) through the model in
one batch, then hands each request its rows. It never waits for more to come: while one batch runs, the next
requests queue up and form the next batch, so a lone request pays nothing and a crowd is batched (on 2 CPU cores
a batch of 32 short texts costs a fraction of 32 single calls, which is the whole point).
"""

from __future__ import annotations

import base64
import concurrent.futures
import os
import queue
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.core.errors import PlaygroundError
from services.core.limits import get_limits
from services.serve.errors import ApiError, bad_request, from_playground

BATCH_TEXTS = 64
SMALL_BATCH = 8
MAX_TEXTS = 256  # per request (OpenAI takes 2048; a 2-core CPU needs seconds for 256 already)
_IDLE_S = 60.0  # a model's worker ends after this long without work


@dataclass
class _Ask:
    texts: list[str]
    future: concurrent.futures.Future = field(default_factory=concurrent.futures.Future)


class _Batcher:
    """One model's queue and the worker thread that drains it in batches."""

    def __init__(self, key: tuple, run: Callable[[list[str]], list]) -> None:
        self.key, self.run = key, run
        self.queue: queue.Queue[_Ask] = queue.Queue()
        self.worker: threading.Thread | None = None

    def submit(self, texts: list[str]) -> concurrent.futures.Future:
        ask = _Ask(texts)
        self.queue.put(ask)
        return ask.future

    def loop(self) -> None:
        while True:
            try:
                first = self.queue.get(timeout=_IDLE_S)
            except queue.Empty:
                if _retire(self):
                    return
                continue
            asks, count = [first], len(first.texts)
            while count < BATCH_TEXTS:
                try:
                    ask = self.queue.get_nowait()
                except queue.Empty:
                    break
                asks.append(ask)
                count += len(ask.texts)
            self._serve(asks)

    def _serve(self, asks: list[_Ask]) -> None:
        texts = [t for ask in asks for t in ask.texts]
        try:
            _threads(len(texts))
            rows = self.run(texts)
        except Exception as err:  # every request of the batch gets the same answer
            for ask in asks:
                ask.future.set_exception(err)
            return
        start = 0
        for ask in asks:
            ask.future.set_result(rows[start : start + len(ask.texts)])
            start += len(ask.texts)


def _threads(count: int) -> None:
    """CPU threads for a batch of `count` texts: one for a few texts, where a second thread costs more to wake and
    to share the cores with the server's own threads than it saves."""
    from services.pipelines import use_threads

    use_threads(1 if count < SMALL_BATCH else max(1, os.cpu_count() or 1))


_batchers: dict[tuple, _Batcher] = {}
_batchers_lock = threading.Lock()


def _retire(batcher: _Batcher) -> bool:
    with _batchers_lock:
        if not batcher.queue.empty():
            return False
        if _batchers.get(batcher.key) is batcher:
            del _batchers[batcher.key]
        return True


def _batched(kind: str, loaded: Any, run: Callable[[list[str]], list], texts: list[str]) -> list:
    key = (kind, id(loaded.model))
    with _batchers_lock:
        batcher = _batchers.get(key)
        if batcher is None:
            batcher = _batchers[key] = _Batcher(key, run)
            batcher.worker = threading.Thread(target=batcher.loop, name=f"batch-{kind}", daemon=True)
            batcher.worker.start()
        future = batcher.submit(texts)
    try:
        return future.result(timeout=600)
    except PlaygroundError as err:
        raise from_playground(err) from err


def _texts(value: Any, name: str) -> list[str]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise bad_request(f"'{name}' must be a text or a list of texts (token arrays are not supported).", name)
    if len(texts) > MAX_TEXTS:
        raise ApiError(422, f"At most {MAX_TEXTS} texts per request; this one has {len(texts)}.",
                       code="limit_exceeded", param=name)  # fmt: skip
    cap = get_limits().text_chars
    if sum(len(t) for t in texts) > cap:
        raise ApiError(413, f"The texts add up to more than {cap:,} characters, the most one request may send.",
                       code="context_length_exceeded", param=name)  # fmt: skip
    if any(not t.strip() for t in texts):
        raise bad_request(f"'{name}' holds an empty text.", name)
    return texts


def _load(model: Any, task: str, owner: str):
    from services.models import loading

    if not isinstance(model, str) or not model.strip():
        raise bad_request("The request needs 'model': a model id from GET /v1/models.", "model")
    try:
        return loading.load(model.strip(), task, owner=owner)
    except PlaygroundError as err:
        raise from_playground(err, model) from err


def _embedding_model(model: Any, owner: str):
    from services.pipelines.embeddings import is_embedding_model

    loaded = _load(model, "sentence-similarity", owner)
    with loaded.lock:  # reading the config's tasks costs milliseconds: once per cached model
        embedding = loaded.extras.get("is_embedding")
    if embedding is None:
        embedding = is_embedding_model(loaded)
        with loaded.lock:
            loaded.extras["is_embedding"] = embedding
    if not embedding:
        raise bad_request(f"'{model}' is not a sentence-embedding model: /v1/embeddings needs one.", "model")
    return loaded


def _vectors(loaded: Any) -> Callable[[list[str]], list]:
    """Each text's (vector, token count), for the batch worker: the counts are the usage OpenAI's answer reports."""
    from services.pipelines.embeddings import embed

    def run(texts: list[str]) -> list:
        rows = embed(loaded, texts, batch_size=BATCH_TEXTS).tolist()
        with loaded.busy:
            counts = [len(ids) for ids in loaded.tokenizer(texts, truncation=True)["input_ids"]]
        return list(zip(rows, counts, strict=True))

    return run


def embeddings(body: Any, owner: str) -> dict:
    """OpenAI's `/v1/embeddings`: normalised sentence vectors as floats, or as base64 float32 (the `openai`
    package asks for base64 by default and decodes it)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    texts = _texts(body.get("input"), "input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    if body.get("dimensions") is not None:
        raise bad_request("'dimensions' is not supported: these models have a fixed size.", "dimensions")
    loaded = _embedding_model(body.get("model"), owner)
    rows = _batched("embed", loaded, _vectors(loaded), texts)
    data = []
    for i, (row, _) in enumerate(rows):
        vector: Any = row
        if encoding == "base64":
            vector = base64.b64encode(struct.pack(f"<{len(row)}f", *row)).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": vector})
    tokens = sum(count for _, count in rows)
    return {"object": "list", "data": data, "model": body["model"],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}  # fmt: skip


def predict(body: Any, owner: str, model: str) -> list:
    """text-embeddings-inference's `/predict`: `{"inputs": text | [texts]}` -> `[{label, score}]` per text."""
    from services.pipelines import run_loaded

    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    inputs = body.get("inputs")
    single = isinstance(inputs, str)
    texts = _texts(inputs, "inputs")
    loaded = _load(body.get("model") or model, "text-classification", owner)

    def classify(batch: list[str]) -> list:
        results = run_loaded(loaded, "text-classification", batch, top_k=None)
        return [[{"label": r["label"], "score": float(r["score"])} for r in row] for row in results]

    rows = _batched("predict", loaded, classify, texts)
    return rows[0] if single else rows


def rerank(body: Any, owner: str, model: str) -> list:
    """text-embeddings-inference's `/rerank`: `{query, texts}` -> `[{index, score}]`, best first (cosine similarity
    of a sentence-embedding model's vectors: a bi-encoder rerank)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise bad_request("The request needs 'query': a text.", "query")
    texts = _texts(body.get("texts"), "texts")
    loaded = _embedding_model(body.get("model") or model, owner)
    rows = [row for row, _ in _batched("embed", loaded, _vectors(loaded), [query, *texts])]
    scores = [sum(a * b for a, b in zip(rows[0], row, strict=True)) for row in rows[1:]]
    ranked = sorted(range(len(texts)), key=lambda i: -scores[i])
    answer = []
    for i in ranked:
        item = {"index": i, "score": scores[i]}
        if body.get("return_text"):
            item["text"] = texts[i]
        answer.append(item)
    return answer
