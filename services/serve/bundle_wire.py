"""OpenAI's wire format for a server bundle (copied verbatim as `bundle_wire.py` beside `server.py`): the request
checks, with a sentence for each mistake, and the answers' shapes, the same as the HF Playground's REST API
(`services/serve/generate.py`), written again here so that a bundle runs without the playground.

A generation request becomes a plain dict (`parse_generation`); `deltas` streams its new text, holding back the
last characters while they could still become a `stop` text, and sets its usage and finish_reason at the end.
"""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from typing import Any

MAX_BODY = 8 * 2**20
MAX_TEXTS = 256  # per embeddings or predict request
MAX_CHARS = 1_000_000  # the texts of one request together
MAX_STOPS = 4  # OpenAI's limit
DEFAULT_MAX_TOKENS = 256  # what a request that names no max_tokens gets
ROLES = ("system", "user", "assistant", "developer", "tool")


class ApiError(Exception):
    """An error answered to the client: HTTP status, OpenAI error type and code, one sentence."""

    def __init__(self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None,
                 param: str | None = None):  # fmt: skip
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code, "param": self.param}}


def bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def not_here(asked: Any, name: str) -> ApiError:
    shown = str(asked) if len(str(asked)) <= 120 else str(asked)[:117] + "..."
    return ApiError(404, f"The model '{shown}' does not exist here: this server serves '{name}' only.",
                    code="model_not_found", param="model")  # fmt: skip


def int_env(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name) or default))
    except ValueError:
        return default


def number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high
    ):
        raise bad(f"'{name}' must be a number from {low:g} to {high:g}.", name)
    return value


def messages(value: Any) -> list[dict]:
    if not isinstance(value, list) or not value:
        raise bad("The request needs 'messages': a non-empty list of {role, content}.", "messages")
    out = []
    for i, message in enumerate(value):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise bad(f"messages[{i}] needs a role, one of {', '.join(ROLES)}.", "messages")
        content = message.get("content")
        if isinstance(content, list):  # OpenAI's parts: only text parts are understood here
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in content):  # fmt: skip
                raise bad(f"messages[{i}]: only text parts are understood here (no images or audio).", "messages")
            content = "".join(p["text"] for p in content)
        if not isinstance(content, str | None):
            raise bad(f"messages[{i}].content must be a text.", "messages")
        out.append({"role": "system" if role == "developer" else role, "content": content or ""})
    return out


def parse_generation(body: dict, chat: bool, cap: int) -> dict:
    """A chat or completions request, checked: a sentence for each mistake, before anything runs."""
    if body.get("n", 1) != 1:
        raise bad("Only n=1 is supported: send one request per answer.", "n")
    if chat:
        prompt: Any = messages(body.get("messages"))
    else:
        prompt = body.get("prompt")
        prompt = prompt[0] if isinstance(prompt, list) and len(prompt) == 1 else prompt
        if not isinstance(prompt, str) or not prompt:
            raise bad("'prompt' must be one text (token arrays and several prompts are not supported).", "prompt")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS, cap)
    elif isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise bad("'max_tokens' must be a whole number of 1 or more.", "max_tokens")
    elif max_tokens > cap:
        raise ApiError(422, f"'max_tokens' is {max_tokens}, above this server's cap of {cap} tokens per answer.",
                       code="limit_exceeded", param="max_tokens")  # fmt: skip
    temperature, top_p = number(body, "temperature", 0, 2), number(body, "top_p", 0, 1)
    sampling: dict = {"do_sample": False}  # temperature 0 (or none): greedy, as OpenAI's clients expect
    if temperature:
        sampling = {"do_sample": True, "temperature": float(temperature)}
        if top_p:
            sampling["top_p"] = float(top_p)
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise bad("'seed' must be a whole number from 0 to 2^32-1.", "seed")
        sampling["seed"] = seed
    stop = body.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > MAX_STOPS or not all(isinstance(s, str) and s for s in stops):
        raise bad(f"'stop' must be a text or a list of at most {MAX_STOPS} texts.", "stop")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("'stream_options' must be an object.", "stream_options")
    return {"chat": chat, "prompt": prompt, "max_tokens": max_tokens, "sampling": sampling, "stop": stops,
            "stream": bool(body.get("stream")), "include_usage": bool(options.get("include_usage")),
            "id": uuid.uuid4().hex[:24], "created": int(time.time()), "prompt_tokens": 0, "completion_tokens": 0,
            "finish_reason": "stop"}  # fmt: skip


def deltas(model: Any, gen: dict, halt: threading.Event):
    """The new text, holding back the last characters while they could still become a `stop` text; sets the
    usage and finish_reason of `gen` at the end."""
    longest = max((len(s) for s in gen["stop"]), default=0)
    text, sent, cut = "", 0, None
    tokens = 0
    for item in model.generate(gen["ids"], gen["max_tokens"], gen["sampling"], halt):
        if isinstance(item, int):
            tokens = item
            continue
        text += item
        if cut is not None:
            continue
        found = [at for s in gen["stop"] if (at := text.find(s, max(0, sent - len(s)))) >= 0]
        if found:
            cut = min(found)
            halt.set()  # the answer is complete: the generation ends after this token
            if cut > sent:
                yield text[sent:cut]
            continue
        if len(text) - max(0, longest - 1) > sent:
            yield text[sent : len(text) - max(0, longest - 1)]
            sent = len(text) - max(0, longest - 1)
    if cut is None and len(text) > sent:
        yield text[sent:]
    gen["completion_tokens"] = tokens
    gen["finish_reason"] = "length" if cut is None and tokens >= gen["max_tokens"] else "stop"


def head(gen: dict, name: str, chunk: bool) -> dict:
    kind = ("chat.completion.chunk" if chunk else "chat.completion") if gen["chat"] else "text_completion"
    return {"id": ("chatcmpl-" if gen["chat"] else "cmpl-") + gen["id"], "object": kind, "created": gen["created"],
            "model": name}  # fmt: skip


def usage(gen: dict) -> dict:
    return {"prompt_tokens": gen["prompt_tokens"], "completion_tokens": gen["completion_tokens"],
            "total_tokens": gen["prompt_tokens"] + gen["completion_tokens"]}  # fmt: skip


def chunk(gen: dict, name: str, text: str | None = None, finish: bool = False, first: bool = False) -> dict:
    reason = gen["finish_reason"] if finish else None
    if gen["chat"]:
        delta: dict = {"role": "assistant", "content": ""} if first else {}
        if text:
            delta["content"] = text
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
    body = {**head(gen, name, True), "choices": [choice]}
    if gen["include_usage"]:
        body["usage"] = None
    return body


def answer(gen: dict, name: str, text: str) -> dict:
    if gen["chat"]:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                  "finish_reason": gen["finish_reason"]}  # fmt: skip
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": gen["finish_reason"]}
    return {**head(gen, name, False), "choices": [choice], "usage": usage(gen)}


def sse(body: dict) -> str:
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def texts(value: Any, name: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(t, str) and t.strip() for t in items):
        raise bad(f"'{name}' must be a non-empty text or list of texts (token arrays are not supported).", name)
    if len(items) > MAX_TEXTS:
        raise ApiError(422, f"At most {MAX_TEXTS} texts per request; this one has {len(items)}.",
                       code="limit_exceeded", param=name)  # fmt: skip
    if sum(len(t) for t in items) > MAX_CHARS:
        raise ApiError(413, f"The texts add up to more than {MAX_CHARS:,} characters, the most one request may send.",
                       code="context_length_exceeded", param=name)  # fmt: skip
    return items
