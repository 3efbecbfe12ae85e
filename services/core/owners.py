"""Who owns what: owner ids, their folders, and safe file names.

An owner is a string such as ``hf:alice`` (signed in on a Space), ``anon:<hash>`` (a browser's cookie) or
``cli:<user>`` (the command line). Folders are named by a keyed hash of it (HMAC-SHA256 with a server secret), so
an owner id never becomes a path and nobody can compute another owner's folder from their user name. The secret
is ``PLAYGROUND_SECRET`` when set, else a random one kept in ``PLAYGROUND_HOME/.owner-secret`` (made on first
use, readable by the app's user only), shared by the app and its job processes. Folders named by the older,
unkeyed hash are renamed to the keyed name the first time their owner uses them.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SECRET_FILE = ".owner-secret"


@functools.cache
def _secret(home: str) -> bytes:
    configured = os.environ.get("PLAYGROUND_SECRET", "").strip()
    if configured:
        return configured.encode("utf-8")
    path = Path(home) / _SECRET_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    Path(home).mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32).encode("ascii")
    try:  # O_EXCL: two processes starting at once agree on the first secret written
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value


def _home() -> str:
    from services.core.config import get_settings

    return str(get_settings().home)


def owner_key(owner: str) -> str:
    """A short, stable, filesystem-safe key for an owner id, which only the server can compute."""
    if not owner:
        raise ValueError("owner must be a non-empty string")
    return hmac.new(_secret(_home()), owner.encode("utf-8"), hashlib.sha256).hexdigest()[:20]


def sign(purpose: str, value: str, length: int = 32) -> str:
    """A keyed digest of `value` for `purpose` (an API key's check part): only the server can make or check it."""
    message = f"{purpose}\0{value}".encode()
    return hmac.new(_secret(_home()), message, hashlib.sha256).hexdigest()[:length]


def legacy_key(owner: str) -> str:
    """The unkeyed name earlier versions gave an owner's folders (guessable from the owner id)."""
    return hashlib.sha256(owner.encode("utf-8")).hexdigest()[:20]


def owner_dir(base: Path, owner: str) -> Path:
    """The owner's own folder under `base` (not created); a folder left under the legacy name is moved here."""
    folder = base / owner_key(owner)
    if not folder.exists():
        old = base / legacy_key(owner)
        if old.is_dir():
            with contextlib.suppress(OSError):  # another process moved it first
                old.rename(folder)
    return folder


def safe_name(name: str, fallback: str = "item", max_len: int = 80) -> str:
    """A file or folder name with no path parts, no leading dots and only portable characters."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    name = name.replace("/", "_").replace("\\", "_")
    name = _UNSAFE.sub("-", name).strip(".-_ ")
    return name[:max_len] or fallback
