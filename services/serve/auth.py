"""Who is calling the REST API, from the `Authorization: Bearer ...` header alone.

- A **playground key** (`pg-...`), shown to each visitor in the Deploy tab: it names its owner and carries a keyed
  digest only this server can make, so a client acts as that visitor (their `trained:` models, nobody else's).
- A **Hugging Face token**: the Hub says whose it is, and the caller is ``hf:<user>`` (the owner a signed-in visitor
  has in the browser). Answers are cached for a few minutes by the token's digest; the token itself is never kept.
- `PLAYGROUND_API_KEY`, when set, is the server's own key: without it (or one of the two above) every call is 401.
  Left unset on a local machine the API is open (any key will do, as with vLLM) and the caller is the CLI's owner;
  on a public Space a call without a key is an anonymous visitor who sees only the packaged and Hub models, and a
  key that is none of the above is refused.
"""

from __future__ import annotations

import base64
import binascii
import functools
import getpass
import hashlib
import hmac
import os
import threading
import time
from dataclasses import dataclass

from services.core.config import get_settings
from services.core.owners import sign

KEY_PREFIX = "pg-"
_PURPOSE = "api-key"
ANONYMOUS = "api:anonymous"  # owns nothing: on a Space, the caller who sent no key
_TOKEN_TTL_S = 300.0
_tokens: dict[str, tuple[float, str | None]] = {}
_tokens_lock = threading.Lock()


class Unauthorized(Exception):
    """The request's key is missing or wrong (401)."""


@dataclass(frozen=True)
class Caller:
    owner: str


def api_key(owner: str) -> str:
    """The visitor's own API key: their owner id and its signature, so the server needs no table of keys."""
    encoded = base64.urlsafe_b64encode(owner.encode("utf-8")).decode("ascii").rstrip("=")
    return f"{KEY_PREFIX}{encoded}.{sign(_PURPOSE, owner)}"


def owner_of_key(key: str) -> str | None:
    """The owner a playground key was made for, or None when it is not one this server made."""
    if not key.startswith(KEY_PREFIX) or "." not in key or len(key) > 400:
        return None
    encoded, _, digest = key[len(KEY_PREFIX) :].rpartition(".")
    try:
        owner = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not owner or not hmac.compare_digest(digest, sign(_PURPOSE, owner)):
        return None
    return owner


@functools.cache  # read once: getpass looks the user up in the environment and the password database each call
def cli_owner() -> str:
    """The owner the command line acts as (`python -m services`), so a local API client sees what it trained."""
    try:
        return f"cli:{getpass.getuser()}"
    except Exception:  # no login name in a bare container
        return "cli:user"


def _hub_user(token: str) -> str | None:
    from services.hub.push import whoami

    digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
    now = time.monotonic()
    with _tokens_lock:
        cached = _tokens.get(digest)
        if cached and now - cached[0] < _TOKEN_TTL_S:
            return cached[1]
    user = whoami(token)
    with _tokens_lock:
        if len(_tokens) > 10_000:  # a flood of made-up tokens must not grow this without end
            _tokens.clear()
        _tokens[digest] = (now, user)
    return user


def caller(authorization: str | None) -> Caller:
    """The caller of one request, from its Authorization header; raises `Unauthorized` with a sentence."""
    settings = get_settings()
    server_key = os.environ.get("PLAYGROUND_API_KEY", "").strip()
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip() if scheme.lower() == "bearer" else ""
    if key:
        owner = owner_of_key(key)
        if owner:
            return Caller(owner)
        if server_key and hmac.compare_digest(key.encode(), server_key.encode()):
            return Caller(cli_owner() if not settings.on_space else ANONYMOUS)
        if key.startswith("hf_") and not settings.offline:
            user = _hub_user(key)
            if user:
                return Caller(f"hf:{user}")
        if not server_key and not settings.on_space:  # locally open: any key will do, as vLLM and TGI do
            return Caller(cli_owner())
        raise Unauthorized(
            "That API key is not valid here. Use the key the Deploy tab shows you, or a Hugging Face token."
        )
    if server_key:
        raise Unauthorized("This server needs an API key: send it as 'Authorization: Bearer <key>'.")
    return Caller(ANONYMOUS if settings.on_space else cli_owner())
