"""The Pipelines tab's API: `/run` (the services.pipelines.run contract) and streamed `/generate`."""

from __future__ import annotations

import itertools
import json

import pytest
from gradio_client import Client

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app["url"], verbose=False)


def test_run_returns_the_4x_schema(client, tiny_models):
    result = client.predict("sentiment-analysis", str(tiny_models["bert-classifier"]), "the movie was good", None,
                            api_name="/run")  # fmt: skip
    assert len(result) == 1 and result[0]["label"] in {"NEGATIVE", "POSITIVE"}
    top = client.predict("text-classification", str(tiny_models["bert-classifier"]), "good", '{"top_k": 2}',
                         api_name="/run")  # fmt: skip
    assert sorted(r["label"] for r in top) == ["NEGATIVE", "POSITIVE"]


def test_run_on_the_packaged_embedding_model(client):
    result = client.predict(
        "zero-shot-classification", "all-minilm-l6-v2", "The striker scored twice in the final",
        json.dumps({"candidate_labels": ["sports", "politics", "cooking"]}), api_name="/run",
    )  # fmt: skip
    assert result["labels"][0] == "sports"
    scores = client.predict(
        "sentence-similarity", "all-minilm-l6-v2",
        json.dumps({"source_sentence": "A man plays a guitar.", "sentences": ["Someone strums a guitar.", "Tax law"]}),
        None, api_name="/run",
    )  # fmt: skip
    assert scores[0] > scores[1]


def test_generate_streams_growing_text(client, tiny_models):
    job = client.submit(str(tiny_models["gpt2"]), "the movie", '{"max_new_tokens": 6}', api_name="/generate")
    outputs = list(job)
    assert outputs, "at least one streamed update"
    assert all(b.startswith(a) for a, b in itertools.pairwise(outputs))


@pytest.mark.parametrize(
    ("task", "model", "inputs", "sentence"),
    [
        ("sentiment-analysis", "bert-classifier", "", "type some text"),
        ("question-answering", "bert-classifier", '{"question": "who?", "context": ""}', "paste a context"),
        ("ner", "gpt2", "alice lives in paris", "It can do: text-generation"),
        ("sentiment-analysis", None, "hello", "offline"),
    ],
)
def test_bad_requests_get_a_sentence(client, tiny_models, task, model, inputs, sentence):
    model_id = str(tiny_models[model]) if model else "distilbert/distilbert-base-uncased-finetuned-sst-2-english"
    with pytest.raises(Exception, match=sentence):
        client.predict(task, model_id, inputs, None, api_name="/run")


@pytest.mark.parametrize("key", ["trust_remote_code", "allow_pickle", "owner"])
def test_the_api_refuses_settings_that_choose_what_code_runs(client, tiny_models, key):
    params = json.dumps({key: True if key != "owner" else "anon:someone-else"})
    with pytest.raises(Exception, match="cannot be set through the API"):
        client.predict("sentiment-analysis", str(tiny_models["bert-classifier"]), "good", params, api_name="/run")
