"""Keeping secrets out of everything the playground stores or shows: job configs, logs, results, errors.

A Hugging Face token looks like ``hf_...`` (Space OAuth tokens: ``hf_oauth_...``); config keys that name a
secret (``token``, ``hf_token``, ``api_key``, ``password``) are blanked whatever their value.
"""

from __future__ import annotations

import re
from typing import Any

# Whole key names only: `max_new_tokens` or `tokenizer` are settings, `hf_token` or `api_key` are secrets.
_SECRET_KEYS = re.compile(r"(^|[_-])(token|password|passwd|secret|api[_-]?key|auth)$", re.IGNORECASE)
_TOKEN_TEXT = re.compile(r"hf_[A-Za-z0-9_]{10,}")  # user tokens and Space OAuth tokens (hf_oauth_...)
HUB_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def mask(text: str) -> str:
    """Hide anything that looks like a Hugging Face token in a line of text."""
    return _TOKEN_TEXT.sub("hf_***", text)


def redact(value: Any) -> Any:
    """Drop secrets from a config before it is stored: keys that name a token, and hf_... strings."""
    if isinstance(value, dict):
        return {k: ("***" if _SECRET_KEYS.search(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return mask(value)
    return value
