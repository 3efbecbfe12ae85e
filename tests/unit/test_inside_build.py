"""Inside a model, "Build your own" (services.inside.build): the estimate on the meta device equals the parameter
count of the real model, changes that cannot work are refused with a sentence, and `create` makes a trained:<name>
the catalog finds and the loader loads (never over an existing one), with a trained tokenizer when asked and a
Fine-tune config that the training service accepts."""

from __future__ import annotations

import json

import pytest

from services.core.errors import PlaygroundError
from services.inside import build, forward
from services.models import catalog, loading

OWNER = "cli:builder"


def _real_count(folder, changes: dict, cls_name: str) -> int:
    """The parameters of a model really built (random weights, in memory) from the folder's config and changes."""
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    for name, value in changes.items():
        setattr(config, name, value)
    resized = "hidden_size" in changes or "num_attention_heads" in changes
    if resized and getattr(config, "head_dim", None) is not None:  # Llama keeps hidden / heads in head_dim
        config.head_dim = config.hidden_size // config.num_attention_heads
    model = getattr(transformers, cls_name)(config)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("fixture", "name", "cls_name", "changes"),
    [
        (
            "tiny_chat_model",
            None,
            "LlamaForCausalLM",
            {
                "num_hidden_layers": 3,
                "hidden_size": 48,
                "num_attention_heads": 6,
                "num_key_value_heads": 3,
                "intermediate_size": 80,
            },
        ),
        ("tiny_models", "gpt2", "GPT2LMHeadModel", {"num_hidden_layers": 3, "max_position_embeddings": 64}),
        (
            "tiny_models",
            "bert-mlm",
            "BertForMaskedLM",
            {"hidden_size": 40, "num_attention_heads": 4, "vocab_size": 200},
        ),
    ],
)
def test_the_estimate_is_the_real_count(settings, request, fixture, name, cls_name, changes):
    folder = request.getfixturevalue(fixture)
    folder = folder[name] if name else folder
    result = build.estimate(str(folder), changes)
    assert result["total_parameters"] == _real_count(folder, changes, cls_name)
    assert result["parameters_before"] == _real_count(folder, {}, cls_name)
    assert result["changes"] == changes and result["architecture"] == cls_name
    assert all(result["fields"][key] == value for key, value in changes.items())
    assert sum(group["parameters"] for group in result["groups"]) == result["total_parameters"]
    assert result["memory"]["bf16"]["bytes"] == 2 * result["total_parameters"]


def test_config_for_names_each_field_and_its_attribute(settings, tiny_models):
    from transformers import AutoConfig

    result = build.config_for(str(tiny_models["gpt2"]))
    config = AutoConfig.from_pretrained(tiny_models["gpt2"])
    assert result["attributes"]["num_hidden_layers"] == "n_layer"
    for name, attribute in result["attributes"].items():
        assert result["fields"][name] == getattr(config, attribute)
    assert "intermediate_size" not in result["fields"], "GPT-2 keeps no intermediate size here (n_inner is None)"
    assert result["total_parameters"] == _real_count(tiny_models["gpt2"], {}, "GPT2LMHeadModel")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"num_attention_heads": 5}, "must be a multiple of num_attention_heads"),
        ({"num_key_value_heads": 3}, "must be a multiple of num_key_value_heads"),
        ({"num_hidden_layers": 0}, "must be more than 0"),
        ({"hidden_size": -32}, "must be more than 0"),
        ({"num_hidden_layers": 1000}, "between 1 and 48"),
        ({"num_hidden_layers": 2.5}, "whole number"),
        ({"num_hidden_layers": "many"}, "whole number"),
        ({"temperature": 3}, "cannot be changed here"),
        (
            {
                "num_hidden_layers": 48,
                "hidden_size": 4096,
                "num_attention_heads": 32,
                "num_key_value_heads": 32,
                "intermediate_size": 16384,
            },
            "capped at 200,000,000",
        ),
    ],
)
def test_changes_that_cannot_work_are_a_sentence(settings, tiny_chat_model, changes, words):
    with pytest.raises(PlaygroundError, match=words) as caught:
        build.estimate(str(tiny_chat_model), changes)
    assert "Traceback" not in str(caught.value) and str(caught.value).endswith(".")


