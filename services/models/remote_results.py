"""Models an owner trained on Hugging Face Jobs: their Hub ids, listed in the owner's catalog as Hub models.

The run pushed the model to the owner's (usually private) repo; when it ended the app downloaded a copy into the
owner's own folder (`PLAYGROUND_HOME/remote-models/<owner>/<namespace>--<name>/`, never the shared HF cache, so no
other visitor can load it by naming the repo), which `catalog.resolve` uses for that owner. The list is one small
JSON file beside the copies.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.core.config import get_settings
from services.core.owners import owner_dir
from services.models.entries import ModelEntry

MAX_ENTRIES = 200


def _base(owner: str) -> Path:
    return owner_dir(get_settings().home / "remote-models", owner)


def _path(owner: str) -> Path:
    return _base(owner) / "models.json"


def local_dir(owner: str, repo_id: str) -> Path:
    """Where the owner's copy of a model they trained on Hugging Face Jobs goes."""
    return _base(owner) / repo_id.replace("/", "--")


def folder(owner: str | None, repo_id: str) -> Path | None:
    """The owner's copy of `repo_id`, when it is one of their models trained on Hugging Face Jobs."""
    if not owner or "/" not in repo_id or not any(r["id"] == repo_id for r in _rows(owner)):
        return None
    found = local_dir(owner, repo_id)
    return found if (found / "config.json").is_file() or (found / "adapter_config.json").is_file() else None


def remember(owner: str, repo_id: str, tasks: tuple[str, ...] | list[str], description: str) -> None:
    path = _path(owner)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r for r in _rows(owner) if r["id"] != repo_id]
    rows.insert(0, {"id": repo_id, "tasks": list(tasks), "description": description})
    path.write_text(json.dumps(rows[:MAX_ENTRIES], indent=1), encoding="utf-8")


def _rows(owner: str) -> list[dict]:
    try:
        rows = json.loads(_path(owner).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [r for r in rows if isinstance(r, dict) and isinstance(r.get("id"), str)]


def entries(owner: str | None) -> list[ModelEntry]:
    """The owner's models trained on Hugging Face Jobs (none for no owner)."""
    if not owner:
        return []
    found = []
    for row in _rows(owner):
        available = folder(owner, row["id"]) is not None
        found.append(ModelEntry(row["id"], tuple(row.get("tasks") or ()), "hub", available,
                                str(row.get("description") or ""),
                                "" if available else "its copy on this machine is gone"))  # fmt: skip
    return found
