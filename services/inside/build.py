"""Build your own: a model's config with a few numbers changed, its size known before anything is allocated, then
created with random weights as one of the visitor's trained models (``trained:<name>``).

`estimate` builds the changed model on torch's ``meta`` device (shapes, no memory) and counts its parameters, so a
visitor can try a 10-billion-parameter idea for free; `create` only builds models under `MAX_PARAMETERS`. The new
folder holds what the catalog and the loader need (config.json, model.safetensors, the tokenizer), a README card
and `playground-built.json` (where it came from), and `create` hands back a Fine-tune config that trains it from
scratch on the bundled stories.
"""

from __future__ import annotations

import copy
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.core.limits import LimitExceeded
from services.core.owners import safe_name
from services.inside import anatomy, common, fields
from services.models import catalog, packs
from services.models.adapters import shown_name

MAX_PARAMETERS = 200_000_000  # models built here (about 800 MB of weights in fp32)
# field: (smallest, largest) a visitor may ask for.
BOUNDS = {
    "num_hidden_layers": (1, 48),
    "num_attention_heads": (1, 64),
    "num_key_value_heads": (1, 64),
    "hidden_size": (8, 4096),
    "intermediate_size": (8, 16384),
    "vocab_size": (16, 262_144),
    "max_position_embeddings": (16, 32_768),
}
RECORD = "playground-built.json"
MAX_BUILT = 10  # models one visitor may build here (random weights, up to MAX_PARAMETERS each)
FINETUNE_DATASET = "samples/stories"


def _source_config(model_id: str, owner: str | None) -> tuple[Any, catalog.ResolvedModel]:
    """The model's config, read from its files without loading any weights (an adapter: its base's)."""
    from transformers import AutoConfig

    resolved = catalog.resolve(model_id, owner)
    base = resolved.base or resolved
    location = str(packs.ensure_ready(base.id)) if base.source == "packaged" else base.location
    settings = get_settings()
    try:
        config = AutoConfig.from_pretrained(
            location, local_files_only=settings.offline or base.is_local, token=False if settings.on_space else None
        )
    except Exception as err:  # a folder or repo without a readable config
        raise PlaygroundError(f"The configuration of '{shown_name(resolved.id)}' cannot be read.") from err
    return config, resolved


def _editable(config: Any) -> dict[str, int]:
    values = {name: fields.value_of(config, name) for name in fields.EDITABLE}
    return {name: value for name, value in values.items() if isinstance(value, int) and not isinstance(value, bool)}


def config_for(model_id: str, owner: str | None = None) -> dict:
    """The fields "Build your own" may change for this model.

    Returns {"model", "model_type", "architecture", "fields": {name: int} (only those the architecture has),
    "attributes": {name: the config's own attribute, e.g. "n_layer"}, "explanations": [fields.explain rows of
    those fields], "bounds": {name: [min, max]}, "max_parameters", "total_parameters", "memory"}.
    """
    config, resolved = _source_config(model_id, owner)
    editable = _editable(config)
    counted = _count(config)
    return {
        "model": shown_name(resolved.id),
        "model_type": getattr(config, "model_type", ""),
        "architecture": _model_class(config).__name__,
        "fields": editable,
        "attributes": {name: fields.attribute(config, name) for name in editable},
        "explanations": [row for row in fields.explain(config) if row["name"] in editable],
        "bounds": {name: list(BOUNDS[name]) for name in editable},
        "max_parameters": MAX_PARAMETERS,
        "total_parameters": counted[0],
        "memory": common.memory(counted[0]),
    }


