"""Keeping secrets out of everything the playground stores or shows: job configs, logs, results, errors.

A Hugging Face token looks like ``hf_...`` (Space OAuth tokens: ``hf_oauth_...``); config keys that name a
secret (``token``, ``hf_token``, ``api_key``, ``password``) are blanked whatever their value. What a visitor is
shown (`scrub`, `visible_line`) also loses server paths (only the file's name is kept) and owner ids.
"""

from __future__ import annotations

import re
from typing import Any

# Whole key names only: `max_new_tokens` or `tokenizer` are settings, `hf_token` or `api_key` are secrets.
_SECRET_KEYS = re.compile(r"(^|[_-])(token|password|passwd|secret|api[_-]?key|auth)$", re.IGNORECASE)
_TOKEN_TEXT = re.compile(r"hf_[A-Za-z0-9_]{10,}")  # user tokens and Space OAuth tokens (hf_oauth_...)
HUB_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")
# An absolute path of two or more parts, not inside a URL (`https://host/a/b` is left alone).
_PATH_TEXT = re.compile(r"(?<![\w:/.~-])(?:/[^\s'\"`<>|,;:()\[\]{}]+){2,}/?")
_OWNER_TEXT = re.compile(r"\b(?:hf|anon|session|cli):[A-Za-z0-9_.-]+")
# ESC or its printable stand-in (U+241B, how some consoles and copies show it) starting a colour or cursor code.
_TERMINAL = re.compile(r"[\x1b\u241b]\[[0-9;?]*[ -/]*[@-~]|[\x1b\u241b][@-Z\\-_]")
# A tqdm-style progress bar: "desc:  40%|████ | 4/10 [00:01<00:02, 3.1it/s]", or with no total "desc: 5it [00:01, ...".
_BAR = re.compile(r"^(.*?)\s*(?:\d{1,3}%\|[^|]*\||\d+(?:\.\d+)?[kMGT]?\s?[A-Za-z]*\s+\[\d+:\d\d(?::\d\d)?[<,])")


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


def scrub(value: Any) -> Any:
    """What a visitor may see of a value: no tokens, no server paths (a path becomes its last part), no owner ids."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    if isinstance(value, str):
        text = _PATH_TEXT.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1], mask(value))
        return _OWNER_TEXT.sub("you", text)
    return value


def visible_line(line: str) -> str | None:
    """A line of a job's output as its log shows it: terminal colour codes gone, a progress bar redrawn with
    carriage returns reduced to its last state, then `scrub`bed; None for a line left empty."""
    text = _TERMINAL.sub("", line)
    if "\r" in text:
        text = next((part for part in reversed(text.split("\r")) if part.strip()), "")
    text = scrub(text.rstrip())
    return text if text.strip() else None


def bar_key(line: str) -> str | None:
    """What names a progress bar in a log line ("Loading weights:" for a tqdm bar of that name), or None for a line
    that is not a progress bar. Two lines with the same key are two states of one bar."""
    match = _BAR.match(line)
    return match.group(1) if match else None


def visible_log(lines: list[str]) -> list[str]:
    """A job's log as it is shown: every line through `visible_line`, and a progress bar redrawn on line after line
    kept in its last state only."""
    shown: list[str] = []
    last_bar: str | None = None
    for raw in lines:
        line = visible_line(raw)
        if line is None:
            continue
        key = bar_key(line)
        if key is not None and key == last_bar:
            shown[-1] = line
        else:
            shown.append(line)
        last_bar = key
    return shown
