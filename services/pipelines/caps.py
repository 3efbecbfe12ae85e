"""The caps every pipeline entry point applies before a model is loaded or run, with the numbers of
`services.core.limits`.

How long a text may be, how many texts, labels and sentences one call may send, and the generation settings
(tokens to add, beams, top_k). A request above a cap is refused with a `LimitExceeded` whose sentence names the cap.
Every generation is also bounded in time: transformers stops it after `generation_seconds` (its `max_time`), so no
request holds an inference slot for long.
"""

from __future__ import annotations

from typing import Any

from services.core.errors import PlaygroundError
from services.core.limits import LimitExceeded, check_count, check_number, check_text, get_limits

# Generation settings that cost tokens or beams: (name, the cap's field in Limits, minimum).
_GENERATION_NUMBERS = (
    ("max_new_tokens", "new_tokens", 1),
    ("min_new_tokens", "new_tokens", 0),
    ("max_length", "sequence_tokens", 1),
    ("min_length", "sequence_tokens", 0),
    ("num_beams", "beams", 1),
    ("num_return_sequences", "beams", 1),
    ("top_k", "top_k", 0),
)
_GENERATION_FLOATS = ("temperature", "top_p", "repetition_penalty", "length_penalty")


def check_length(text: Any, what: str = "That text") -> None:
    """A text of at most `text_chars` characters (the pipelines' text cap)."""
    cap = get_limits().text_chars
    if isinstance(text, str) and len(text) > cap:
        raise LimitExceeded(f"{what} is too long: {len(text):,} characters, and at most {cap:,} are accepted here.")


def check_texts(texts: list, what: str = "texts", count: bool = True) -> None:
    """Texts of one request: at most `list_items` of them (unless `count` is off), together at most `text_chars`."""
    if count:
        check_count(texts, what)
    for text in texts:
        check_length(text)
    total = sum(len(t) for t in texts if isinstance(t, str))
    cap = get_limits().text_chars
    if total > cap:
        raise LimitExceeded(
            f"Together these {what} are {total:,} characters long; at most {cap:,} are accepted in one request."
        )


def check_labels(labels: Any) -> list[str]:
    """Candidate labels (a list, or one text separated by commas): at most `list_items`, each a short text."""
    if isinstance(labels, str):
        labels = labels.split(",")
    if not isinstance(labels, list | tuple) or not all(isinstance(label, str) for label in labels):
        raise PlaygroundError("The candidate labels must be texts, like ['sports', 'politics'] or 'sports, politics'.")
    labels = [label.strip() for label in labels if label.strip()]
    check_count(labels, "candidate labels")
    cap = get_limits().item_chars
    for label in labels:
        check_text(label, f"The label '{label[:20]}…'", cap)
    return labels


def check_generation(params: dict) -> dict:
    """`params` with the generation settings that cost tokens or beams checked against their caps (whole numbers)."""
    limits = get_limits()
    params = dict(params)
    for name, field, minimum in _GENERATION_NUMBERS:
        if params.get(name) is not None:
            params[name] = check_number(params[name], name, getattr(limits, field), minimum)
    for name in _GENERATION_FLOATS:
        if params.get(name) is not None:
            params[name] = _number(params[name], name)
    if params.get("max_time") is not None:
        params["max_time"] = time_bound(params["max_time"])
    return params


def _number(value: Any, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise LimitExceeded(f"{name} must be a number, not '{str(value)[:40]}'.") from err
    if not 0 <= number < float("inf"):
        raise LimitExceeded(f"{name} must be a number of 0 or more, not {str(value)[:40]}.")
    return number


def time_bound(asked: Any = None) -> float:
    """Seconds a generation may run: what was asked, at most `generation_seconds`."""
    cap = float(get_limits().generation_seconds)
    if asked is None:
        return cap
    try:
        seconds = float(asked)
    except (TypeError, ValueError) as err:
        raise LimitExceeded(f"max_time is a number of seconds, not '{str(asked)[:40]}'.") from err
    if not seconds > 0:
        raise LimitExceeded(f"max_time must be more than 0 seconds (at most {cap:,.0f}).")
    return min(seconds, cap)


def bounded(kwargs: dict) -> dict:
    """Generation keyword arguments with the time bound set (transformers' `max_time`)."""
    return {**kwargs, "max_time": time_bound(kwargs.get("max_time"))}


def check_results(params: dict) -> dict:
    """Settings of the tasks that rank results: top_k, question answering's spans and windows, fill-mask targets."""
    limits = get_limits()
    params = dict(params)
    if params.get("top_k") is not None:
        params["top_k"] = check_number(params["top_k"], "top_k", limits.top_k, 1)
    for name, minimum in (("max_answer_len", 1), ("max_seq_len", 1), ("doc_stride", 0)):
        if params.get(name) is not None:
            params[name] = check_number(params[name], name, limits.sequence_tokens, minimum)
    if isinstance(params.get("targets"), list):
        check_count(params["targets"], "targets")
    if params.get("candidate_labels") is not None:
        params["candidate_labels"] = check_labels(params["candidate_labels"])
    if params.get("hypothesis_template") is not None:
        check_text(params["hypothesis_template"], "The hypothesis template", limits.item_chars)
    return params


def check_params(task: str, params: dict) -> dict:
    """The settings of one call checked against the caps (before any model work); numbers made whole numbers."""
    if task in ("text-generation", "summarization", "translation"):
        return check_generation(params)
    return check_results(params)


def check_inputs(task: str, inputs: Any) -> None:
    """Refuse, in a sentence, inputs that are missing, malformed or above a cap (before the model is loaded)."""
    if task == "question-answering":
        items = inputs if isinstance(inputs, list) else [inputs]
        check_count(items, "questions")
        for item in items:
            if not isinstance(item, dict) or not str(item.get("question") or "").strip():
                raise PlaygroundError("Please type a question.")
            if not str(item.get("context") or "").strip():
                raise PlaygroundError("Please paste a context: the text in which the answer should be found.")
            check_length(item["question"], "That question")
            check_length(item["context"], "That context")
        check_texts([str(i["context"]) for i in items], "contexts", count=False)
        return
    if task == "sentence-similarity":
        if not isinstance(inputs, dict) or not str(inputs.get("source_sentence") or "").strip():
            raise PlaygroundError("Please type a source sentence to compare the others with.")
        sentences = inputs.get("sentences") or []
        if not isinstance(sentences, list) or not all(isinstance(s, str) for s in sentences):
            raise PlaygroundError("The sentences to compare with must be a list of texts.")
        if not [s for s in sentences if s.strip()]:
            raise PlaygroundError("Please give at least one sentence to compare with the source sentence.")
        check_texts(sentences, "sentences")
        check_texts([str(inputs["source_sentence"]), *sentences], "sentences", count=False)
        return
    texts = inputs if isinstance(inputs, list) else [inputs]
    if task == "text-generation" and isinstance(inputs, list) and inputs and isinstance(inputs[0], dict):
        _check_messages(inputs)  # a chat: a list of {"role", "content"} messages
        return
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise PlaygroundError("Please type some text first.")
    check_texts(texts)


def _check_messages(messages: list) -> None:
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
               for m in messages):  # fmt: skip
        raise PlaygroundError('Each message of a chat needs a "role" and a "content" text.')
    check_texts([m["content"] for m in messages], "messages")
