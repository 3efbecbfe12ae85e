"""Uploads copied into the owner's own folder before a job reads them: type and size checked, names cleaned.

Each job gets a fresh folder under ``PLAYGROUND_HOME/uploads/<owner>/<purpose>-<id>/``; two files whose cleaned names
collide both stay (``name-2``). Callers say which suffixes they read, how to name the copy and what else to check.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from services.config import get_settings
from services.errors import PlaygroundError
from services.owners import owner_dir, safe_name


def stage(
    paths: list[str],
    owner: str,
    purpose: str,
    suffixes: tuple[str, ...],
    kind: str,
    *,
    check: Callable[[Path], None] | None = None,
    name: Callable[[str], str] = lambda stem: safe_name(stem, "upload"),
    error: type[PlaygroundError] = PlaygroundError,
) -> list[str]:
    """Copies of `paths` in a new folder of the owner's; `kind` ends the refusal ("not <kind>.")."""
    settings = get_settings()
    dest = owner_dir(settings.home / "uploads", owner) / f"{purpose}-{uuid.uuid4().hex[:8]}"
    staged = []
    for raw in paths:
        path = Path(raw)
        suffix = path.suffix.lower()
        if suffix not in suffixes:
            raise error(f"'{path.name}' is not {kind}.")
        size = path.stat().st_size
        if size > settings.max_upload_bytes:
            raise error(
                f"'{path.name}' is {size / 2**20:.1f} MB; files up to {settings.max_upload_bytes / 2**20:.1f} MB "
                "are accepted here."
            )
        if size == 0:
            raise error(f"'{path.name}' is empty.")
        if check is not None:
            check(path)
        dest.mkdir(parents=True, exist_ok=True)
        target, counter = dest / (name(path.stem) + suffix), 2
        while target.exists():
            target, counter = dest / f"{name(path.stem)}-{counter}{suffix}", counter + 1
        shutil.copyfile(path, target)
        staged.append(str(target))
    return staged
