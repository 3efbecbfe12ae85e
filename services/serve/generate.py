"""`/v1/chat/completions` and `/v1/completions`: OpenAI's request checked, the generation run, its answer shaped.

A request becomes a `Generation` in two steps. `prepare` checks every field (a sentence for each mistake), loads
the model, counts the prompt's tokens and refuses a prompt that does not fit the model's context with the tokens
asked for: all before any token is generated, so a refusal costs nothing. `deltas` then streams the new text,
holding back the last few characters while they could still become a `stop` string, and ends the generation at
once when `halt` is set (the client went away). Usage and `finish_reason` come from the tokens generate() made.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from services.core.errors import PlaygroundError
from services.core.limits import get_limits
from services.serve.errors import ApiError, bad_request, from_playground

ROLES = ("system", "user", "assistant", "developer", "tool")
DEFAULT_MAX_TOKENS = 256  # what a request that names no max_tokens gets (OpenAI's own default is the context)
MAX_STOPS = 4  # OpenAI's limit


@dataclass
class Generation:
    """One checked request, and then (after `prepare`) its model and prompt."""

    kind: str  # "chat.completion" or "text_completion"
    model: str
    prompt: Any  # a message list (chat) or a text (completion)
    max_tokens: int
    params: dict
    stop: list[str]
    stream: bool = False
    include_usage: bool = False
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    created: int = field(default_factory=lambda: int(time.time()))
    loaded: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"

    @property
    def chat(self) -> bool:
        return self.kind == "chat.completion"

    @property
    def response_id(self) -> str:
        return ("chatcmpl-" if self.chat else "cmpl-") + self.id


def _text_content(content: Any, index: int) -> str:
    """A message's content: a text, or OpenAI's list of parts of which only text parts are understood here."""
    if isinstance(content, str):
        return content
    if content is None:
        return ""
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request(f"messages[{index}]: only text parts are understood here (no images or audio).",
                                  "messages")  # fmt: skip
            texts.append(part["text"])
        return "".join(texts)
    raise bad_request(f"messages[{index}].content must be a text.", "messages")


def _messages(value: Any) -> list[dict]:
    if value is None:
        raise bad_request("The request needs 'messages': a list of {role, content}.", "messages")
    if not isinstance(value, list) or not value:
        raise bad_request("'messages' must be a non-empty list of {role, content}.", "messages")
    limits = get_limits()
    if len(value) > limits.list_items * 4:
        raise ApiError(422, f"At most {limits.list_items * 4} messages per request.", code="limit_exceeded",
                       param="messages")  # fmt: skip
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict):
            raise bad_request(f"messages[{i}] must be an object with 'role' and 'content'.", "messages")
        role = message.get("role")
        if role not in ROLES:
            raise bad_request(f"messages[{i}].role must be one of {', '.join(ROLES)}, not {str(role)[:30]!r}.",
                              "messages")  # fmt: skip
        role = "system" if role == "developer" else role
        messages.append({"role": role, "content": _text_content(message.get("content"), i)})
    return messages


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise bad_request(f"'{name}' must be a number from {low:g} to {high:g}.", name)
    return float(value)


def _max_tokens(body: dict) -> int:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    cap = get_limits().new_tokens
    if value is None:
        return min(DEFAULT_MAX_TOKENS, cap)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request("'max_tokens' must be a whole number of 1 or more.", "max_tokens")
    if value > cap:
        raise ApiError(422, f"'max_tokens' is {value}, above this server's cap of {cap} tokens per answer.",
                       code="limit_exceeded", param="max_tokens")  # fmt: skip
    return value


def _stops(value: Any) -> list[str]:
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops) or len(stops) > MAX_STOPS:
        raise bad_request(f"'stop' must be a text or a list of at most {MAX_STOPS} texts.", "stop")
    if any(len(s) > 200 for s in stops):
        raise bad_request("Each 'stop' text must be at most 200 characters.", "stop")
    return stops


def parse(body: Any, kind: str) -> Generation:
    """Check a `/v1/chat/completions` (kind "chat.completion") or `/v1/completions` ("text_completion") body."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("The request needs 'model': a model id from GET /v1/models.", "model")
    if body.get("n", 1) != 1:
        raise bad_request("Only n=1 is supported: send one request per answer.", "n")
    if kind == "chat.completion":
        prompt: Any = _messages(body.get("messages"))
    else:
        prompt = body.get("prompt")
        if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
            prompt = prompt[0]
        if not isinstance(prompt, str) or not prompt:
            raise bad_request("'prompt' must be one text (token arrays and several prompts are not supported).",
                              "prompt")  # fmt: skip
    params: dict = {}
    temperature = _number(body, "temperature", 0, 2)
    top_p = _number(body, "top_p", 0, 1)
    if temperature:  # 0 (or none) is greedy decoding, as OpenAI's clients expect from temperature=0
        params.update(do_sample=True, temperature=temperature)
        if top_p is not None and top_p > 0:
            params["top_p"] = top_p
    else:
        params["do_sample"] = False
    seed = body.get("seed")
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise bad_request("'seed' must be a whole number from 0 to 2^32-1.", "seed")
        params["seed"] = seed
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad_request("'stream_options' must be an object.", "stream_options")
    return Generation(
        kind=kind, model=model.strip(), prompt=prompt, max_tokens=_max_tokens(body), params=params,
        stop=_stops(body.get("stop")), stream=bool(body.get("stream")),
        include_usage=bool(options.get("include_usage")),
    )  # fmt: skip


