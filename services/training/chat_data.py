"""Conversations for a chat (SFT) job: rows read as `{role, content}` turns, checked, rendered with the model's chat
template and tokenised with a loss mask that trains the assistant's turns only (or every token, `loss_on: all`).

Columns recognised: `messages` (a list of turns), `prompt` + `completion`, and `instruction` (+ `input`) +
`output`; the config may name them (`dataset.messages_column`, `prompt_column`, `completion_column`,
`input_column`). The mask is computed here, not by the template: most chat templates (SmolLM2's among them) have no
`{% generation %}` markers, which trl's `assistant_only_loss` needs. Each assistant turn's characters are found by
rendering the conversation up to it (with the generation prompt) and up to its end, and a token is trained when
its characters fall in such a turn, so the end-of-turn token is learned with the answer (the model learns to stop).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from services.data.sources import DatasetError

logger = logging.getLogger(__name__)

ROLES = ("system", "user", "assistant")
MESSAGE_COLUMNS = ("messages", "conversation", "conversations", "chat")
PAIRS = (("prompt", "completion"), ("instruction", "output"), ("question", "answer"), ("input", "output"))
END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "</s>", "<|endoftext|>")
# Given to a model that has no chat template (said in a warning): ChatML, each assistant turn closed by EOS.
DEFAULT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class Encoded:
    """One conversation as model inputs: ids, which of them are trained, and what was noticed on the way."""

    input_ids: list[int]
    trained: list[bool]
    truncated: bool = False
    render_differs: bool = False
    text: str = ""
    offsets: list[tuple[int, int]] = field(default_factory=list)


def chat_columns(config, columns: list[str]) -> dict[str, str]:
    """Which columns hold the conversation: {"messages": c} or {"prompt": c, "completion": c[, "input": c]}."""
    data = config.dataset
    named = [n for n in (data.messages_column, data.prompt_column, data.completion_column, data.input_column) if n]
    for name in named:
        if name not in columns:
            raise DatasetError(f"There is no column '{name}'; the columns are {', '.join(columns)}.")
    if data.messages_column:
        return {"messages": data.messages_column}
    if data.prompt_column or data.completion_column:
        if not (data.prompt_column and data.completion_column):
            raise DatasetError("Set both dataset.prompt_column and dataset.completion_column (or messages_column).")
        found = {"prompt": data.prompt_column, "completion": data.completion_column}
        return {**found, "input": data.input_column} if data.input_column else found
    for name in MESSAGE_COLUMNS:
        if name in columns:
            return {"messages": name}
    for prompt, completion in PAIRS:
        if prompt in columns and completion in columns:
            extra = {"input": "input"} if prompt == "instruction" and "input" in columns else {}
            return {"prompt": prompt, "completion": completion, **extra}
    raise DatasetError(
        f"No column holds conversations: the columns are {', '.join(columns)}. A chat dataset needs a 'messages' "
        "column (a list of {role, content}), or 'prompt' and 'completion', or 'instruction' and 'output'; "
        "or name yours with dataset.messages_column or prompt_column + completion_column."
    )


def to_messages(row: dict, columns: dict[str, str], number: int) -> list[dict]:
    """A row as checked turns: roles known, an optional system turn first, then user and assistant in turn."""
    if "messages" in columns:
        turns = row[columns["messages"]]
        if not isinstance(turns, list) or not all(isinstance(t, dict) for t in turns):
            raise DatasetError(f"Row {number}: '{columns['messages']}' must be a list of {{role, content}} turns.")
        turns = [{"role": str(t.get("role", "")).strip().lower(), "content": t.get("content")} for t in turns]
    else:
        prompt = "" if row[columns["prompt"]] is None else str(row[columns["prompt"]])
        extra = row.get(columns["input"]) if "input" in columns else None
        if extra is not None and str(extra).strip():
            prompt = f"{prompt}\n\n{extra}"
        answer = row[columns["completion"]]
        turns = [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    check_turns(turns, number)
    return turns


def check_turns(turns: list[dict], number: int) -> None:
    if not turns:
        raise DatasetError(f"Row {number} has no turns.")
    for i, turn in enumerate(turns):
        if turn["role"] not in ROLES:
            raise DatasetError(
                f"Row {number}, turn {i + 1}: the role '{turn['role']}' is unknown; use system, user or assistant."
            )
        if turn["role"] == "assistant" and not str(turn["content"] or "").strip():
            raise DatasetError(
                f"Row {number}, turn {i + 1}: the assistant's turn is empty: there is nothing to learn."
            )
        if turn["role"] == "system" and i > 0:
            raise DatasetError(f"Row {number}: a system turn may only come first (turn {i + 1} is one).")
        turn["content"] = "" if turn["content"] is None else str(turn["content"])
    talk = [t["role"] for t in turns if t["role"] != "system"]
    expected = ["user" if i % 2 == 0 else "assistant" for i in range(len(talk))]
    if talk != expected:
        where = next((i for i, (a, b) in enumerate(zip(talk, expected, strict=False)) if a != b), len(talk))
        raise DatasetError(
            f"Row {number}: the turns are out of order ({' → '.join(talk) or 'none'}): after an optional system "
            f"turn, user and assistant take turns, starting with the user (turn {where + 1} breaks it)."
        )
    if "assistant" not in talk:
        raise DatasetError(f"Row {number} has no assistant turn: there is no answer to learn.")


def ensure_chat_template(tokenizer, model: str) -> str | None:
    """Give a tokenizer without a chat template the default one; returns the warning that says so (or None)."""
    if getattr(tokenizer, "chat_template", None):
        return None
    tokenizer.chat_template = DEFAULT_TEMPLATE
    return (
        f"'{model}' has no chat template: the playground uses ChatML (<|im_start|>role ... <|im_end|>), saved with "
        "the adapter so that inference renders the same way."
    )


def end_ids(tokenizer) -> set[int]:
    """Token ids that end a turn or a text: EOS and the usual end-of-turn tokens this vocabulary has."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    vocab = tokenizer.get_vocab()
    return ids | {vocab[t] for t in END_OF_TURN if t in vocab}


