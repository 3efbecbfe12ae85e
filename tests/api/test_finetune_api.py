"""The Fine-tune tab's API through gradio_client: preview and analyze data, start a training from YAML, follow it,
and the owner boundaries (another session sees nothing; server files are not data sources)."""

from __future__ import annotations

import pytest
import yaml

from tests.api.conftest import wait_job

pytestmark = pytest.mark.api


def test_the_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/preview_dataset", "/analyze_dataset", "/finetune", "/finetune_result"} <= names


def test_preview_and_analyze_a_sample(client):
    info = client.predict("samples/sentiment", "", "", api_name="/preview_dataset")
    assert info["splits"] == {"train": 1040, "test": 240} and len(info["rows"]) == 20
    report = client.predict(
        "samples/sentiment",
        "text-classification",
        "text",
        "label",
        "all-minilm-l6-v2",
        64,
        api_name="/analyze_dataset",
    )
    assert {r["label"] for r in report["labels"]} == {"negative", "positive"} and report["lengths"]["max"] > 10


def test_another_owners_upload_is_not_data(client):
    import os
    from pathlib import Path

    theirs = Path(os.environ["PLAYGROUND_HOME"]) / "uploads" / "someone-else" / "dataset-1" / "private.csv"
    theirs.parent.mkdir(parents=True, exist_ok=True)
    theirs.write_text("text,label\nsecret,yes\nother,no\n")
    with pytest.raises(Exception, match="not one of your uploads"):
        client.predict(str(theirs), "", "", api_name="/preview_dataset")


def test_a_training_from_yaml_runs_and_belongs_to_its_owner(client, other_client, tiny_models):
    config = {
        "task": "text-classification",
        "model": str(tiny_models["bert-encoder"]),
        "dataset": {"source": "samples/sentiment", "text_column": "text", "label_column": "label", "eval_split": 0.2},
        "max_length": 16,
        "training": {"num_train_epochs": 0.2, "per_device_train_batch_size": 32},
    }
    job_id = client.predict(yaml.safe_dump(config), "api-model", api_name="/finetune")
    job = wait_job(client, job_id, timeout=240)
    assert job["status"] == "succeeded", job
    result = client.predict(job_id, api_name="/finetune_result")
    assert result["model_id"] == "trained:api-model" and result["summary"]["labels"] == ["negative", "positive"]
    assert any(row["series"] == "loss" for row in result["curves"])
    assert "trained:api-model" in {m["id"] for m in client.predict("text-classification", api_name="/models")}
    with pytest.raises(Exception, match="no job"):
        other_client.predict(job_id, api_name="/finetune_result")
    assert "trained:api-model" not in {m["id"] for m in other_client.predict(None, api_name="/models")}
    with pytest.raises(Exception, match="already have a model called 'api-model'"):
        client.predict(yaml.safe_dump(config), "api-model", api_name="/finetune")


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("task: text-classification\nmodel: m\ndataset: {source: samples/sentiment, label_column: label}\n"
         "training: {learning_rate: 10}", "learning rate of 10"),
        ("just some words", "YAML mapping"),
        # The app under test is offline (HF_HUB_OFFLINE=1): a training that ends with a push is refused up front.
        ("task: text-classification\nmodel: m\ndataset: {source: samples/sentiment, label_column: label}\n"
         "push_to_hub: {repo_id: me/x}", "Pushing is off: the playground is offline"),
    ],
)  # fmt: skip
def test_bad_configs_are_sentences(client, config, words):
    with pytest.raises(Exception, match=words):
        client.predict(config, "x", api_name="/finetune")
