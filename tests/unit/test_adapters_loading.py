"""A PEFT adapter folder is a model everywhere (issue 16): resolved with its base, loaded, run, listed, coded."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from services.core.errors import ModelUnavailable, NotAModel, TaskMismatch
from services.models import catalog as models
from services.models import loading

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def build_causal_adapter(base: Path, out: Path) -> Path:
    """A LoRA on the tiny GPT-2 with random (non-zero) B matrices, so the adapter changes the logits."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out)
    return out


def build_classifier_adapter(base: Path, out: Path) -> Path:
    """A SEQ_CLS LoRA on a bare encoder (as MiniLM is): the classifier head saved with it, labels in config.json."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(2)
    labels = {0: "negative", 1: "positive"}
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()}
    )
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["query", "value"], task_type="SEQ_CLS"))
    peft_model.save_pretrained(out)
    model.config.save_pretrained(out)  # the label names beside the adapter
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def adapters_dir(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {
        "causal": build_causal_adapter(tiny_models["gpt2"], root / "causal"),
        "classifier": build_classifier_adapter(tiny_models["bert-encoder"], root / "classifier"),
    }


@pytest.fixture
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=settings.model_memory_bytes)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


def _copy(src: Path, dest: Path, **changes) -> Path:
    shutil.copytree(src, dest)
    config = json.loads((dest / "adapter_config.json").read_text())
    config.update(changes)
    (dest / "adapter_config.json").write_text(json.dumps(config))
    return dest


def test_an_adapter_folder_resolves_with_its_base(settings, adapters_dir, tiny_models):
    resolved = models.resolve(str(adapters_dir["causal"]))
    assert resolved.source == "adapter" and resolved.location == str(adapters_dir["causal"])
    assert resolved.base is not None and resolved.base.location == str(tiny_models["gpt2"])
    assert "text-generation" in resolved.tasks
    assert models.resolve(str(adapters_dir["classifier"])).tasks == ("text-classification",)


def test_text_generation_on_an_adapter_folder_returns_the_4x_chat_schema(fresh_cache, adapters_dir):
    from services.pipelines import run

    messages = [{"role": "user", "content": "the movie was"}]
    out = run("text-generation", str(adapters_dir["causal"]), messages, max_new_tokens=8, do_sample=False)
    [item] = out
    assert item["generated_text"][:1] == messages and item["generated_text"][-1]["role"] == "assistant"
    assert isinstance(item["generated_text"][-1]["content"], str)
    again = run("text-generation", str(adapters_dir["causal"]), messages, max_new_tokens=8, do_sample=False)
    assert again == out and fresh_cache.loads == 1, "loaded once, then served from the cache"


def test_the_adapter_changes_the_model_and_can_be_switched_off(fresh_cache, adapters_dir, tiny_models):
    import torch

    loaded = loading.load(str(adapters_dir["causal"]), "text-generation")
    base = loading.load(str(tiny_models["gpt2"]), "text-generation")
    assert loaded.model is not base.model, "the adapter never writes into the cached base"
    ids = torch.tensor([[5, 6, 7, 8]])
    lora_layers = [m for m in loaded.model.modules() if hasattr(m, "lora_A")]
    assert lora_layers and all(m.merged for m in lora_layers), "a chat adapter runs merged, as fast as its base"
    with torch.no_grad():
        adapted = loaded.model(ids).logits
        with loaded.extras["peft"].disable_adapter():
            switched_off = loaded.model(ids).logits
        plain = base.model(ids).logits
        again = loaded.model(ids).logits  # switched back on (unmerged now): the same adapter
    assert (adapted - plain).abs().max() > 1e-3
    assert torch.allclose(switched_off, plain, atol=1e-5)
    assert torch.allclose(again, adapted, atol=1e-4)
    assert loaded.tokenizer.chat_template == CHAT_TEMPLATE, "the adapter's own tokenizer, chat template included"


def test_a_classification_adapter_with_its_saved_head(fresh_cache, adapters_dir):
    from services.pipelines import run

    out = run("text-classification", str(adapters_dir["classifier"]), "the movie was very good")
    assert out[0]["label"] in {"negative", "positive"} and 0 <= out[0]["score"] <= 1
    out = run("sentiment-analysis", str(adapters_dir["classifier"]), ["good", "bad"], top_k=None)
    assert {d["label"] for d in out[0]} == {"negative", "positive"}


def test_a_head_that_was_not_saved_is_refused(fresh_cache, adapters_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = _copy(adapters_dir["classifier"], tmp_path / "headless")
    weights = load_file(folder / "adapter_model.safetensors")
    save_file({k: v for k, v in weights.items() if "classifier" not in k}, folder / "adapter_model.safetensors")
    with pytest.raises(NotAModel, match="head was not saved"):
        loading.load(str(folder), "text-classification")


def test_a_lora_on_a_model_that_cannot_do_the_task(fresh_cache, adapters_dir):
    with pytest.raises(TaskMismatch, match="cannot do text-classification"):
        loading.load(str(adapters_dir["causal"]), "text-classification")
    with pytest.raises(TaskMismatch, match="cannot do text-generation"):
        loading.load(str(adapters_dir["classifier"]), "text-generation")


def test_an_adapter_whose_base_is_gone(settings, adapters_dir, tmp_path):
    folder = _copy(adapters_dir["causal"], tmp_path / "orphan", base_model_name_or_path=str(tmp_path / "gone"))
    with pytest.raises(ModelUnavailable, match="was made for the base model 'gone'") as err:
        models.resolve(str(folder))
    assert str(tmp_path) not in str(err.value), "a folder's name, never a server path"
    folder = _copy(adapters_dir["causal"], tmp_path / "empty", base_model_name_or_path=None)
    with pytest.raises(NotAModel, match="does not say which base model"):
        models.resolve(str(folder))


def test_an_adapter_without_weights(settings, adapters_dir, tmp_path):
    folder = _copy(adapters_dir["causal"], tmp_path / "noweights")
    (folder / "adapter_model.safetensors").unlink()
    with pytest.raises(NotAModel, match=r"no adapter_model\.safetensors"):
        models.resolve(str(folder))


def test_keys_from_a_newer_peft(fresh_cache, adapters_dir, tmp_path, caplog):
    import peft

    unset = _copy(adapters_dir["causal"], tmp_path / "newer", future_option=None, peft_version="9.1.0")
    with caplog.at_level(logging.WARNING, logger="services.models.adapters"):
        loaded = loading.load(str(unset), "text-generation")
    assert loaded.extras["peft"] is not None
    assert "future_option" in caplog.text and "9.1.0" in caplog.text
    used = _copy(adapters_dir["causal"], tmp_path / "newer-used", future_feature=True, peft_version="9.1.0")
    with pytest.raises(ModelUnavailable, match=r"9\.1\.0") as err:
        loading.load(str(used), "text-generation")
    assert peft.__version__ in str(err.value) and "future_feature" in str(err.value)


def test_a_trained_adapter_is_listed_and_resolved_as_trained(fresh_cache, adapters_dir, tmp_path):
    from services.pipelines import run

    owner = "anon:alice"
    shutil.copytree(adapters_dir["causal"], models.trained_root(owner) / "my-lora")
    [entry] = [e for e in models.catalog("text-generation", owner=owner) if e.source == "trained"]
    assert entry.id == "trained:my-lora" and entry.available and "LoRA adapter" in entry.description
    assert models.resolve("trained:my-lora", owner).source == "adapter"
    assert models.catalog("text-generation", owner="anon:bob", available_only=False) == [
        e for e in models.catalog("text-generation", owner="anon:bob", available_only=False) if e.source != "trained"
    ]
    messages = [{"role": "user", "content": "hello"}]
    out = run("text-generation", "trained:my-lora", messages, owner=owner, max_new_tokens=4, do_sample=False)
    assert out[0]["generated_text"][-1]["role"] == "assistant"
    gone = _copy(adapters_dir["causal"], models.trained_root(owner) / "orphan", base_model_name_or_path="/no/base")
    listed = {e.id: e for e in models.catalog(owner=owner, available_only=False)}
    assert not listed["trained:orphan"].available and "base model 'base'" in listed["trained:orphan"].reason
    assert gone.is_dir()


def test_a_packaged_models_hub_twin_reads_as_the_packaged_model(settings, tmp_path):
    from services.models import adapters, packs

    for pack in packs.PACKS.values():
        expected = pack.id if pack.installed else pack.hub_id
        assert adapters.base_reference({"base_model_name_or_path": pack.hub_id}, tmp_path, None) == expected
        converted = {"base_model_name_or_path": str(packs.converted_dir(pack))}
        assert adapters.base_reference(converted, tmp_path, None) == pack.id
    snapshot = {"base_model_name_or_path": "/cache/hub/models--org--name/snapshots/abc123"}
    assert adapters.base_reference(snapshot, tmp_path, None) == "org/name"
    trained = {"base_model_name_or_path": str(models.trained_root("anon:alice") / "mine")}
    assert adapters.base_reference(trained, tmp_path, "anon:alice") == "trained:mine"
