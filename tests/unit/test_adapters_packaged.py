"""Adapters on the two packaged models (issue 16): a LoRA on SmolLM2 chats, a LoRA with a head on MiniLM classifies,
offline, named by catalog id or by the packaged model's Hub twin."""

from __future__ import annotations

import json

import pytest

from services.models import catalog as models
from services.models import loading, packs

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=settings.model_memory_bytes)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


def _need(pack_id: str) -> None:
    if not packs.PACKS[pack_id].installed:
        pytest.skip(f"the package of {pack_id} is not installed")


def test_a_lora_on_smollm2_chats(fresh_cache, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from services.pipelines import run

    _need("smollm2-135m-instruct")
    base = packs.ensure_ready("smollm2-135m-instruct")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base)
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    folder = tmp_path / "smol-lora"
    get_peft_model(model, lora).save_pretrained(folder)  # base_model_name_or_path: the converted pack folder
    assert models.resolve(str(folder)).base.id == "smollm2-135m-instruct"
    messages = [{"role": "user", "content": "Say hello."}]
    out = run("text-generation", str(folder), messages, max_new_tokens=8, do_sample=False)
    plain = run("text-generation", "smollm2-135m-instruct", messages, max_new_tokens=8, do_sample=False)
    assert out[0]["generated_text"][-1]["role"] == "assistant"
    assert out == plain, "a LoRA as peft initialises it (B = 0) changes nothing"


def test_a_lora_with_a_head_on_minilm_classifies(fresh_cache, tmp_path):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification

    from services.pipelines import run

    _need("all-minilm-l6-v2")
    torch.manual_seed(0)
    labels = {0: "negative", 1: "positive"}
    model = AutoModelForSequenceClassification.from_pretrained(
        packs.ensure_ready("all-minilm-l6-v2"), num_labels=2, id2label=labels, label2id={"negative": 0, "positive": 1}
    )
    folder = tmp_path / "minilm-lora"
    get_peft_model(model, LoraConfig(r=2, target_modules=["query", "value"], task_type="SEQ_CLS")).save_pretrained(
        folder
    )
    config = json.loads((folder / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "sentence-transformers/all-MiniLM-L6-v2"  # the Hub twin, as a Hub card says
    (folder / "adapter_config.json").write_text(json.dumps(config))
    model.config.save_pretrained(folder)
    assert models.resolve(str(folder)).base.id == "all-minilm-l6-v2"
    [result] = run("sentiment-analysis", str(folder), "I loved this film.")
    assert result["label"] in {"negative", "positive"}
