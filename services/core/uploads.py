"""Uploads copied into the owner's own folder before a job reads them: type and size checked, names cleaned.

Each job gets a fresh folder under ``PLAYGROUND_HOME/uploads/<owner>/<purpose>-<id>/``; two files whose cleaned names
collide both stay (``name-2``). Callers say which suffixes they read, how to name the copy and what else to check.
Nothing under the playground's storage that belongs to another owner can be staged. `sweep()` removes staged
folders nobody needs any more (older than a day and read by no job still waiting or running).
"""

from __future__ import annotations

import logging
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import AccessDenied, PlaygroundError
from services.core.owners import owner_dir, safe_name

logger = logging.getLogger(__name__)

STAGED_MAX_AGE_S = 24 * 3600
NOT_YOURS = "'{name}' is not one of your uploads: send the file itself with the request (or upload it here)."


def uploads_root(owner: str) -> Path:
    """The owner's own upload folder (staged copies for jobs)."""
    return owner_dir(get_settings().home / "uploads", owner)


def check_not_others(path: Path, owner: str) -> None:
    """Refuse a path inside the playground's storage unless it is one of the owner's own staged uploads (one
    sentence whatever the reason, so that it tells nothing about what exists there)."""
    home = get_settings().home.resolve()
    real = Path(path).expanduser().resolve()
    if real.is_relative_to(home) and not real.is_relative_to(uploads_root(owner).resolve()):
        raise AccessDenied(NOT_YOURS.format(name=Path(path).name))


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
    dest = uploads_root(owner) / f"{purpose}-{uuid.uuid4().hex[:8]}"
    staged = []
    for raw in paths:
        path = Path(raw)
        check_not_others(path, owner)
        if not path.is_file():
            raise error(NOT_YOURS.format(name=path.name))
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


def staged_folder(path: str | Path, owner: str) -> Path | None:
    """The staging folder (``<purpose>-<id>``) a staged file of `owner` sits in, or None for any other path."""
    root = uploads_root(owner).resolve()
    real = Path(path).resolve()
    if not real.is_relative_to(root) or real == root:
        return None
    return root / real.relative_to(root).parts[0]


def discard(paths: Iterable[str | Path], owner: str) -> None:
    """Remove the staging folders of files a finished job no longer needs (only the owner's own)."""
    for folder in {staged_folder(p, owner) for p in paths} - {None}:
        shutil.rmtree(folder, ignore_errors=True)  # type: ignore[arg-type]


def sweep(in_use: Iterable[str] = (), max_age_s: float = STAGED_MAX_AGE_S) -> int:
    """Remove staged folders older than `max_age_s` that no waiting or running job reads (`in_use`: the paths
    those jobs name); returns how many went."""
    root = get_settings().home / "uploads"
    if not root.is_dir():
        return 0
    keep = {Path(p).resolve() for p in in_use}
    cutoff = time.time() - max_age_s
    removed = 0
    for folder in (f for owner in root.iterdir() if owner.is_dir() for f in owner.iterdir() if f.is_dir()):
        real = folder.resolve()
        if folder.stat().st_mtime > cutoff or any(p.is_relative_to(real) for p in keep):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed += 1
    if removed:
        logger.info("Removed %d staged upload folder(s) no job needs", removed)
    return removed
