"""Load: 20 concurrent gradio_client sessions send 200 requests across tasks. Every answer must be right, none may
fail, and each model must be loaded once (one copy in memory), however many sessions ask for it at once."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client

pytestmark = pytest.mark.api

QA_MODEL = Path(__file__).resolve().parents[1] / "data" / "qa" / "bert-wordpiece"


def normalize(value):
    """JSON-comparable: numpy and Python floats rounded alike (the API sends floats through JSON)."""
    if isinstance(value, dict):
        return {k: normalize(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    return round(value, 4) if isinstance(value, float) else value


def requests_for(tiny_models) -> list[tuple[str, str, str, str | None]]:
    labels = json.dumps({"candidate_labels": ["sports", "food", "travel"]})
    qa = json.dumps({"question": "where does alice live?", "context": "alice lives in paris and works at acme."})
    return [
        ("sentiment-analysis", str(tiny_models["bert-classifier"]), "the movie was very good", None),
        ("ner", str(tiny_models["bert-ner"]), "alice lives in paris", None),
        ("zero-shot-classification", "all-minilm-l6-v2", "I booked a flight to Rome", labels),
        ("sentence-similarity", "all-minilm-l6-v2",
         json.dumps({"source_sentence": "a cat", "sentences": ["a kitten", "a tax form"]}), None),
        ("text-generation", str(tiny_models["gpt2"]), "the movie", json.dumps({"max_new_tokens": 4})),
        ("question-answering", str(QA_MODEL), qa, None),
        ("fill-mask", str(tiny_models["bert-mlm"]), "paris is the [MASK] of france", None),
        ("feature-extraction", "all-minilm-l6-v2", "tokens become vectors", None),
    ]  # fmt: skip


def test_twenty_sessions_two_hundred_requests(live_app, tiny_models):
    from services.models import loading
    from services.pipelines import run

    kinds = requests_for(tiny_models)
    expected = {}
    for task, model, inputs, params in kinds:
        parsed = json.loads(inputs) if inputs.startswith("{") else inputs
        expected[task] = normalize(run(task, model, parsed, **json.loads(params or "{}")))
    loads_before = loading.model_cache().loads

    clients = [Client(live_app["url"], verbose=False) for _ in range(20)]

    def session(index: int) -> list[tuple[str, object]]:
        client = clients[index]
        answers = []
        for k in range(10):
            task, model, inputs, params = kinds[(index + k) % len(kinds)]
            answers.append((task, client.predict(task, model, inputs, params, api_name="/run")))
        return answers

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [answer for batch in pool.map(session, range(20)) for answer in batch]
    assert len(results) == 200
    for task, answer in results:
        assert normalize(answer) == expected[task], task
    assert loading.model_cache().loads == loads_before, "every model was already loaded once: no second copy"
    entries = loading.model_cache().snapshot()
    assert len(entries) == len({(e["id"], e["task"]) for e in entries})
