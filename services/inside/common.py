"""What the Inside views share: which head a model is loaded with, the loaded model itself, and memory sizes.

The views look at the model the app already holds (`services.models.loading.load`, one copy for every visitor), so
the task picked here decides which cache entry they share: a causal LM as "text-generation", a masked LM as
"fill-mask", a model trained with another head with that head, anything else as a plain encoder.
"""

from __future__ import annotations

from typing import Any

from services.core.errors import PlaygroundError
from services.models import catalog, loading

# Bytes per weight in each precision a student meets (4-bit: two weights per byte; scales ignored).
PRECISIONS = (("fp32", 4.0), ("bf16", 2.0), ("int8", 1.0), ("4-bit", 0.5))
# Heads worth keeping when a model has them, best first; "feature-extraction" (no head) is the fallback.
_HEAD_TASKS = (
    "text-generation",
    "fill-mask",
    "text-classification",
    "token-classification",
    "question-answering",
    "summarization",
    "translation",
)


def pick_task(resolved: catalog.ResolvedModel) -> str:
    """The task the Inside views load `resolved` for (its own head where it has one)."""
    tasks = resolved.tasks or ()
    return next((task for task in _HEAD_TASKS if task in tasks), "feature-extraction")


def load_model(model_id: str, owner: str | None) -> tuple[loading.LoadedModel, catalog.ResolvedModel]:
    """The shared loaded model (and how its id resolved); a `PlaygroundError` sentence when it cannot be had."""
    resolved = catalog.resolve(model_id, owner)
    _check_inspectable(resolved, model_id)
    return loading.load(model_id, pick_task(resolved), owner=owner), resolved


def _check_inspectable(resolved: catalog.ResolvedModel, model_id: str) -> None:
    """A copy run by ONNX Runtime (an export, the fast CPU SmolLM2) has no PyTorch layers to open: a sentence naming
    the model it was made from, which has the same weights."""
    from pathlib import Path

    from services.models import fast_cpu, onnx_runtime

    source = None
    if resolved.source == fast_cpu.SOURCE:
        source = fast_cpu.BASE
    elif resolved.is_local and onnx_runtime.is_export(Path(resolved.location)):
        source = Path(str(onnx_runtime.report(Path(resolved.location)).get("source") or "its PyTorch model")).name
    if source:
        raise PlaygroundError(f"'{model_id}' runs in ONNX Runtime, which keeps no layers to look into: look inside "
                              f"{source} instead (the same weights, as PyTorch runs them).")  # fmt: skip


def human_bytes(size: float) -> str:
    """A size as people read it: 512 B, 3.4 KB, 513.6 MB, 1.2 GB (powers of 1024, as the app's cache view does)."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{int(size)} B"


def memory(parameters: int) -> dict[str, dict[str, Any]]:
    """The bytes `parameters` weights take in each precision: {"fp32": {"bytes", "human"}, "bf16": ..., ...}."""
    return {
        name: {"bytes": int(parameters * size), "human": human_bytes(parameters * size)} for name, size in PRECISIONS
    }


def plain_config(config: Any) -> dict:
    """The config as plain JSON values (dtypes and other objects as text), without its private keys:
    `_name_or_path` is the folder it was read from, a server path no visitor may see."""
    import json

    data = {key: value for key, value in config.to_dict().items() if not key.startswith("_")}
    return json.loads(json.dumps(data, default=str))
