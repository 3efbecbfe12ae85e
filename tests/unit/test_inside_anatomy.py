"""Inside a model, the anatomy (services.inside.anatomy): every module's parameter count is torch's own, tied weights
count once, the summary per layer kind adds up, the config's fields are explained with their values, and an
adapter's LoRA weights are the trainable ones. On the tiny random models, the packaged MiniLM and SmolLM2."""

from __future__ import annotations

import pytest

from services.inside import anatomy, common
from services.models import loading, packs

TINY = [
    ("gpt2", "text-generation"),
    ("bert-mlm", "fill-mask"),
    ("bert-classifier", "text-classification"),
    ("bert-encoder", "feature-extraction"),
    ("t5", "text-generation"),
]


def _need(pack_id: str) -> None:
    if not packs.PACKS[pack_id].installed:
        pytest.skip(f"the package of {pack_id} is not installed")


def _check_counts(result: dict, model) -> None:
    """Each module's count is sum(p.numel()) over module.parameters(); every module is listed once, in order."""
    modules = dict(model.named_modules())
    assert [row["name"] for row in result["modules"]] == list(modules)
    for row in result["modules"]:
        module = modules[row["name"]]
        assert row["type"] == type(module).__name__
        assert row["parameters"] == sum(p.numel() for p in module.parameters()), row["name"]
        assert row["trainable"] == sum(p.numel() for p in module.parameters() if p.requires_grad), row["name"]
    assert result["modules"][0]["name"] == ""
    assert result["total_parameters"] == sum(p.numel() for p in model.parameters())
    assert sum(group["parameters"] for group in result["groups"]) == result["total_parameters"]
    assert sum(group["share"] for group in result["groups"]) == pytest.approx(1.0)
    for name, size in common.PRECISIONS:
        assert result["memory"][name]["bytes"] == int(result["total_parameters"] * size)
        assert result["memory"][name]["human"].endswith(("B", "KB", "MB", "GB"))
    for name, own in result["shapes"].items():  # each module's own weights, with torch's shapes
        assert own == {k: list(p.shape) for k, p in modules[name].named_parameters(recurse=False)}, name
    held = {id(p): p.numel() for m in modules.values() for p in m.parameters(recurse=False)}
    assert sum(held.values()) == result["total_parameters"]  # every weight is held by one listed module


@pytest.mark.parametrize(("name", "task"), TINY)
def test_counts_are_torch_counts_on_the_tiny_models(settings, tiny_models, name, task):
    result = anatomy.inspect_model(str(tiny_models[name]))
    loaded = loading.load(str(tiny_models[name]), task)
    # its own head; a bare encoder may sit in the cache as loaded for sentence-similarity (the same AutoModel)
    assert loading.auto_class_family(result["task"]) == loading.auto_class_family(task), "inspected with its head"
    assert result["architecture"] == type(loaded.model).__name__
    _check_counts(result, loaded.model)
    assert set(result) >= {"model", "total_parameters", "modules", "config"}
    assert set(result["modules"][0]) == {"name", "type", "parameters", "trainable"}
    assert result["model"] == name, "a folder is named by its folder name, never its server path"
    assert not any(key.startswith("_") for key in result["config"]), "no _name_or_path: it is a server path"


def test_tied_weights_count_once(settings, tiny_models):
    loaded = loading.load(str(tiny_models["gpt2"]), "text-generation")
    result = anatomy.inspect_model(str(tiny_models["gpt2"]))
    every_name = sum(p.numel() for _, p in loaded.model.named_parameters(remove_duplicate=False))
    head = loaded.model.get_output_embeddings().weight.numel()
    assert result["total_parameters"] == every_name - head
    assert any("tied" in note for note in result["notes"])
    groups = {group["group"]: group["parameters"] for group in result["groups"]}
    embeddings = loaded.model.transformer.wte.weight.numel() + loaded.model.transformer.wpe.weight.numel()
    assert groups["embeddings"] == embeddings
    assert "head" not in groups, "the tied head is counted under embeddings"


