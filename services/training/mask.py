"""The loss mask before training (`python -m services lora mask JOB.yaml`): the first conversations rendered with the
model's chat template, each token with `trained: true/false`, the counts, and what would go wrong: no token trained
(refused: "all labels -100"), the end-of-turn / EOS token masked (the model would never learn to stop), the
training render differing from the inference render, rows cut by max_length.
"""

from __future__ import annotations

from services.training.common import TrainingError
from services.training.config import TrainConfig

EXAMPLES = 3
STATISTICS_ROWS = 2000


def loss_mask(config: TrainConfig, owner: str | None = None, examples: int = EXAMPLES, tokenizer=None) -> dict:
    """The first `examples` training conversations, token by token with their trained flag, and counts over the
    first rows of the training data."""
    from services.data import sources as data_sources
    from services.training.chat_data import conversations, encode, end_ids, ensure_chat_template

    if config.task != "chat":
        raise TrainingError("The loss mask is shown for chat jobs (task: chat); other tasks train on their labels.")
    warnings = []
    if tokenizer is None:
        tokenizer = job_tokenizer(config, owner)
    warning = ensure_chat_template(tokenizer, config.model)
    if warning:
        warnings.append(warning)
    data = data_sources.load(config.dataset.source, config=config.dataset.config, split=config.dataset.split)
    train = data["train"]
    rows, columns = conversations(train.select(range(min(STATISTICS_ROWS, train.num_rows))), config)
    stops = end_ids(tokenizer)
    shown, totals = [], {"trained": 0, "masked": 0}
    truncated = differs = empty = 0
    stop_learned = False
    lengths, turns, roles = [], [], {}
    for i, messages in enumerate(rows):
        enc = encode(tokenizer, messages, config.loss_on, config.max_length)
        lengths.append(len(enc.offsets))
        turns.append(len(messages))
        for m in messages:
            roles[m["role"]] = roles.get(m["role"], 0) + 1
        truncated += enc.truncated
        differs += enc.render_differs
        empty += not any(enc.trained)
        stop_learned |= any(on and t in stops for t, on in zip(enc.input_ids, enc.trained, strict=True))
        if i >= examples:
            continue
        trained = sum(enc.trained)
        totals["trained"] += trained
        totals["masked"] += len(enc.trained) - trained
        shown.append(
            {
                "row": i + 1,
                "text": enc.text,
                "tokens": [
                    {"id": int(t), "token": _piece(tokenizer, enc.text, t, s, e), "trained": bool(on)}
                    for t, on, (s, e) in zip(enc.input_ids, enc.trained, enc.offsets, strict=False)
                ],
                "trained": trained,
                "masked": len(enc.trained) - trained,
                "truncated": enc.truncated,
            }
        )
    if totals["trained"] == 0:
        raise TrainingError(
            "No token of the first conversations would be trained (all labels -100): the loss mask is empty. "
            + (
                f"max_length {config.max_length} cuts them before the assistant answers: raise it."
                if truncated
                else "Check that the rows have assistant turns, or set loss_on: all."
            )
        )
    if config.loss_on == "completion" and not stop_learned:
        names = ", ".join(repr(tokenizer.convert_ids_to_tokens(i)) for i in sorted(stops)) or "none"
        warnings.append(
            f"The end-of-turn / EOS token ({names}) is masked in every conversation: the model would never learn "
            "to stop. Use a chat template that closes the assistant's turn with it, or raise max_length."
        )
    if differs:
        warnings.append(
            f"In {differs:,} conversation(s) the chat template renders the earlier turns differently once the "
            "conversation goes on: training sees a context that inference does not."
        )
    if truncated:
        warnings.append(
            f"{truncated:,} of {len(rows):,} conversations ({truncated / len(rows):.0%}) are longer than max_length "
            f"{config.max_length} and will be cut."
        )
    if empty:
        warnings.append(f"{empty:,} conversation(s) would train no token and are left out.")
    return {
        "model": config.model,
        "loss_on": config.loss_on,
        "columns": columns,
        "examples": shown,
        "counts": {
            **totals,
            "rows": len(rows),
            "truncated": truncated,
            "truncated_share": round(truncated / len(rows), 4) if rows else 0.0,
            "no_trained_tokens": empty,
        },
        "statistics": {"turns": _spread(turns), "tokens": _spread(lengths), "roles": roles},
        "warnings": warnings,
    }


def _spread(values: list[int]) -> dict:
    """min, median, 95th percentile and max of whole numbers (zeros for none)."""
    ordered = sorted(values) or [0]
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"min": ordered[0], "median": at(0.5), "p95": at(0.95), "max": ordered[-1]}


def job_tokenizer(config: TrainConfig, owner: str | None):
    """The tokenizer of the job's model (the mask and the estimate read conversations with it)."""
    import transformers

    from services.training.train import model_location

    location, _ = model_location(config.model, owner)
    try:
        return transformers.AutoTokenizer.from_pretrained(location, trust_remote_code=config.trust_remote_code)
    except Exception as err:
        raise TrainingError(f"'{config.model}' could not be loaded: {str(err).splitlines()[0][:300]}") from err


def _piece(tokenizer, text: str, token_id: int, start: int, end: int) -> str:
    """A token as the text it covers (readable, not byte-level symbols); a zero-width one by its name."""
    return text[start:end] if end > start else tokenizer.convert_ids_to_tokens(int(token_id))
