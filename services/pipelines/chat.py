"""Decoder-only models as generators and chat assistants: streaming, token probabilities, and prompted
summarization and translation (how a chat model such as the packaged SmolLM2 does seq2seq tasks).

Chat models get their own chat template; base models (GPT-2 style) get a plain prompt. A prompt longer than the
model reads keeps its end (a conversation its newest messages); every generation is bounded in tokens, beams and
time by the caps of `services.core.limits` (`caps`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from services.core import gpu
from services.core.errors import PlaygroundError
from services.core.limits import check_number, courtesy
from services.models.loading import LoadedModel
from services.pipelines import caps

LANGUAGES = {
    "en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
    "nl": "Dutch", "ro": "Romanian", "ru": "Russian", "zh": "Chinese", "ja": "Japanese", "ko": "Korean",
    "ar": "Arabic", "hi": "Hindi", "tr": "Turkish", "pl": "Polish", "sv": "Swedish", "uk": "Ukrainian",
}  # fmt: skip
_GENERATION_KEYS = {
    "max_new_tokens", "temperature", "top_p", "top_k", "repetition_penalty", "do_sample", "num_beams",
    "no_repeat_ngram_size", "min_new_tokens", "max_time",
}  # fmt: skip


def can_chat(loaded: LoadedModel) -> bool:
    """Whether the model generates text token by token (a decoder-only LM)."""
    config = loaded.model.config
    return (
        not getattr(config, "is_encoder_decoder", False)
        and hasattr(loaded.model, "generate")
        and any(
            a.endswith(("ForCausalLM", "LMHeadModel")) for a in (config.architectures or [type(loaded.model).__name__])
        )
    )


def has_chat_template(loaded: LoadedModel) -> bool:
    return bool(getattr(loaded.tokenizer, "chat_template", None))


def language_name(code_or_name: str | None, default: str) -> str:
    if not code_or_name:
        return default
    return LANGUAGES.get(code_or_name.strip().lower(), code_or_name.strip())


_JOINER = "\u2060"  # a word joiner: invisible, and it splits a control token's spelling into ordinary text


def as_plain_text(tokenizer, text: str) -> str:
    """`text` (what a visitor typed, or a document) with the model's control tokens (`<|im_end|>`, `<file_sep>`)
    spelled so that the tokenizer reads them as ordinary text: typed text cannot end a turn or start another one,
    and the answer is not cut where the model copies such a token."""
    if "<" not in text and "[" not in text:
        return text
    specials = {t for t in tokenizer.all_special_tokens if len(t) > 1}
    specials |= {t.content for t in tokenizer.added_tokens_decoder.values() if t.special and len(t.content) > 1}
    for token in sorted(specials, key=len, reverse=True):
        if token in text:
            text = text.replace(token, token[0] + _JOINER + token[1:])
    return text


def encode_prompt(loaded: LoadedModel, prompt: str | list[dict], chat: bool | None = None) -> dict:
    """Token ids for a prompt: a message list (or, for chat models, a plain string as the user's message). The
    messages' text is read as text: control tokens in it are not the model's own (`as_plain_text`)."""
    tokenizer = loaded.tokenizer
    use_chat = has_chat_template(loaded) if chat is None else chat and has_chat_template(loaded)
    if isinstance(prompt, str):
        prompt = as_plain_text(tokenizer, prompt)
    else:
        prompt = [{**m, "content": as_plain_text(tokenizer, m["content"])} if isinstance(m.get("content"), str)
                  else m for m in prompt]  # fmt: skip
    if use_chat:
        messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
        encoded = tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
    else:
        text = prompt if isinstance(prompt, str) else "\n".join(m["content"] for m in prompt)
        encoded = tokenizer(text, return_tensors="pt")
    return {k: v.to(loaded.model.device) for k, v in encoded.items()}


def generation_kwargs(loaded: LoadedModel, params: dict) -> dict:
    """Only the generation settings this playground exposes; sampling turned on when a temperature is set."""
    unknown = set(params) - _GENERATION_KEYS - {"seed"}
    if unknown:
        raise PlaygroundError(f"Unknown generation setting(s): {', '.join(sorted(unknown))}.")
    kwargs = caps.check_generation({k: v for k, v in params.items() if k in _GENERATION_KEYS and v is not None})
    kwargs = caps.bounded(kwargs)
    kwargs.setdefault("max_new_tokens", 128)
    if "do_sample" not in kwargs:
        kwargs["do_sample"] = bool(kwargs.get("temperature")) and kwargs.get("temperature", 0) > 0
    if not kwargs["do_sample"]:
        for key in ("temperature", "top_p", "top_k"):
            kwargs.pop(key, None)
    tokenizer = loaded.tokenizer
    if tokenizer.pad_token_id is None and tokenizer.eos_token_id is not None:
        kwargs["pad_token_id"] = tokenizer.eos_token_id
    if params.get("seed") is not None:
        import torch

        torch.manual_seed(check_number(params["seed"], "seed", 2**32 - 1))
    return kwargs


def complete(loaded: LoadedModel, prompt: str | list[dict], chat: bool | None = None, **params: Any) -> str:
    """Generate a reply (or continuation) and return only the new text."""
    import torch

    with gpu.lane(loaded.device), loaded.busy:
        if isinstance(prompt, list):
            prompt = fit_messages(loaded, prompt, _reserve(params), chat)
        encoded = encode_prompt(loaded, prompt, chat)
        with torch.no_grad():
            output = loaded.model.generate(**encoded, **generation_kwargs(loaded, params))
        new_tokens = output[0][encoded["input_ids"].shape[1] :]
        return loaded.tokenizer.decode(new_tokens, skip_special_tokens=True).strip()


def generate_only(loaded: LoadedModel, inputs: Any, params: dict) -> list:
    """The text-generation pipeline's output (4.x schema) from a model that only generates (the fast CPU copy,
    `services.models.fast_cpu`, which transformers' pipeline cannot drive): a prompt continued, or a conversation
    answered, each as [{"generated_text": ...}]."""
    settings = {k: v for k, v in params.items() if k in _GENERATION_KEYS or k == "seed"}
    if isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
        reply = complete(loaded, inputs, chat=True, **settings)
        return [{"generated_text": [*inputs, {"role": "assistant", "content": reply}]}]
    if isinstance(inputs, list):
        return [generate_only(loaded, text, params) for text in inputs]
    with loaded.busy:
        encoded = encode_prompt(loaded, inputs, False)
        output = loaded.model.generate(**encoded, **generation_kwargs(loaded, settings))
        new = output[0][encoded["input_ids"].shape[1] :]
        return [{"generated_text": inputs + loaded.tokenizer.decode(new, skip_special_tokens=True)}]


# A chat model summarizing on a CPU reads about 100 prompt tokens a second: longer prompts stop being interactive.
PROMPT_CAP_TOKENS = 2048


def fit_text(loaded: LoadedModel, text: str, reserve: int, keep_end: bool = False, budget: int | None = None) -> str:
    """The part of `text` that fits in the model's context with `reserve` tokens to spare (or in `budget` tokens):
    its beginning (a text to summarize), or with `keep_end` its end (a prompt to continue)."""
    from services.models.loading import token_limit

    if budget is None:
        budget = max(min(token_limit(loaded.model.config, loaded.tokenizer), PROMPT_CAP_TOKENS + reserve) - reserve, 1)
    if len(text) <= budget:  # a token covers at least one character: no need to count
        return text
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) <= budget:
        return text
    return loaded.tokenizer.decode(ids[-budget:] if keep_end else ids[:budget])


def fit_messages(loaded: LoadedModel, messages: list[dict], reserve: int, chat: bool | None = None) -> list[dict]:
    """The newest messages of a conversation that fit the model's context (as `fit_text` measures it) with
    `reserve` tokens to spare: the oldest turns after the system prompt go first, then the last message keeps its
    end. A conversation that fits is returned as it is."""
    from services.models.loading import token_limit

    budget = max(min(token_limit(loaded.model.config, loaded.tokenizer), PROMPT_CAP_TOKENS + reserve) - reserve, 1)
    if sum(len(m["content"]) + 16 for m in messages) <= budget:
        return messages  # a token covers at least one character, a turn's marks fewer than 16: no need to count

    def length(conversation: list[dict]) -> int:
        return encode_prompt(loaded, conversation, chat)["input_ids"].shape[1]

    messages = list(messages)
    first = 1 if messages and messages[0].get("role") == "system" else 0
    while len(messages) - first > 1 and length(messages) > budget:
        del messages[first]
    over = length(messages) - budget
    if over > 0:
        last = messages[-1]
        keep = len(loaded.tokenizer(last["content"], add_special_tokens=False)["input_ids"]) - over
        messages[-1] = {**last, "content": fit_text(loaded, last["content"], 0, keep_end=True, budget=max(keep, 1))}
    return messages


def _reserve(params: dict) -> int:
    return int(params.get("max_new_tokens") or 128) + 96  # the answer, plus the instruction and chat template


def summarize(loaded: LoadedModel, text: str, **params: Any) -> str:
    instruction = "Summarize the following text in one or two sentences. Reply with the summary only."
    text = fit_text(loaded, text, _reserve(params))
    return complete(loaded, f"{instruction}\n\n{text}", chat=True, **params)


def translate(
    loaded: LoadedModel, text: str, src_lang: str | None = None, tgt_lang: str | None = None, **params: Any
) -> str:
    source = language_name(src_lang, "English")
    target = language_name(tgt_lang, "French")
    instruction = f"Translate this {source} text into {target}. Reply with the {target} translation only."
    text = fit_text(loaded, text, _reserve(params))
    return complete(loaded, f"{instruction}\n\n{text}", chat=True, **params)


def _context_contrast(loaded: LoadedModel, without: list[dict], alpha: float, prompt_length: int):
    """Context-aware decoding (Shi et al., 2023, "Trusting Your Evidence"): each step's logits become
    (1 + alpha) * logits(prompt) - alpha * logits(the same prompt without its context), so what the context adds
    outweighs what the model believes anyway. The prompt without context keeps a KV cache of its own: one extra,
    short forward pass per token. Measured for RAG answers in bench/rag_quality.py (`--contrast`)."""
    import torch
    from transformers import LogitsProcessor

    plain = encode_prompt(loaded, without, True)["input_ids"]

    class ContextContrast(LogitsProcessor):
        def __init__(self):
            self.past, self.fed = None, 0

        def __call__(self, input_ids, scores):
            new = input_ids[:, prompt_length:]
            feed = torch.cat([plain, new], dim=1) if self.past is None else new[:, self.fed :]
            out = loaded.model(input_ids=feed, past_key_values=self.past, use_cache=True)
            self.past, self.fed = out.past_key_values, new.shape[1]
            return (1 + alpha) * scores - alpha * out.logits[:, -1, :].to(scores.dtype)

    return ContextContrast()


def stream(
    loaded: LoadedModel,
    prompt: str | list[dict],
    chat: bool | None = None,
    with_scores: bool = True,
    contrast: tuple[list[dict], float] | None = None,
    halt: threading.Event | None = None,
    **params: Any,
) -> Iterator[dict]:
    """Yield {"text": what is generated so far} as tokens arrive; the last item also has "tokens": each new token
    with its probability and the five likeliest alternatives at that step (from the model's raw logits).
    `contrast`: (the prompt's messages without their context, alpha) for context-aware decoding.
    `halt`: set it (a Stop button) to end the generation after the current token; the last item then has
    "stopped": True and still the tokens generated so far."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

    with loaded.busy:  # released before streaming; the generation below holds it in its worker
        if isinstance(prompt, str):
            prompt = fit_text(loaded, prompt, _reserve(params), keep_end=True)
        else:
            prompt = fit_messages(loaded, prompt, _reserve(params), chat)
        encoded = encode_prompt(loaded, prompt, chat)
        processors = LogitsProcessorList()
        if contrast and contrast[1] > 0 and has_chat_template(loaded):
            processors.append(
                _context_contrast(loaded, contrast[0], float(contrast[1]), encoded["input_ids"].shape[1])
            )
    kwargs = generation_kwargs(loaded, params)
    streamer = TextIteratorStreamer(loaded.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=600)
    result: dict[str, Any] = {}
    stop = threading.Event()

    pause = courtesy()
    on_cpu = loaded.device == "cpu"

    class _StopWhenAsked(StoppingCriteria):
        threads = torch.get_num_threads()

        def __call__(self, input_ids, scores, **kwargs) -> bool:
            pause.step_aside()  # between two tokens: a quick request of someone else's goes first
            if on_cpu and pause.threads() != self.threads:  # this worker thread's own OpenMP setting
                self.threads = pause.threads()
                torch.set_num_threads(self.threads)
            return stop.is_set() or (halt is not None and halt.is_set())

    def work() -> None:
        try:
            with gpu.lane(loaded.device), loaded.busy, torch.no_grad(), pause.long():
                result["output"] = loaded.model.generate(
                    **encoded, **kwargs, streamer=streamer, return_dict_in_generate=True, output_logits=with_scores,
                    stopping_criteria=StoppingCriteriaList([_StopWhenAsked()]), logits_processor=processors,
                )  # fmt: skip
        except Exception as err:  # surfaced to the caller below, after the streamer is released
            result["error"] = err
            streamer.end()

    # A short-lived worker owned by this call (transformers' streaming pattern). If the caller stops reading
    # (Stop button, closed page), the generator is closed: the worker is told to stop and is joined.
    worker = threading.Thread(target=work, name="generate-stream", daemon=True)
    worker.start()
    text = ""
    try:
        for piece in streamer:
            text += piece
            yield {"text": text}
    finally:
        stop.set()
        worker.join()
    if "error" in result:
        raise PlaygroundError(f"Generation failed: {result['error']}") from result["error"]
    final: dict[str, Any] = {"text": text}
    if result.get("output") is not None:  # how many tokens it made (the REST API's usage and finish_reason)
        final["new_tokens"] = int(result["output"].sequences.shape[1] - encoded["input_ids"].shape[1])
    if halt is not None and halt.is_set():
        final["stopped"] = True
    if with_scores:
        output = result["output"]
        with loaded.busy:
            final["tokens"] = token_probabilities(loaded, output.sequences[0][encoded["input_ids"].shape[1] :], output)
    yield final


def token_probabilities(loaded: LoadedModel, new_ids, output, top: int = 5) -> list[dict]:
    """For each generated token: its text, id, probability, and the `top` likeliest tokens at that step."""
    import torch

    tokenizer = loaded.tokenizer
    steps = []
    for position, token_id in enumerate(new_ids.tolist()):
        if position >= len(output.logits):
            break
        probs = torch.softmax(output.logits[position][0].float(), dim=-1)
        best = torch.topk(probs, top)
        steps.append(
            {
                "id": token_id,
                "token": tokenizer.decode([token_id]),
                "prob": float(probs[token_id]),
                "special": token_id in tokenizer.all_special_ids,
                "top": [
                    {"token": tokenizer.decode([i]), "prob": float(p)}
                    for i, p in zip(best.indices.tolist(), best.values.tolist(), strict=True)
                ],
            }
        )
    return steps