def prepare(gen: Generation, owner: str) -> Generation:
    """Load the model and count the prompt; refuse what cannot be answered (slow: run it off the event loop)."""
    from services.models import loading
    from services.pipelines import caps, chat

    try:
        texts = [m["content"] for m in gen.prompt] if gen.chat else [gen.prompt]
        caps.check_texts(texts, "messages", count=False)
    except PlaygroundError as err:
        raise ApiError(413, str(err), code="context_length_exceeded", param="messages") from err
    try:
        gen.loaded = loading.load(gen.model, "text-generation", owner=owner)
    except PlaygroundError as err:
        raise from_playground(err, gen.model) from err
    if gen.chat and not chat.has_chat_template(gen.loaded):
        raise bad_request(f"'{gen.model}' has no chat template: use /v1/completions for it.", "model")
    with gen.loaded.busy:
        gen.prompt_tokens = int(chat.encode_prompt(gen.loaded, gen.prompt, gen.chat)["input_ids"].shape[1])
    context = loading.token_limit(gen.loaded.model.config, gen.loaded.tokenizer)
    if gen.prompt_tokens + gen.max_tokens > context:
        raise ApiError(
            413, f"This model reads at most {context} tokens; the prompt has {gen.prompt_tokens} and {gen.max_tokens} "
            "more were asked for. Shorten the prompt or lower max_tokens.",
            code="context_length_exceeded", param="messages",
        )  # fmt: skip
    return gen


def deltas(gen: Generation, halt: threading.Event) -> Iterator[str]:
    """The new text, piece by piece; sets `gen.completion_tokens` and `gen.finish_reason` when it ends."""
    from services.pipelines import chat

    longest = max((len(s) for s in gen.stop), default=0)
    sent, text, stopped_at = 0, "", None
    final: dict = {}
    params = {**gen.params, "max_new_tokens": gen.max_tokens}
    try:
        for item in chat.stream(gen.loaded, gen.prompt, chat=gen.chat, with_scores=False, halt=halt, **params):
            text = item["text"]
            final = item
            for stop in gen.stop:
                at = text.find(stop, max(0, sent - len(stop)))
                if at >= 0 and (stopped_at is None or at < stopped_at):
                    stopped_at = at
            if stopped_at is not None:
                halt.set()  # the answer is complete: the generation ends after this token
                if stopped_at > sent:
                    yield text[sent:stopped_at]
                sent = stopped_at
                continue
            safe = len(text) - max(0, longest - 1)
            if safe > sent:
                yield text[sent:safe]
                sent = safe
    except PlaygroundError as err:
        raise from_playground(err, gen.model) from err
    if stopped_at is None and len(text) > sent:
        yield text[sent:]
    gen.completion_tokens = int(final.get("new_tokens", 0))
    length = stopped_at is None and gen.completion_tokens >= gen.max_tokens
    gen.finish_reason = "length" if length else "stop"


def usage(gen: Generation) -> dict:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": gen.completion_tokens,
            "total_tokens": gen.prompt_tokens + gen.completion_tokens}  # fmt: skip


def response(gen: Generation, text: str) -> dict:
    """The whole answer (not streamed)."""
    head = {"id": gen.response_id, "object": gen.kind, "created": gen.created, "model": gen.model}
    if gen.chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None,
                  "finish_reason": gen.finish_reason}  # fmt: skip
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": gen.finish_reason}
    return {**head, "choices": [choice], "usage": usage(gen)}


def chunk(gen: Generation, text: str | None = None, finish: bool = False, first: bool = False) -> dict:
    """One server-sent event of a streamed answer (OpenAI's `chat.completion.chunk` or a `text_completion`)."""
    head = {"id": gen.response_id, "object": "chat.completion.chunk" if gen.chat else "text_completion",
            "created": gen.created, "model": gen.model}  # fmt: skip
    reason = gen.finish_reason if finish else None
    if gen.chat:
        delta: dict = {"role": "assistant", "content": ""} if first else {}
        if text:
            delta["content"] = text
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": reason}
    body = {**head, "choices": [choice]}
    if gen.include_usage:
        body["usage"] = None
    return body


def usage_chunk(gen: Generation) -> dict:
    """The last event when `stream_options.include_usage` is set: no choices, the usage."""
    head = {"id": gen.response_id, "object": "chat.completion.chunk" if gen.chat else "text_completion",
            "created": gen.created, "model": gen.model}  # fmt: skip
    return {**head, "choices": [], "usage": usage(gen)}
