"""The LoRA tab's API through gradio_client: /lora_mask and /lora_estimate before training, /lora_train from YAML
and followed with /job, /lora_compare on the new adapter, /lora_merge into a full model; and the owner
boundaries (another session cannot see, compare or merge the adapter; server files are not data)."""

from __future__ import annotations

import pytest
import yaml

from tests.api.conftest import wait_job

pytestmark = pytest.mark.api


def _config(model) -> dict:
    return {
        "task": "chat",
        "model": str(model),
        "dataset": {"source": "samples/chat-days", "eval_split": 0.1, "max_samples": 48},
        "max_length": 192,
        "lora": {"r": 4, "alpha": 8, "target_modules": "all-linear"},
        "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 1e-3},
    }


def test_the_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/lora_mask", "/lora_estimate", "/lora_train", "/lora_compare", "/lora_merge"} <= names


def test_mask_and_estimate_before_training(client, tiny_chat_model):
    text = yaml.safe_dump(_config(tiny_chat_model))
    mask = client.predict(text, 2, api_name="/lora_mask")
    assert len(mask["examples"]) == 2 and mask["counts"]["trained"] > 0 and mask["counts"]["masked"] > 0
    assert mask["columns"] == {"prompt": "prompt", "completion": "completion"}
    assert mask["statistics"]["tokens"]["max"] >= mask["statistics"]["tokens"]["median"] > 0
    est = client.predict(text, api_name="/lora_estimate")
    assert 0 < est["trainable_parameters"] < est["total_parameters"] and "all-linear" in est["linear_layers"]
    assert est["memory"]["total"] == sum(v for k, v in est["memory"].items() if k != "total")


def test_another_owners_upload_is_not_data(client, tiny_chat_model):
    import os
    from pathlib import Path

    secret = Path(os.environ["PLAYGROUND_HOME"]) / "uploads" / "someone-else" / "dataset-2" / "secret.jsonl"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text('{"prompt": "a", "completion": "b"}\n')
    config = _config(tiny_chat_model)
    config["dataset"]["source"] = str(secret)
    with pytest.raises(Exception, match="not one of your uploads"):
        client.predict(yaml.safe_dump(config), 2, api_name="/lora_mask")


@pytest.mark.parametrize(
    ("change", "words"),
    [({"lora": {"r": 0}}, "lora r must be at least 1"), ({"lora": None}, "needs a lora: section"),
     ({"loss_on": "everything"}, "loss_on")],
)  # fmt: skip
def test_bad_configs_are_sentences(client, tiny_chat_model, change, words):
    config = {**_config(tiny_chat_model), **change}
    with pytest.raises(Exception, match=words):
        client.predict(yaml.safe_dump(config), "bad", api_name="/lora_train")


def test_train_compare_merge_and_the_owner_boundary(client, other_client, tiny_chat_model):
    job_id = client.predict(yaml.safe_dump(_config(tiny_chat_model)), "api-adapter", api_name="/lora_train")
    job = wait_job(client, job_id, timeout=300)
    assert job["status"] == "succeeded", job
    result = client.predict(job_id, api_name="/finetune_result")
    assert result["model_id"] == "trained:api-adapter"
    assert result["report"]["samples"] and {"base", "adapter", "expected"} <= set(result["report"]["samples"][0])

    final = client.predict("trained:api-adapter", "Monday plus 3 days?", 8, 0, 0.0, api_name="/lora_compare")
    assert final["done"] and {"base", "adapter"} <= set(final) and final["tokens"]["adapter"] <= 8
    with pytest.raises(Exception, match="no trained model called 'api-adapter'"):
        other_client.predict("trained:api-adapter", "hi", 8, 0, 0.0, api_name="/lora_compare")
    with pytest.raises(Exception, match="no trained model called 'api-adapter'"):
        other_client.predict("trained:api-adapter", "stolen", api_name="/lora_merge")

    merge_id = client.predict("trained:api-adapter", "api-merged", api_name="/lora_merge")
    merged = wait_job(client, merge_id, timeout=240)
    assert merged["status"] == "succeeded", merged
    assert merged["result"]["merged_vs_adapter_max_abs_logit_diff"] < 1e-3
    assert merged["result"]["merged_vs_base_max_abs_logit_diff"] > 0
    assert "output_dir" not in merged["result"]  # no server path reaches the visitor
    ids = {m["id"] for m in client.predict("text-generation", api_name="/models")}
    assert {"trained:api-adapter", "trained:api-merged"} <= ids
    assert "trained:api-merged" not in {m["id"] for m in other_client.predict(None, api_name="/models")}