def _whole(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PlaygroundError(f"{name} must be a whole number, not {str(value)[:40]!r}.")
    try:
        number = float(value)
    except ValueError as err:
        raise PlaygroundError(f"{name} must be a whole number, not {str(value)[:40]!r}.") from err
    if not number.is_integer():
        raise PlaygroundError(f"{name} must be a whole number, not {value}.")
    number = int(number)
    low, high = BOUNDS[name]
    if number <= 0:
        raise PlaygroundError(f"{name} must be more than 0 (it counts {_UNITS[name]}); {number:,} cannot work.")
    if not low <= number <= high:
        raise LimitExceeded(f"{name} must be between {low:,} and {high:,} here; {number:,} was asked.")
    return number


_UNITS = {
    "num_hidden_layers": "blocks",
    "num_attention_heads": "heads",
    "num_key_value_heads": "key/value heads",
    "hidden_size": "numbers per token",
    "intermediate_size": "numbers per token in the MLP",
    "vocab_size": "tokens",
    "max_position_embeddings": "positions",
}


def _divisors_near(total: int, near: int) -> str:
    found = sorted((d for d in range(1, min(total, 256) + 1) if total % d == 0), key=lambda d: (abs(d - near), d))
    return " or ".join(str(d) for d in sorted(found[:2]))


def apply_changes(config: Any, changes: dict | None) -> tuple[Any, dict[str, int]]:
    """A copy of `config` with the changes applied and checked: (new config, the changes as whole numbers).
    A change that cannot work is a `PlaygroundError` sentence that says why and what would."""
    if changes is None:
        changes = {}
    if not isinstance(changes, dict):
        raise PlaygroundError("The changes are a mapping of field names to numbers, such as {'num_hidden_layers': 4}.")
    editable = _editable(config)
    clean: dict[str, int] = {}
    for name, value in changes.items():
        if name not in fields.EDITABLE:
            raise PlaygroundError(
                f"'{str(name)[:60]}' cannot be changed here; these can: {', '.join(fields.EDITABLE)}."
            )
        if name not in editable:
            raise PlaygroundError(f"A {getattr(config, 'model_type', 'model')} model has no {name} setting to change.")
        clean[name] = _whole(name, value)
    new = copy.deepcopy(config)
    before = {name: fields.value_of(config, name) for name in ("hidden_size", "num_attention_heads")}
    for name, value in clean.items():
        setattr(new, fields.attribute(config, name), value)
    values = {**editable, **clean}
    hidden, heads = values.get("hidden_size"), values.get("num_attention_heads")
    if hidden and heads and hidden % heads:
        raise PlaygroundError(
            f"hidden_size ({hidden:,}) must be a multiple of num_attention_heads ({heads:,}): each head gets an "
            f"equal share of every token's numbers. Try {_divisors_near(hidden, heads)} heads, or another hidden_size."
        )
    kv = values.get("num_key_value_heads")
    if kv and heads and (kv > heads or heads % kv):
        raise PlaygroundError(
            f"num_attention_heads ({heads:,}) must be a multiple of num_key_value_heads ({kv:,}): the heads share "
            f"their keys and values in equal groups. Try {_divisors_near(heads, kv)} key/value heads."
        )
    head_dim = vars(new).get("head_dim")
    derived = isinstance(head_dim, int) and before["hidden_size"] == head_dim * (before["num_attention_heads"] or 0)
    if derived and hidden and heads:  # head_dim was hidden / heads: it follows them (an explicit one stays)
        new.head_dim = hidden // heads
    layer_types = vars(new).get("layer_types")
    layers = values.get("num_hidden_layers")
    if isinstance(layer_types, list) and layer_types and layers and len(layer_types) != layers:
        new.layer_types = [layer_types[i % len(layer_types)] for i in range(layers)]  # the same pattern, repeated
    vocab = values.get("vocab_size")
    for key in ("pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id", "decoder_start_token_id"):
        token = getattr(new, key, None)
        if vocab and isinstance(token, int) and token >= vocab:  # an id with no row in the smaller table
            setattr(new, key, None)
    return new, clean


def _model_class(config: Any) -> Any:
    import transformers

    for name in getattr(config, "architectures", None) or []:
        cls = getattr(transformers, name, None)
        if cls is not None:
            return cls
    try:
        return transformers.AutoModel._model_mapping[type(config)]
    except KeyError as err:
        raise PlaygroundError(f"transformers has no model class for a '{config.model_type}' config here.") from err


def _count(config: Any) -> tuple[int, list[dict]]:
    """(parameters, the summary per layer kind) of a model built from `config` on the meta device: no memory."""
    import torch

    try:
        with torch.device("meta"):
            model = _model_class(config)(config)
    except Exception as err:
        first = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise PlaygroundError(f"These settings do not make a working {config.model_type} model: {first}") from err
    sizes, _, groups = anatomy.tally(model)
    return sum(sizes.values()), groups


def _tokenizer(tokenizer: str, owner: str | None) -> Any:
    from services.tokenizers.loading import load_tokenizer

    return load_tokenizer(tokenizer, owner)


def estimate(
    model_id: str, changes: dict | None = None, owner: str | None = None, tokenizer: str | None = None
) -> dict:
    """The size of `model_id` with `changes` (and, with `tokenizer` such as ``tokenizer:<name>``, that tokenizer's
    vocabulary), computed without allocating the model.

    Returns {"model", "architecture", "changes": {name: int}, "fields": {name: int} (after the changes),
    "total_parameters", "parameters_before", "memory": {"fp32" | "bf16" | "int8" | "4-bit": {"bytes", "human"}},
    "groups": [{"group", "label", "parameters", "trainable", "share"}], "tokenizer": id or None, "warnings":
    [sentences]}. Changes that cannot work, and models over `MAX_PARAMETERS`, raise a `PlaygroundError` sentence.
    """
    return _estimate(model_id, changes, owner, tokenizer)[0]


def _estimate(model_id: str, changes: dict | None, owner: str | None, tokenizer: str | None) -> tuple[dict, Any]:
    """`estimate`, and the changed config itself (for `create`)."""
    config, resolved = _source_config(model_id, owner)
    if changes is not None and not isinstance(changes, dict):
        apply_changes(config, changes)  # the sentence for changes that are not a mapping
    changes = dict(changes or {})
    warnings: list[str] = []
    if tokenizer:
        size = len(_tokenizer(tokenizer, owner).hf)
        if "vocab_size" in changes and str(changes["vocab_size"]).strip() != str(size):
            warnings.append(f"vocab_size follows the tokenizer {shown_name(tokenizer)}: {size:,} tokens.")
        changes["vocab_size"] = size
    new, clean = apply_changes(config, changes)
    total, groups = _count(new)
    before = _count(config)[0] if clean else total
    if not tokenizer and "vocab_size" in clean:
        size = len(_tokenizer(model_id, owner).hf)
        if clean["vocab_size"] < size:
            warnings.append(
                f"vocab_size {clean['vocab_size']:,} is smaller than the tokenizer's {size:,} tokens: ids past the "
                "table would have no embedding. A model can only be created with a tokenizer that fits."
            )
    if total > MAX_PARAMETERS:
        raise LimitExceeded(
            f"That model would have {total:,} parameters ({common.human_bytes(total * 4)} in fp32); models built "
            f"here are capped at {MAX_PARAMETERS:,} ({common.human_bytes(MAX_PARAMETERS * 4)}). Use fewer layers or "
            "a smaller hidden_size."
        )
    result = {
        "model": shown_name(resolved.id),
        "architecture": _model_class(new).__name__,
        "changes": clean,
        "fields": _editable(new),
        "total_parameters": total,
        "parameters_before": before,
        "memory": common.memory(total),
        "groups": groups,
        "tokenizer": tokenizer or None,
        "warnings": warnings,
    }
    return result, new


def finetune_config(name: str, config: Any | None = None) -> dict:
    """A Fine-tune config (`services.training.config.TrainConfig` as a dict) that trains ``trained:<name>`` from
    scratch as a causal LM on the bundled stories; its output is the model ``<name>-stories``."""
    positions = fields.value_of(config, "max_position_embeddings") if config is not None else None
    length = max(16, min(128, positions)) if isinstance(positions, int) else 128
    return {
        "task": "causal-lm",
        "model": f"{catalog.TRAINED_PREFIX}{name}",
        "dataset": {"source": FINETUNE_DATASET, "text_column": "text", "eval_split": 0.2},
        "max_length": length,
        # From random weights a model needs a larger step than fine-tuning a trained one (5e-5 there).
        "training": {
            "num_train_epochs": 3,
            "learning_rate": 1e-3,
            "per_device_train_batch_size": 8,
            "weight_decay": 0.01,
            "seed": 42,
        },
        "early_stopping_patience": 2,
        "output_dir": f"trained/{name}-stories",
    }


def _check_name(name: str) -> str:
    clean = safe_name(name or "", "")
    if not clean or clean != (name or "").strip():
        raise PlaygroundError("Name the model with letters, digits, '-', '_' or '.' (for example tiny-llama).")
    return clean


def _card(name: str, source: str, changes: dict, result: dict, tokenizer: str | None) -> str:
    changed = ", ".join(f"{key} = {value:,}" for key, value in changes.items()) or "no changes"
    return (
        f"# {name}\n\n"
        f"A {result['architecture']} with **random weights**, built in HF Playground (Inside a model, Build your "
        f"own) from the config of `{source}` with {changed}"
        + (f", and the tokenizer `{tokenizer}`" if tokenizer else "")
        + f".\n\n{result['total_parameters']:,} parameters ({result['memory']['fp32']['human']} in fp32). It has "
        "not been trained: its outputs are noise until it is (Fine-tune tab, task causal-lm).\n"
    )


def create(
    model_id: str, changes: dict | None, name: str, owner: str | None, tokenizer: str | None = None, seed: int = 0
) -> dict:
    """Create the changed model with random weights as ``trained:<name>`` (never over an existing model).

    Returns the `estimate` dict plus {"id": "trained:<name>", "name", "files": [file names], "finetune_config":
    `finetune_config` (None unless the model generates text), "notice": a sentence}.
    """
    import torch

    if not owner:
        raise PlaygroundError("Models you build are kept in your own space: sign in or open the app in a browser.")
    clean = _check_name(name)
    folder = catalog.trained_root(owner) / clean
    taken = f"You already have a model called '{clean}': pick another name (nothing was overwritten)."
    if folder.exists() and any(folder.iterdir()):
        raise PlaygroundError(taken)
    root = catalog.trained_root(owner)
    built = sum(1 for f in root.iterdir() if (f / RECORD).is_file()) if root.is_dir() else 0
    if built >= MAX_BUILT:  # each may be hundreds of MB on the Space's disk, and they are never cleared
        raise LimitExceeded(f"You have built {built} models here, the most one visitor may keep ({MAX_BUILT}): "
                            "train or look inside those.")  # fmt: skip
    result, config = _estimate(model_id, changes, owner, tokenizer)
    words = _tokenizer(tokenizer or model_id, owner)
    if config.vocab_size < len(words.hf):
        raise PlaygroundError(
            f"vocab_size {config.vocab_size:,} is smaller than the tokenizer's {len(words.hf):,} tokens: pick a "
            "vocab_size at least that big, or a smaller tokenizer."
        )
    if tokenizer:  # the new tokenizer's own special tokens, so generation stops where it should
        for key in ("pad_token_id", "bos_token_id", "eos_token_id", "unk_token_id"):
            setattr(config, key, getattr(words.hf, key, None))
    cls = _model_class(config)
    config.architectures = [cls.__name__]
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside PLAYGROUND_HOME's other folders (the same disk, so the final rename is atomic), never among
    # the trained models, where the catalog would list it half-written.
    staging_root = get_settings().home / "building"
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f"{clean}-", dir=staging_root))
    try:
        torch.manual_seed(int(seed))
        model = cls(config)
        model.save_pretrained(staging)
        with words.lock:
            words.hf.save_pretrained(staging)
        record = {
            "source": result["model"],
            "changes": result["changes"],
            "tokenizer": tokenizer,
            "parameters": result["total_parameters"],
            "seed": int(seed),
            "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        (staging / RECORD).write_text(json.dumps(record, indent=2), encoding="utf-8")
        (staging / "README.md").write_text(_card(clean, result["model"], result["changes"], result, tokenizer))
        del model
        try:
            staging.rename(folder)  # all at once: the catalog never lists a half-written model
        except OSError as err:  # another create of that name won the race
            raise PlaygroundError(taken) from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    generates = "text-generation" in catalog.tasks_for_config({"architectures": [cls.__name__]})
    notice = f"Created trained:{clean} with {result['total_parameters']:,} random weights." + (
        " Train it from scratch on the bundled stories with the Fine-tune config below." if generates else ""
    )
    return {
        **result,
        "id": f"{catalog.TRAINED_PREFIX}{clean}",
        "name": clean,
        "files": sorted(p.name for p in Path(folder).iterdir()),
        "finetune_config": finetune_config(clean, config) if generates else None,
        "notice": notice,
    }
