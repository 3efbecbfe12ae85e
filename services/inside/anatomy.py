"""The anatomy of a model: every module with its parameters, the share of each kind of layer, the config's fields
explained, and the memory the weights need.

Counts are torch's own: a module's parameters are `module.parameters()` (itself and its children, a tied weight
counted once), so the numbers match what a student gets from `sum(p.numel() for p in model.parameters())`. For a
LoRA adapter the model is its base with the adapter on it, and only the adapter's own weights count as trainable
(the shared copy is in inference mode, so `requires_grad` says nothing about what training would change).
"""

from __future__ import annotations

from typing import Any

from services.inside import common, fields
from services.models.adapters import shown_name

# Layer kinds, in the order the summary lists them, with the words the UI shows.
GROUPS = {
    "embeddings": "Embeddings: the token table (and position tables) that turn ids into vectors",
    "attention": "Attention: queries, keys, values and the output projection of each block",
    "mlp": "MLP (feed-forward): the per-token network of each block",
    "norms": "Norms: the rescaling (LayerNorm / RMSNorm) around each block",
    "head": "Head: what turns the last hidden states into the answer (next-token scores, labels, a pooled vector)",
    "adapter": "Adapter (LoRA): the small matrices trained on top of the frozen base",
    "other": "Other weights",
}
_HEAD_PARTS = {
    "lm_head",
    "cls",
    "classifier",
    "qa_outputs",
    "score",
    "pooler",
    "pre_classifier",
    "vocab_transform",
    "vocab_projector",
    "vocab_layer_norm",
    "predictions",
}
_ATTENTION_PARTS = {
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "query",
    "key",
    "value",
    "c_attn",
    "qkv",
    "q",
    "k",
    "v",
    "o",
    "out_proj",
    "qkv_proj",
    "wqkv",
    "query_key_value",
}
_MLP_MARKS = (
    "mlp",
    "ffn",
    "intermediate",
    "densereludense",
    "feed_forward",
    "fc1",
    "fc2",
    "c_fc",
    "gate_proj",
    "up_proj",
    "down_proj",
    "experts",
    "output",
)


def _is_adapter_weight(name: str) -> bool:
    return "lora_" in name or ".modules_to_save." in name


def kind_of(name: str, module: Any) -> str:
    """The layer kind a parameter belongs to, from its full name and the module holding it."""
    import torch

    if _is_adapter_weight(name):
        return "adapter"
    parts = [p.lower() for p in name.split(".")[:-1]]
    if _HEAD_PARTS & set(parts):
        return "head"
    if "norm" in type(module).__name__.lower() or any("norm" in p or p.startswith("ln_") for p in parts):
        return "norms"
    if isinstance(module, torch.nn.Embedding) or any("embed" in p or p in ("wte", "wpe", "shared") for p in parts):
        return "embeddings"
    if any("attn" in p or "attention" in p for p in parts) or _ATTENTION_PARTS & set(parts):
        return "attention"
    if any(mark in p for p in parts for mark in _MLP_MARKS):
        return "mlp"
    return "other"


def _blocks(model: Any, sizes: dict[int, int]) -> dict | None:
    """The stack of repeated transformer blocks (the longest ModuleList of one class) and the size of one."""
    import torch

    best = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) > 0:
            kinds = {type(child).__name__ for child in module}
            if len(kinds) == 1 and (best is None or len(module) > len(best[1])):
                best = (name, module)
    if best is None:
        return None
    name, stack = best
    each = sum(sizes[id(p)] for p in stack[0].parameters())
    return {
        "name": name,
        "type": type(stack[0]).__name__,
        "count": len(stack),
        "parameters_each": each,
        "parameters": sum(sizes[id(p)] for p in stack.parameters()),
    }


def _tied(model: Any) -> bool:
    try:
        inputs, outputs = model.get_input_embeddings(), model.get_output_embeddings()
    except (AttributeError, NotImplementedError):
        return False
    return inputs is not None and outputs is not None and outputs.weight is inputs.weight


