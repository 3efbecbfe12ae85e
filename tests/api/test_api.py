"""The app's API through gradio_client, against the app launched on a free port."""

from __future__ import annotations

import pytest

from tests.api.conftest import wait_job

pytestmark = pytest.mark.api


def test_api_lists_the_documented_endpoints(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/models", "/prepare_model", "/jobs", "/job", "/cancel_job", "/retry_job"} <= names


def test_models_endpoint_returns_the_offline_catalog(client):
    everything = client.predict(None, api_name="/models")
    assert {m["id"] for m in everything} >= {"all-minilm-l6-v2", "smollm2-135m-instruct"}
    assert all(m["available"] for m in everything)
    generation = client.predict("text-generation", api_name="/models")
    assert [m["id"] for m in generation] == [
        "smollm2-135m-instruct",
        "smollm2-135m-instruct-fast-cpu",
        "grounded-answers",
    ]


def test_prepare_runs_as_a_child_job_visible_only_to_its_owner(client, other_client, tiny_models):
    job_id = client.predict(str(tiny_models["bert-classifier"]), api_name="/prepare_model")
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job
    assert job["kind"] == "prepare" and job["progress"] == 1.0
    assert job["result"]["task"] == "text-classification" and job["result"]["device"] in ("cpu", "cuda", "mps")
    assert job_id in [j["id"] for j in client.predict(api_name="/jobs")]
    assert job_id not in [j["id"] for j in other_client.predict(api_name="/jobs")]
    with pytest.raises(Exception, match="no job"):
        other_client.predict(job_id, api_name="/job")
    with pytest.raises(Exception, match="no job"):
        other_client.predict(job_id, api_name="/cancel_job")
    with pytest.raises(Exception, match="no job"):
        other_client.predict(job_id, api_name="/retry_job")
    with pytest.raises(Exception, match="Only a job that failed"):
        client.predict(job_id, api_name="/retry_job")


@pytest.mark.parametrize(
    ("model", "sentence"),
    [
        ("", "choose a model"),
        ("openai-community/gpt2", "offline"),
        ("/definitely/not/here", "no folder"),
        ("what is this ???", "not a model name"),
    ],
)
def test_bad_model_ids_get_a_sentence_and_no_job(client, model, sentence):
    before = len(client.predict(api_name="/jobs"))
    with pytest.raises(Exception, match=sentence):
        client.predict(model, api_name="/prepare_model")
    assert len(client.predict(api_name="/jobs")) == before


def test_the_app_keeps_serving_after_errors(client):
    with pytest.raises(Exception):  # noqa: B017 - any error; the point is what comes after
        client.predict("nope nope", api_name="/prepare_model")
    assert client.predict(None, api_name="/models")
