"""Base vs adapter on the same prompt: both answers streamed side by side from one copy of the base in memory.

The adapter model is loaded once (base + LoRA layers, `services.models.loading`); the base's answer runs the same
weights with the adapter switched off (`peft_model.disable_adapter()`), so comparing costs no second model. The two
answers are decoded in lockstep, one token each per step, each with its own key/value cache and its own seeded
random generator: with the same seed and settings each side gives what a lone generation would give.

`compare(...)` yields ``{"base": text, "adapter": text, "tokens": {"base": n, "adapter": n}, "done": bool}``; the
last item also has ``"finish": {"base": "stop" | "length", "adapter": ...}`` and, when halted, ``"stopped": True``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from services.core.errors import PlaygroundError
from services.core.limits import check_text, courtesy
from services.models.catalog import resolve
from services.models.loading import load
from services.pipelines import caps
from services.pipelines.chat import encode_prompt, fit_messages
from services.training.chat_data import end_ids

SIDES = ("base", "adapter")


class CompareError(PlaygroundError):
    """Something a person can fix in what they asked to compare."""


def _messages(prompt: str | list[dict]) -> list[dict]:
    if isinstance(prompt, str):
        text = check_text(prompt, "The prompt")
        if not text.strip():
            raise CompareError("Type a prompt to compare the two answers on.")
        return [{"role": "user", "content": text}]
    if not prompt or not all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt):
        raise CompareError("Give the prompt as text, or as a list of {role, content} messages.")
    return [{"role": str(m.get("role") or "user"), "content": check_text(m["content"], "A message")} for m in prompt]


def _pick(logits, generator, temperature: float, top_p: float) -> int:
    import torch

    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = torch.sort(probs, descending=True)
        keep = torch.cumsum(sorted_probs, dim=-1) - sorted_probs < top_p
        sorted_probs = sorted_probs * keep
        probs = torch.zeros_like(probs).scatter(0, order, sorted_probs)
    return int(torch.multinomial(probs / probs.sum(), 1, generator=generator))


def compare(
    model_id: str,
    prompt: str | list[dict],
    *,
    owner: str | None = None,
    max_new_tokens: int = 96,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    halt: threading.Event | None = None,
) -> Iterator[dict]:
    """Stream the base's and the adapter's answers to `prompt` (see the module docstring)."""
    import torch

    params = caps.check_generation({"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p})
    budget, temperature = int(params["max_new_tokens"]), float(params["temperature"])
    top_p = min(max(float(params["top_p"]), 0.01), 1.0)
    seed = int(seed or 0) % 2**32
    messages = _messages(prompt)
    if resolve(model_id, owner).source != "adapter":  # said before a model that is not one is loaded for nothing
        raise CompareError(
            f"'{model_id}' is not a LoRA adapter: pick a model this tab trained (trained:<name>) to compare it with "
            "its base."
        )
    loaded = load(model_id, "text-generation", owner=owner)
    peft_model = loaded.extras.get("peft")
    if peft_model is None:
        raise CompareError(
            f"'{model_id}' is not a LoRA adapter: pick a model this tab trained (trained:<name>) to compare it with "
            "its base."
        )
    tokenizer = loaded.tokenizer
    stops = end_ids(tokenizer)
    deadline = time.monotonic() + caps.time_bound()
    pause = courtesy()
    with loaded.busy:
        encoded = encode_prompt(loaded, fit_messages(loaded, messages, budget + 96))
    prompt_ids = encoded["input_ids"]
    state = {side: {"past": None, "feed": prompt_ids, "ids": [], "done": False, "finish": "length",
                    "generator": torch.Generator().manual_seed(seed)} for side in SIDES}  # fmt: skip
    stopped = False

    def texts() -> dict:
        return {side: tokenizer.decode(state[side]["ids"], skip_special_tokens=True).strip() for side in SIDES}

    for _ in range(budget):
        if halt is not None and halt.is_set():
            stopped = True
            break
        if time.monotonic() > deadline:
            break
        pause.step_aside()  # between two tokens: a quick request of someone else's goes first
        with loaded.busy, torch.no_grad(), pause.long():
            for side in SIDES:
                s = state[side]
                if s["done"]:
                    continue
                switch = peft_model.disable_adapter() if side == "base" else contextlib.nullcontext()
                with switch:
                    # logits for the last position only: the prompt's full vocabulary rows are never needed
                    out = loaded.model(input_ids=s["feed"], past_key_values=s["past"], use_cache=True,
                                       logits_to_keep=1)  # fmt: skip
                token = _pick(out.logits[0, -1], s["generator"], temperature, top_p)
                s["past"] = out.past_key_values
                s["feed"] = torch.tensor([[token]], device=prompt_ids.device)
                if token in stops:
                    s["done"], s["finish"] = True, "stop"
                else:
                    s["ids"].append(token)
        yield {**texts(), "tokens": {side: len(state[side]["ids"]) for side in SIDES}, "done": False}
        if all(state[side]["done"] for side in SIDES):
            break
    final: dict[str, Any] = {**texts(), "tokens": {side: len(state[side]["ids"]) for side in SIDES}, "done": True,
                             "finish": {side: state[side]["finish"] for side in SIDES}}  # fmt: skip
    if stopped:
        final["stopped"] = True
    yield final


def compare_once(model_id: str, prompt: str | list[dict], **kwargs: Any) -> dict:
    """`compare` run to the end: its last item."""
    items = list(compare(model_id, prompt, **kwargs))
    return items[-1]
