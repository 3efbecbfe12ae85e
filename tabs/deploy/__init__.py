"""Deploy tab: the REST API, its snippets, and the model exported as a server or to ONNX."""

from __future__ import annotations

from pathlib import Path

from services.core.config import get_settings
from services.core.owners import owner_dir, safe_name


def model_folder(area: str, owner: str, model_id: str) -> Path:
    """The visitor's own folder for what they made of one model (`area`: bundles); its parent is named by
    a keyed hash of their owner id, so no visitor can reach another's."""
    name = safe_name((model_id or "").replace("/", "--").replace(":", "-"), fallback="model")
    return owner_dir(get_settings().home / area, owner) / name