def tally(model: Any, adapter: bool = False) -> tuple[dict[int, int], set[int], list[dict]]:
    """Each parameter's size (by tensor id, tied ones once), the ids of the trainable ones, and the summary per
    layer kind: [{"group", "label", "parameters", "trainable", "share"}] (kinds with no weights left out)."""
    modules = dict(model.named_modules())
    sizes: dict[int, int] = {}
    trainable: set[int] = set()
    group_sizes = dict.fromkeys(GROUPS, 0)
    group_trainable = dict.fromkeys(GROUPS, 0)
    for name, param in model.named_parameters():  # each tensor once, under the first name torch gives it
        sizes[id(param)] = param.numel()
        is_trainable = _is_adapter_weight(name) if adapter else bool(param.requires_grad)
        if is_trainable:
            trainable.add(id(param))
        group = kind_of(name, modules.get(name.rpartition(".")[0], model))
        group_sizes[group] += param.numel()
        group_trainable[group] += param.numel() if is_trainable else 0
    total = sum(sizes.values())
    groups = [
        {
            "group": key,
            "label": label,
            "parameters": group_sizes[key],
            "trainable": group_trainable[key],
            "share": group_sizes[key] / total if total else 0.0,
        }
        for key, label in GROUPS.items()
        if group_sizes[key]
    ]
    return sizes, trainable, groups


def inspect_loaded(loaded: Any, model_id: str, adapter: bool = False) -> dict:
    """`inspect_model` on a model already loaded (the CLI and the tests hand one over)."""
    model = loaded.model
    sizes, trainable, groups = tally(model, adapter)
    rows = []
    for name, module in model.named_modules():
        params = list(module.parameters())
        rows.append(
            {
                "name": name,
                "type": type(module).__name__,
                "parameters": sum(sizes[id(p)] for p in params),
                "trainable": sum(sizes[id(p)] for p in params if id(p) in trainable),
            }
        )
    total = rows[0]["parameters"] if rows else 0
    notes = []
    if _tied(model):
        notes.append(
            "The output head reuses the embedding table (tied weights): those parameters are counted once, "
            "under Embeddings."
        )
    if adapter:
        notes.append(
            "This is a LoRA adapter on its base model: only the adapter's weights are trainable; the base "
            "stays frozen."
        )
    config = model.config
    trainable_total = rows[0]["trainable"] if rows else 0
    return {
        "model": model_id,
        "total_parameters": total,
        "modules": rows,
        "config": common.plain_config(config),
        "architecture": type(model).__name__,
        "task": loaded.task,
        "trainable_parameters": trainable_total,
        "groups": groups,
        "blocks": _blocks(model, sizes),
        "fields": fields.explain(config),
        "memory": common.memory(total),
        "notes": notes,
        # Each module's own weights and their shapes ({"weight": [576, 576]}), for the modules that hold any.
        "shapes": {
            name: {key: list(p.shape) for key, p in module.named_parameters(recurse=False)}
            for name, module in model.named_modules()
            if next(module.parameters(recurse=False), None) is not None
        },
    }


def inspect_model(model_id: str, owner: str | None = None) -> dict:
    """What a model is made of.

    Returns {"model": id, "total_parameters": int,
    "modules": [{"name": "" for the root or "model.layers.0.self_attn", "type": class name, "parameters": int,
    "trainable": int}, ...] (every `named_modules()` entry, in that order),
    "config": the config as JSON (private keys left out)}, and also "architecture", "task" (the head it was
    loaded with), "trainable_parameters", "groups" ([{"group", "label", "parameters", "trainable", "share"}]),
    "blocks" ({"name", "type", "count", "parameters_each", "parameters"} or None), "fields" (`fields.explain`),
    "memory" ({"fp32" | "bf16" | "int8" | "4-bit": {"bytes", "human"}}), "notes" (sentences), "shapes" ({module
    name: {parameter name: shape}} for the modules that hold weights of their own), "adapter" and
    "base" (the base model's id for an adapter, else None). Every string is plain text, never HTML.
    """
    loaded, resolved = common.load_model(model_id, owner)
    adapter = resolved.source == "adapter"
    result = inspect_loaded(loaded, shown_name(resolved.id), adapter=adapter)
    result["adapter"] = adapter
    result["base"] = shown_name(resolved.base.id) if resolved.base is not None else None
    return result