def test_create_makes_a_trained_model_once(settings, tiny_chat_model):
    changes = {"num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "num_key_value_heads": 1}
    made = build.create(str(tiny_chat_model), changes, "my-llama", OWNER)
    assert made["id"] == "trained:my-llama"
    resolved = catalog.resolve("trained:my-llama", OWNER)
    assert "text-generation" in resolved.tasks
    assert "trained:my-llama" in {e.id for e in catalog.catalog(owner=OWNER)}
    loaded = loading.load("trained:my-llama", "text-generation", owner=OWNER)
    assert sum(p.numel() for p in loaded.model.parameters()) == made["total_parameters"]
    assert loaded.model.config.num_hidden_layers == 1 and loaded.model.config.head_dim == 8
    assert {"config.json", "model.safetensors", "tokenizer.json", "README.md", build.RECORD} <= set(made["files"])
    record = json.loads((catalog.trained_root(OWNER) / "my-llama" / build.RECORD).read_text())
    assert record["changes"] == changes and "/" not in record["source"], "never a server path"
    assert forward.forward_views("trained:my-llama", "the movie", owner=OWNER)["layers"] == 1

    weights = catalog.trained_root(OWNER) / "my-llama" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    with pytest.raises(PlaygroundError, match="already have a model called 'my-llama'"):
        build.create(str(tiny_chat_model), {"num_hidden_layers": 2}, "my-llama", OWNER)
    assert weights.stat().st_mtime_ns == stamp, "nothing was overwritten"
    with pytest.raises(PlaygroundError, match="Name the model"):
        build.create(str(tiny_chat_model), {}, "../escape", OWNER)
    assert not (settings.home / "building").exists() or not any((settings.home / "building").iterdir())


def test_the_finetune_config_trains_it_from_scratch_on_the_stories(settings, tiny_models):
    from services.data.sources import sample_ids
    from services.training.config import TrainConfig

    made = build.create(str(tiny_models["gpt2"]), {"num_hidden_layers": 1}, "scratch", OWNER)
    config = TrainConfig.from_dict(made["finetune_config"])
    assert config.task == "causal-lm" and config.model == "trained:scratch"
    assert config.dataset.source == build.FINETUNE_DATASET in sample_ids()
    assert config.max_length <= made["fields"]["max_position_embeddings"]


def test_a_trained_tokenizer_sets_the_vocabulary(settings, tiny_chat_model):
    from services.tokenizers.loading import load_tokenizer, tokenizers_root
    from services.tokenizers.training import TokenizerTrainConfig, train

    train(TokenizerTrainConfig(name="tiny-bpe", model="bpe", vocab_size=300), tokenizers_root(OWNER) / "tiny-bpe")
    size = len(load_tokenizer("tokenizer:tiny-bpe", OWNER).hf)
    estimate = build.estimate(str(tiny_chat_model), {}, owner=OWNER, tokenizer="tokenizer:tiny-bpe")
    assert estimate["fields"]["vocab_size"] == size and estimate["tokenizer"] == "tokenizer:tiny-bpe"
    made = build.create(str(tiny_chat_model), {}, "own-words", OWNER, tokenizer="tokenizer:tiny-bpe")
    loaded = loading.load("trained:own-words", "text-generation", owner=OWNER)
    assert loaded.model.config.vocab_size == size == len(loaded.tokenizer)
    assert made["total_parameters"] < build.estimate(str(tiny_chat_model))["total_parameters"]


def test_a_vocabulary_smaller_than_the_tokenizer_is_refused_at_create(settings, tiny_chat_model):
    estimate = build.estimate(str(tiny_chat_model), {"vocab_size": 100})
    assert any("smaller than the tokenizer" in warning for warning in estimate["warnings"])
    with pytest.raises(PlaygroundError, match="smaller than the tokenizer"):
        build.create(str(tiny_chat_model), {"vocab_size": 100}, "too-few", OWNER)
    assert not (catalog.trained_root(OWNER) / "too-few").exists()


def test_a_visitor_may_keep_only_so_many_built_models(settings, tiny_chat_model, monkeypatch):
    from services.core.limits import LimitExceeded

    monkeypatch.setattr(build, "MAX_BUILT", 2)
    for name in ("one", "two"):
        build.create(str(tiny_chat_model), {"num_hidden_layers": 1}, name, OWNER)
    with pytest.raises(LimitExceeded, match="the most one visitor may keep"):
        build.create(str(tiny_chat_model), {"num_hidden_layers": 1}, "three", OWNER)
    build.create(str(tiny_chat_model), {"num_hidden_layers": 1}, "three", "cli:another-visitor")  # theirs is apart
