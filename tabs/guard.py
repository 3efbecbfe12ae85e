"""HTTP-level guards in front of Gradio: a request-size cap and a per-visitor request rate, both answered before
Gradio reads, parses or queues anything.

A refused request costs the server almost nothing, which is the point: measured on 2 cores, a visitor looping cheap
requests that the app refuses a moment later still slowed everyone else's `/run` 1.4x (one thread) to 2.5x (four),
because each one went through Gradio's Python. So a request the app refuses for a cap or a quota (`penalize`)
costs its visitor `REFUSAL_COST` requests of their allowance: someone who keeps asking for what they may not have
is slowed down at the door, while a script sending ordinary requests back to back is not. A visitor is their owner
cookie, else their address (on a Space, the address the Space's proxy saw); the limits are `services.core.limits`
(PLAYGROUND_MAX_REQUEST_MB, PLAYGROUND_REQUESTS_PER_S, PLAYGROUND_UPLOAD_MB_PER_HOUR).
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import OrderedDict

from services.core.config import get_settings
from services.core.limits import get_limits
from services.serve.api import API_PATHS

OWNER_COOKIE = "hfpg_owner"  # the browser's private owner id (set by tabs.session.OwnerCookieMiddleware)
_COUNTED = ("/queue/join", "/call/", "/run/", "/upload")  # work submitted; page assets and streams are free
_MAX_VISITORS = 10_000  # buckets kept (least recently seen visitors are forgotten first)
REFUSAL_COST = 10  # a request refused for a cap or a quota counts as this many


class _Buckets:
    """Token buckets per visitor: `rate` per second, up to `burst` at once; bytes per hour for uploads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, last time)
        self.uploads: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (bytes left, last time)

    @staticmethod
    def _take(table: OrderedDict, key: str, amount: float, rate: float, capacity: float) -> bool:
        now = time.monotonic()
        tokens, last = table.pop(key, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        allowed = tokens >= amount
        table[key] = (tokens - amount if allowed else tokens, now)
        while len(table) > _MAX_VISITORS:
            table.popitem(last=False)
        return allowed

    def request(self, key: str, cost: float = 1) -> bool:
        limits = get_limits()
        with self.lock:
            return self._take(self.requests, key, cost, limits.requests_per_s, limits.requests_burst)

    def penalize(self, key: str) -> None:
        """Take a refused request's extra cost out of the visitor's allowance (it may go below zero)."""
        limits = get_limits()
        with self.lock:
            tokens, last = self.requests.get(key, (limits.requests_burst, time.monotonic()))
            self.requests[key] = (tokens - (REFUSAL_COST - 1), last)

    def upload(self, key: str, size: int) -> bool:
        per_hour = get_limits().upload_bytes_per_hour
        with self.lock:
            return self._take(self.uploads, key, size, per_hour / 3600, per_hour)


@functools.cache
def buckets() -> _Buckets:
    """The process's allowances (one per visitor), shared by the middleware and `penalize`."""
    return _Buckets()


def _header(scope: dict, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return value.decode("latin-1")
    return None


def visitor_key(scope: dict) -> str:
    """The owner cookie when the browser has one, else the caller's address (the proxy's last hop on a Space)."""
    cookies = _header(scope, b"cookie") or ""
    for part in cookies.split(";"):
        name, _, value = part.strip().partition("=")
        if name == OWNER_COOKIE and 20 <= len(value) <= 100:
            return "cookie:" + value
    forwarded = _header(scope, b"x-forwarded-for") if get_settings().on_space else None
    if forwarded:
        return "ip:" + forwarded.split(",")[-1].strip()
    client = scope.get("client") or ("unknown", 0)
    return f"ip:{client[0]}"


def penalize(request) -> None:
    """A request of this visitor was refused for a cap or a quota (called by `tabs.session.friendly`)."""
    scope = getattr(getattr(request, "request", None), "scope", None) or getattr(request, "scope", None)
    if isinstance(scope, dict):
        buckets().penalize(visitor_key(scope))


class RequestGuard:
    """Pure ASGI middleware (it never buffers a body): 413 above the size cap, 429 above the visitor's rate."""

    def __init__(self, app):
        self.app = app
        self.buckets = buckets()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path.startswith(API_PATHS):  # the REST API: its own admission answers 429 (services.serve.api)
            cap = get_limits().request_bytes
            if int(_header(scope, b"content-length") or 0) > cap:
                return await _refuse(send, 413, f"The request is larger than {cap / 2**20:.0f} MB.", api=True)
            return await self.app(scope, _capped(receive, cap), send)
        if not any(part in path for part in _COUNTED):
            return await self.app(scope, receive, send)
        limits = get_limits()
        upload = path.endswith("/upload")
        length = int(_header(scope, b"content-length") or 0)
        cap = get_settings().max_upload_bytes * 1.05 + 2**20 if upload else limits.request_bytes
        if length > cap:
            return await _refuse(send, 413, f"This request is {length / 2**20:.1f} MB; requests up to "
                                 f"{cap / 2**20:.0f} MB are accepted here.")  # fmt: skip
        key = visitor_key(scope)
        if not self.buckets.request(key):
            return await _refuse(send, 429, "Too many requests at once from you: wait a few seconds, then retry.")
        if upload and not self.buckets.upload(key, length):
            per_hour = limits.upload_bytes_per_hour / 2**20
            return await _refuse(send, 429, f"You have uploaded close to {per_hour:,.0f} MB in the last hour, the "
                                 "most one visitor may: wait a while, then upload again.")  # fmt: skip
        return await self.app(scope, _capped(receive, cap), send)


def _capped(receive, cap: float):
    """A body sent without a length (chunked) is counted as it arrives and cut off past the cap."""
    seen = 0

    async def wrapped():
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > cap:
                return {"type": "http.disconnect"}
        return message

    return wrapped


async def _refuse(send, status: int, sentence: str, api: bool = False) -> None:
    error = {"message": sentence, "type": "invalid_request_error", "code": "request_too_large"} if api else sentence
    body = json.dumps({"error": error}).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 429:
        headers.append((b"retry-after", b"5"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
