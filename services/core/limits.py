"""Caps on what one request or one visitor may ask of the playground, each settable by the Space's operator.

Every input a visitor controls is bounded here: text sizes, list lengths, labels, tokens to generate, padding,
files, jobs and concurrent generations. A request above a cap is refused with a sentence that names the cap
(`LimitExceeded`), before any work starts. The defaults keep one visitor from slowing everyone else on a small
Space; an operator raises or lowers them with the environment variables below (read once, like the settings).

    PLAYGROUND_MAX_TEXT_CHARS          a text for a pipeline or the tokenizer views (1,000,000)
    PLAYGROUND_MAX_TOKENIZE_CHARS      a text for /tokenize, whose answer lists every token (200,000)
    PLAYGROUND_MAX_LIST_ITEMS          labels, sentences, batch texts, files in one request (50)
    PLAYGROUND_MAX_NEW_TOKENS          tokens one generation may add (1,024)
    PLAYGROUND_MAX_GENERATION_S        seconds one generation may run (120)
    PLAYGROUND_MAX_SEQUENCE_TOKENS     max_length / padding / stride of the tokenizer views (8,192)
    PLAYGROUND_MAX_JOBS_PER_VISITOR    a visitor's jobs running or waiting at once (3)
    PLAYGROUND_JOB_SLOTS               jobs running at once for everyone together (CPU count - 1, at least 1)
    PLAYGROUND_MAX_JOB_MINUTES         minutes a job may run before it is stopped (0 = no limit; 120 on a Space)
    PLAYGROUND_MAX_GENERATIONS_PER_VISITOR   a visitor's model runs (generation, pipelines, RAG answers) at once (1)
    PLAYGROUND_MAX_INGEST_TEXT_MB      text one indexing job may add to a collection (50)
    PLAYGROUND_JOB_PRIORITY            job processes' CPU priority: `idle` (they use only CPU time nothing else
                                       wants, so pages stay quick) or a nice value 0-19 (idle)
    PLAYGROUND_MAX_REQUEST_MB          one HTTP request's body, files aside (8)
    PLAYGROUND_REQUESTS_PER_S          requests a visitor may send per second, in bursts of 5x that (20); one
                                       the app refuses for a cap or a quota counts as 10
    PLAYGROUND_UPLOAD_MB_PER_HOUR      megabytes a visitor may upload per hour (1,000)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, fields

from services.core.errors import PlaygroundError

logger = logging.getLogger(__name__)


class LimitExceeded(PlaygroundError):
    """A request above one of the playground's caps; the sentence names the cap."""


def _int(name: str, default: int, minimum: int = 0) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return max(minimum, int(float(value)))
    except ValueError:
        logger.warning("Ignoring %s=%r: not a number; using %s", name, value, default)
        return default