def test_kinds_of_layers_in_a_llama(settings, tiny_chat_model):
    loaded = loading.load(str(tiny_chat_model), "text-generation")
    result = anatomy.inspect_model(str(tiny_chat_model))
    _check_counts(result, loaded.model)
    groups = {group["group"]: group["parameters"] for group in result["groups"]}
    model = loaded.model
    attention = sum(p.numel() for layer in model.model.layers for p in layer.self_attn.parameters())
    mlp = sum(p.numel() for layer in model.model.layers for p in layer.mlp.parameters())
    assert groups["attention"] == attention and groups["mlp"] == mlp
    assert groups["embeddings"] == model.model.embed_tokens.weight.numel()
    assert result["blocks"]["count"] == model.config.num_hidden_layers
    assert result["blocks"]["parameters_each"] == sum(p.numel() for p in model.model.layers[0].parameters())


def test_fields_are_explained_with_their_values(settings, tiny_chat_model):
    result = anatomy.inspect_model(str(tiny_chat_model))
    rows = {row["name"]: row for row in result["fields"]}
    config = loading.load(str(tiny_chat_model), "text-generation").model.config
    for name in (
        "hidden_size",
        "num_attention_heads",
        "num_key_value_heads",
        "num_hidden_layers",
        "intermediate_size",
        "vocab_size",
        "max_position_embeddings",
        "hidden_act",
    ):
        value = getattr(config, name)
        assert rows[name]["value"] == value
        text = rows[name]["explanation"]
        shown = f"{value:,}" if isinstance(value, int) else str(value)
        assert text.startswith(f"{name} = {shown}: ") and len(text) > 60
    assert "grouped-query" in rows["num_key_value_heads"]["explanation"]


def test_a_gpt2_field_is_found_under_its_own_name(settings, tiny_models):
    rows = {row["name"]: row for row in anatomy.inspect_model(str(tiny_models["gpt2"]))["fields"]}
    assert rows["hidden_size"]["field"] == "n_embd" and rows["num_hidden_layers"]["field"] == "n_layer"
    assert rows["hidden_size"]["explanation"].startswith("n_embd = 32:")


@pytest.mark.slow
def test_the_packaged_minilm_and_its_sentiment_adapter(settings):
    _need("all-minilm-l6-v2")
    result = anatomy.inspect_model("all-minilm-l6-v2")
    loaded = loading.load("all-minilm-l6-v2", "feature-extraction")
    _check_counts(result, loaded.model)
    assert not result["adapter"] and result["trainable_parameters"] == result["total_parameters"]

    adapter = anatomy.inspect_model("minilm-sentiment")
    model = loading.load("minilm-sentiment", "text-classification").model
    lora = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n or ".modules_to_save." in n)
    assert adapter["adapter"] and adapter["base"] == "all-minilm-l6-v2"
    assert adapter["total_parameters"] == sum(p.numel() for p in model.parameters())
    assert adapter["trainable_parameters"] == lora and 0 < lora < adapter["total_parameters"] // 10
    rows = {row["name"]: row for row in adapter["modules"]}
    modules = dict(model.named_modules())
    for name, row in rows.items():  # a module's trainable weights are exactly the LoRA weights inside it
        expected = sum(
            p.numel()
            for n, p in modules[name].named_parameters(prefix=name)
            if "lora_" in n or ".modules_to_save." in n
        )
        assert row["trainable"] == expected, name
    groups = {group["group"]: group for group in adapter["groups"]}
    assert groups["adapter"]["trainable"] == lora and groups["attention"]["trainable"] == 0


@pytest.mark.slow
def test_the_packaged_smollm2(settings):
    _need("smollm2-135m-instruct")
    result = anatomy.inspect_model("smollm2-135m-instruct")
    model = loading.load("smollm2-135m-instruct", "text-generation").model
    _check_counts(result, model)
    assert result["blocks"]["count"] == model.config.num_hidden_layers
    groups = {group["group"]: group["share"] for group in result["groups"]}
    assert groups["mlp"] > groups["attention"], "SmolLM2's MLPs hold more weights than its attention"
    rows = {row["name"]: row for row in result["fields"]}
    assert rows["rope_theta"]["value"] == model.config.rope_parameters["rope_theta"]


def test_a_copy_run_by_onnx_runtime_points_at_the_model_it_was_made_from(settings):
    from services.core.errors import PlaygroundError
    from services.models import fast_cpu

    if not packs.PACKS[fast_cpu.BASE].installed:
        pytest.skip("the packaged SmolLM2 is missing")
    with pytest.raises(PlaygroundError, match="look inside smollm2-135m-instruct instead"):
        anatomy.inspect_model(fast_cpu.FAST_ID)
