"""Who owns what: owner ids, their folders, and safe file names.

An owner is a string such as ``hf:alice`` (signed in on a Space), ``anon:<hash>`` (a browser's cookie) or
``cli:<user>`` (the command line). Folders use a hash of it, so an owner id never becomes a path and
one visitor cannot name another's folder.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def owner_key(owner: str) -> str:
    """A short, stable, filesystem-safe key for an owner id."""
    if not owner:
        raise ValueError("owner must be a non-empty string")
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:20]


def owner_dir(base: Path, owner: str) -> Path:
    """The owner's own folder under `base` (not created)."""
    return base / owner_key(owner)


def safe_name(name: str, fallback: str = "item", max_len: int = 80) -> str:
    """A file or folder name with no path parts, no leading dots and only portable characters."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = name.replace("/", "_").replace("\\", "_")
    name = _UNSAFE.sub("-", name).strip(".-_ ")
    return name[:max_len] or fallback