@dataclass(frozen=True)
class Limits:
    """The caps in force (see the module docstring for what each one bounds)."""

    text_chars: int = 1_000_000
    tokenize_chars: int = 200_000
    list_items: int = 50
    item_chars: int = 200  # one label, one search query, one model or dataset id is a short string
    new_tokens: int = 1_024
    generation_seconds: int = 120
    sequence_tokens: int = 8_192
    beams: int = 8
    top_k: int = 50
    question_chars: int = 2_000
    prompt_chars: int = 8_000  # a system prompt, a conversation for the chat template view
    jobs_per_visitor: int = 3
    job_slots: int = 1
    job_minutes: int = 0
    generations_per_visitor: int = 1
    ingest_text_bytes: int = 50 * 2**20
    job_priority: str = "idle"
    request_bytes: int = 8 * 2**20
    requests_per_s: float = 20
    requests_burst: float = 100
    upload_bytes_per_hour: int = 1000 * 2**20

    def describe(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@functools.cache
def get_limits() -> Limits:
    """Read the caps once from the environment (tests call `get_limits.cache_clear()` after changing it)."""
    on_space = bool(os.environ.get("SPACE_ID"))
    cpus = os.cpu_count() or 2
    return Limits(
        text_chars=_int("PLAYGROUND_MAX_TEXT_CHARS", 1_000_000, 1),
        tokenize_chars=_int("PLAYGROUND_MAX_TOKENIZE_CHARS", 200_000, 1),
        list_items=_int("PLAYGROUND_MAX_LIST_ITEMS", 50, 1),
        new_tokens=_int("PLAYGROUND_MAX_NEW_TOKENS", 1_024, 1),
        generation_seconds=_int("PLAYGROUND_MAX_GENERATION_S", 120, 1),
        sequence_tokens=_int("PLAYGROUND_MAX_SEQUENCE_TOKENS", 8_192, 8),
        jobs_per_visitor=_int("PLAYGROUND_MAX_JOBS_PER_VISITOR", 3, 1),
        job_slots=_int("PLAYGROUND_JOB_SLOTS", max(1, cpus - 1), 1),
        job_minutes=_int("PLAYGROUND_MAX_JOB_MINUTES", 120 if on_space else 0),
        generations_per_visitor=_int("PLAYGROUND_MAX_GENERATIONS_PER_VISITOR", 1, 1),
        ingest_text_bytes=_int("PLAYGROUND_MAX_INGEST_TEXT_MB", 50, 1) * 2**20,
        job_priority=os.environ.get("PLAYGROUND_JOB_PRIORITY", "").strip().lower() or "idle",
        request_bytes=_int("PLAYGROUND_MAX_REQUEST_MB", 8, 1) * 2**20,
        requests_per_s=_int("PLAYGROUND_REQUESTS_PER_S", 20, 1),
        requests_burst=5 * _int("PLAYGROUND_REQUESTS_PER_S", 20, 1),
        upload_bytes_per_hour=_int("PLAYGROUND_UPLOAD_MB_PER_HOUR", 1000, 1) * 2**20,
    )


# ---- checks: each raises LimitExceeded with the cap in the sentence ----------------------------------------------


def check_text(text: str, what: str = "That text", cap: int | None = None) -> str:
    """`text` when it is at most `cap` characters (default: the text cap)."""
    cap = get_limits().text_chars if cap is None else cap
    if isinstance(text, str) and len(text) > cap:
        raise LimitExceeded(f"{what} is {len(text):,} characters long; at most {cap:,} are accepted here.")
    return text


def check_count(items, what: str, cap: int | None = None) -> None:
    """At most `cap` items (default: the list cap) in a list the caller sent."""
    cap = get_limits().list_items if cap is None else cap
    if items is not None and len(items) > cap:
        raise LimitExceeded(f"{len(items):,} {what} were sent; at most {cap:,} are accepted at once.")


def check_number(value, name: str, cap: int, minimum: int = 0) -> int | None:
    """An integer setting between `minimum` and `cap` (None stays None); the sentence names the setting."""
    if value is None:
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as err:
        raise LimitExceeded(f"{name} must be a whole number, not '{str(value)[:40]}'.") from err
    if number < minimum or number > cap:
        raise LimitExceeded(f"{name} must be between {minimum:,} and {cap:,}; {number:,} was asked.")
    return number


def check_id(value: str, what: str = "That name") -> str:
    """A model, tokenizer or dataset id: a short string (ids on the Hub are at most 96 characters)."""
    if not isinstance(value, str):
        raise LimitExceeded(f"{what} must be text.")
    value = value.strip()
    cap = get_limits().item_chars
    if len(value) > cap:
        raise LimitExceeded(f"{what} is {len(value):,} characters long; names up to {cap:,} characters are accepted.")
    return value


# ---- concurrent model runs per visitor ---------------------------------------------------------------------------


class _RunGate:
    """Counts each owner's model runs in progress (a generation, a pipeline run, a RAG answer), process-wide."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: Counter[str] = Counter()

    @contextlib.contextmanager
    def hold(self, owner: str) -> Iterator[None]:
        cap = get_limits().generations_per_visitor
        with self._lock:
            if self._running[owner] >= cap:
                raise LimitExceeded(
                    f"You already have {self._running[owner]} model run(s) going, the most one visitor may have at "
                    f"once ({cap}): wait for it to finish, or press Stop."
                )
            self._running[owner] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[owner] -= 1
                if self._running[owner] <= 0:
                    del self._running[owner]


@functools.cache
def run_gate() -> _RunGate:
    """The one gate of this process (a streaming answer holds its place until it ends or is stopped)."""
    return _RunGate()


# ---- short requests first ----------------------------------------------------------------------------------------


class _Courtesy:
    """Long generations and quick requests share the CPU instead of fighting over it.

    While a quick model run (a pipeline run, a tokenizer view) is in progress, a generation pauses between two
    tokens (at most `max_pause` seconds each time). While both kinds run, each computes on half the cores: two
    OpenMP teams on the same cores wait on each other's threads at every parallel step. Measured on 2 cores: a
    concurrent generation took another visitor's 13.5 ms zero-shot run to 29.5 ms (2.2x); with one core each it
    ran in 20.6 ms, and alone it keeps both cores.
    """

    def __init__(self, max_pause: float = 0.25, recent_s: float = 2.0) -> None:
        self.max_pause, self.recent_s = max_pause, recent_s
        self._lock = threading.Lock()
        self._quick = 0
        self._long = 0
        self._last = float("-inf")
        self._idle = threading.Event()
        self._idle.set()

    @staticmethod
    def _half() -> int:
        return max(1, (os.cpu_count() or 1) // 2)

    @contextlib.contextmanager
    def quick(self) -> Iterator[int]:
        """Around a quick run; yields the CPU threads it should use (all of them unless a generation runs)."""
        with self._lock:
            self._quick += 1
            self._idle.clear()
            share = self._half() if self._long else os.cpu_count() or 1
        try:
            yield share
        finally:
            with self._lock:
                self._quick -= 1
                self._last = time.monotonic()
                if not self._quick:
                    self._idle.set()

    @contextlib.contextmanager
    def long(self) -> Iterator[None]:
        """Around a long generation (it calls `step_aside` and `threads` between tokens)."""
        with self._lock:
            self._long += 1
        try:
            yield
        finally:
            with self._lock:
                self._long -= 1

    def step_aside(self) -> None:
        """Called by a generation between tokens: wait while a quick request runs (bounded, never forever)."""
        self._idle.wait(timeout=self.max_pause)

    def threads(self) -> int:
        """The CPU threads a long generation should use now: all, or half while quick requests keep coming."""
        recent = self._quick > 0 or time.monotonic() - self._last < self.recent_s
        return self._half() if recent else os.cpu_count() or 1


@functools.cache
def courtesy() -> _Courtesy:
    return _Courtesy()
