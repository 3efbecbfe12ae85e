"""Merge a LoRA adapter into its base and save a full model, checked against the adapter and the base.

`merge(adapter_dir, output_dir)` loads the base in float32 (an adapter trained on a quantized base merges into the
float weights), puts the adapter on it, and checks, on a few probe texts, the three things users of other trainers
find broken after the fact:

(a) the adapter as saved gives the same logits as the adapter in memory (the one a trainer hands over, or the
    loaded one saved once more and loaded back): nothing of it was lost on disk;
(b) the merged model, saved and loaded back, gives the adapter's logits (max |Δlogit| within a tolerance), and
(c) it does not give the base's: "the merged model behaves like the base" is refused with a sentence.

The figures come back as a dict (`python -m services lora merge ADAPTER_DIR --output DIR` prints them as JSON).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.core.errors import PlaygroundError
from services.models import adapters, packs
from services.models.catalog import resolve
from services.models.entries import ResolvedModel

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
PROBES = (
    "Hello! What can you tell me about Paris?",
    "The movie was very good and I love it.",
    "Write one sentence about the river in the city.",
)


class MergeError(PlaygroundError):
    """The merge failed one of its checks; nothing was saved."""


def merge(
    adapter_dir: str | Path,
    output_dir: str | Path,
    *,
    owner: str | None = None,
    trained: Any = None,
    probes: tuple[str, ...] = PROBES,
    progress: Progress | None = None,
) -> dict:
    """Merge the adapter at `adapter_dir` (a folder or ``trained:<name>``) into its base, save the full model and
    tokenizer in `output_dir` (which must be new or empty), and return the checks' figures.

    `trained`: the PeftModel a training run still holds; check (a) then compares the saved adapter with it."""
    progress = progress or (lambda f, m: None)
    resolved = resolve(str(adapter_dir), owner)
    if resolved.source != "adapter" or resolved.base is None:
        raise MergeError(
            f"'{adapters.shown_name(str(adapter_dir))}' is not a PEFT adapter: there is nothing to merge."
        )
    out = Path(output_dir).expanduser().resolve()
    if out == Path(resolved.location).resolve() or (out.exists() and any(out.iterdir())):
        raise MergeError(f"The folder '{out.name}' already holds files: give the merged model a new, empty folder.")
    task = resolved.tasks[0] if resolved.tasks else "feature-extraction"
    try:
        return _merge(resolved, task, out, trained, probes, progress)
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and "out of memory" not in str(err).lower():
            raise
        raise MergeError(
            f"Merging needs the base model {adapters.shown_name(resolved.base.id)} in full precision, and it does not "
            "fit in the memory free now: close other work (or unload models) and try again, or merge on a bigger "
            "machine."
        ) from err


def _merge(resolved: ResolvedModel, task: str, out: Path, trained: Any, probes, progress: Progress) -> dict:
    import torch

    progress(0.05, f"Loading the base model {adapters.shown_name(resolved.base.id)} in float32")
    base_model, tokenizer, auto_class = _load_base(resolved, task)
    progress(0.35, "Putting the adapter on it")
    _, peft_model = adapters.attach(base_model, resolved)
    inputs = _probe_inputs(tokenizer, probes)
    with torch.no_grad():
        adapter_logits = _logits(peft_model, inputs)
        with peft_model.disable_adapter():
            base_logits = _logits(peft_model, inputs)
        progress(0.5, "Checking the saved adapter against the one in memory")
        memory_logits = _logits(trained, inputs) if trained is not None else _resaved_logits(peft_model, inputs)
    tolerance = 1e-3 * max(1.0, float(adapter_logits.abs().max()))
    reload_diff = _max_diff(memory_logits, adapter_logits)
    if reload_diff > tolerance:
        raise MergeError(
            f"The adapter saved on disk does not answer like the one in memory (max |Δlogit| {reload_diff:.4g}): "
            "part of it was not saved (a classifier head left out of modules_to_save?). Save it again."
        )
    progress(0.6, "Merging the adapter into the base weights")
    merged = peft_model.merge_and_unload()
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    del merged, peft_model, base_model
    progress(0.8, "Loading the merged model back to check it")
    reloaded = auto_class.from_pretrained(tmp, dtype=torch.float32, use_safetensors=True)
    reloaded.eval()
    with torch.no_grad():
        merged_logits = _logits(reloaded, inputs)
    vs_adapter, vs_base = _max_diff(merged_logits, adapter_logits), _max_diff(merged_logits, base_logits)
    adapter_effect = _max_diff(adapter_logits, base_logits)
    problem = None
    if vs_adapter > tolerance:
        problem = (f"The merged model does not answer like the adapter (max |Δlogit| {vs_adapter:.4g}, allowed "
                   f"{tolerance:.2g}): the merge went wrong; the adapter itself is unchanged.")  # fmt: skip
    elif vs_base <= tolerance:
        problem = (f"The merged model behaves like the base (max |Δlogit| {vs_base:.2g} from it): the adapter "
                   "changes nothing. Its LoRA weights are zero: was it trained and then saved?")  # fmt: skip
    if problem:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MergeError(problem)
    shutil.rmtree(out, ignore_errors=True)  # empty, checked above
    tmp.rename(out)
    progress(1.0, "Merged and checked")
    result = {
        "output_dir": str(out),
        "base_model": resolved.base.id,
        "task": task,
        "probes": len(probes),
        "tolerance": tolerance,
        "reloaded_vs_memory_max_abs_logit_diff": reload_diff,
        "merged_vs_adapter_max_abs_logit_diff": vs_adapter,
        "merged_vs_base_max_abs_logit_diff": vs_base,
        "adapter_vs_base_max_abs_logit_diff": adapter_effect,
        "parameters": sum(p.numel() for p in reloaded.parameters()),
        "size_mb": round(sum(f.stat().st_size for f in out.iterdir() if f.suffix == ".safetensors") / 2**20, 2),
    }
    logger.info("Merged %s into %s: %s", resolved.id, out, result)
    return result


def _load_base(resolved: ResolvedModel, task: str) -> tuple[Any, Any, Any]:
    """A fresh float32 copy of the adapter's base with the adapter's head, its tokenizer, and its Auto class."""
    import torch
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from services.core.config import get_settings
    from services.models.loading import auto_class_name

    base = resolved.base
    settings = get_settings()
    location = str(packs.ensure_ready(base.id)) if base.source == "packaged" else base.location
    common = {"local_files_only": settings.offline or base.is_local, "token": False if settings.on_space else None}
    config = AutoConfig.from_pretrained(location, **common)
    if getattr(config, "quantization_config", None) is not None:  # merge into float weights, never quantized ones
        del config.quantization_config
    auto_class = getattr(transformers, adapters.prepare_base(resolved, task, config) or auto_class_name(task, config))
    model = auto_class.from_pretrained(location, config=config, dtype=torch.float32, use_safetensors=True, **common)
    tokenizer = AutoTokenizer.from_pretrained(adapters.tokenizer_location(resolved, location), **common)
    return model.eval(), tokenizer, auto_class


def _probe_inputs(tokenizer: Any, probes: tuple[str, ...]) -> dict:
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return dict(tokenizer(list(probes), return_tensors="pt", padding=True, truncation=True, max_length=64))


def _logits(model: Any, inputs: dict):
    device = next(model.parameters()).device
    out = model(**{k: v.to(device) for k, v in inputs.items()})
    logits = getattr(out, "logits", None)
    if logits is None:  # an encoder without a head: its hidden states
        logits = out.last_hidden_state
    mask = inputs["attention_mask"].to(logits.device)
    return (logits.float() * (mask[..., None] if logits.dim() == 3 else 1)).cpu()


def _resaved_logits(peft_model: Any, inputs: dict):
    """The logits of the adapter saved once more and loaded back beside the first (on the same base weights)."""
    with tempfile.TemporaryDirectory(prefix="adapter-") as folder:
        peft_model.save_pretrained(folder)
        peft_model.load_adapter(folder, adapter_name="reloaded")
    peft_model.set_adapter("reloaded")
    try:
        return _logits(peft_model, inputs)
    finally:
        peft_model.set_adapter("default")
        peft_model.delete_adapter("reloaded")


def _max_diff(a, b) -> float:
    return float((a - b).abs().max())