def _render(tokenizer, messages, **kwargs) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, **kwargs)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]], bool]:
    """The rendered text and the character span of each assistant turn (its answer and its end-of-turn marks).
    The third value says the template renders a conversation's beginning differently once it goes on (the model is
    then trained on a context it does not see at inference); the answer's own text is used as the span then."""
    full = _render(tokenizer, messages)
    spans, differs, searched = [], False, 0
    for i, turn in enumerate(messages):
        if turn["role"] != "assistant":
            continue
        before = _render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = _render(tokenizer, messages[: i + 1])
        if full.startswith(before) and full.startswith(upto) and len(upto) > len(before):
            spans.append((len(before), len(upto)))
        else:
            differs = True
            start = full.find(turn["content"], searched)
            if start < 0:
                continue
            spans.append((start, start + len(turn["content"])))
        searched = spans[-1][1]
    return full, spans, differs


def encode(tokenizer, messages: list[dict], loss_on: str, max_length: int) -> Encoded:
    """Token ids and the trained flag of each (cut at max_length)."""
    text, spans, differs = assistant_spans(tokenizer, messages)
    out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = list(out["input_ids"]), [tuple(o) for o in out["offset_mapping"]]
    inside = [any(s < b and e > a for a, b in spans) for s, e in offsets]
    trained = [True] * len(ids) if loss_on == "all" else inside
    truncated = len(ids) > max_length
    return Encoded(
        ids[:max_length], trained[:max_length], truncated, differs, text, [(int(s), int(e)) for s, e in offsets]
    )


def conversations(dataset, config) -> tuple[list[list[dict]], dict[str, str]]:
    """Every row of `dataset` as checked turns (the first bad row stops with its number and what is wrong)."""
    columns = chat_columns(config, list(dataset.column_names))
    return [to_messages(row, columns, i + 1) for i, row in enumerate(dataset)], columns


def tokenise(dataset, config, tokenizer):
    """(a `datasets.Dataset` of input_ids + labels, statistics): labels are -100 where the loss is masked; rows
    with no trained token left after the cut are dropped and counted."""
    from datasets import Dataset

    rows, _ = conversations(dataset, config)
    ids, labels, truncated, empty, differs = [], [], 0, 0, 0
    for messages in rows:
        enc = encode(tokenizer, messages, config.loss_on, config.max_length)
        truncated += enc.truncated
        differs += enc.render_differs
        if not any(enc.trained):
            empty += 1
            continue
        ids.append(enc.input_ids)
        labels.append([t if on else -100 for t, on in zip(enc.input_ids, enc.trained, strict=True)])
    stats = {"rows": len(rows), "truncated": truncated, "no_trained_tokens": empty, "render_differs": differs}
    return Dataset.from_dict({"input_ids": ids, "labels": labels}), stats
