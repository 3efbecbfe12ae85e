"""From rows to model inputs, per task: labels read and numbered, rows without text or label left out, tokenised
with `datasets.map` (batched, cached on disk) and padded per batch by the right data collator (dynamic padding).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from services.data.report import label_values
from services.data.sources import DatasetError, require_columns
from services.training.config import TrainConfig

logger = logging.getLogger(__name__)


@dataclass
class Prepared:
    train: Any
    eval: Any
    test: Any | None
    collator: Any
    labels: list[str] = field(default_factory=list)
    dropped: int = 0  # rows left out (no text or no label)
    raw_eval: Any = None  # the evaluation rows before tokenisation, for sample predictions
    raw_test: Any = None  # the held-back test rows before tokenisation (chat: the prompts answered in the report)


def _blank(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and value != value:  # NaN
        return True
    return isinstance(value, str) and not value.strip()


def label_names(dataset, column: str, task: str, multi_label: bool) -> list[str]:
    """The label names, from a ClassLabel feature when the data has one, else the sorted values seen."""
    feature = dataset.features[column]
    inner = getattr(feature, "feature", feature)
    if hasattr(inner, "names"):
        return list(inner.names)
    seen: set[str] = set()
    for value in dataset[column]:
        if task == "token-classification":
            seen.update(str(v) for v in value or [])
        elif not _blank(value):
            seen.update(label_values(value, multi_label))
    return _ordered(seen, task)


def _ordered(seen: set[str], task: str) -> list[str]:
    """Label names in a stable order: sorted; for tags, "O" first and each entity's B-/I- side by side."""
    if task == "token-classification" and "O" in seen:
        return ["O", *sorted(seen - {"O"}, key=lambda t: (t.partition("-")[2], t))]
    return sorted(seen)


def prepare(config: TrainConfig, train, eval_, test, tokenizer, model_type: str, args) -> Prepared:
    """Tokenised train/eval(/test) datasets and the collator for `config.task`."""
    from transformers import (
        DataCollatorForLanguageModeling,
        DataCollatorForSeq2Seq,
        DataCollatorForTokenClassification,
        DataCollatorWithPadding,
    )

    data, task = config.dataset, config.task
    text, target = data.text_column, data.target(task)
    require_columns(train, {"text column": text, **({"label column": target} if target else {})})
    if data.max_samples:
        train = train.select(range(min(int(data.max_samples), train.num_rows)))
    before = train.num_rows + eval_.num_rows

    def usable(row) -> bool:
        value = row[text]
        if not value if isinstance(value, list) else _blank(value):
            return False
        if task == "causal-lm":
            return True
        if task == "token-classification":
            return bool(row[target]) and len(row[target]) == len(value)
        if task == "text-regression":
            try:
                return float(row[target]) == float(row[target])  # NaN is not a target
            except (TypeError, ValueError):
                return False
        return not _blank(row[target])

    with args.main_process_first(desc="filter"):
        train, eval_ = train.filter(usable), eval_.filter(usable)
        test = test.filter(usable) if test is not None else None
    if train.num_rows == 0:
        raise DatasetError("No row has both a text and a label: there is nothing to train on.")
    if eval_.num_rows == 0:
        raise DatasetError("No evaluation row has both a text and a label: hold out more data or use another split.")
    dropped = before - train.num_rows - eval_.num_rows
    labels = label_names(train, target, task, data.multi_label) if task in _LABELLED else []
    if task == "text-classification" and len(labels) < 2:
        raise DatasetError(f"The training rows have a single label ('{labels[0]}'): a classifier needs two or more.")
    feature = train.features[target] if target else None
    named = hasattr(getattr(feature, "feature", feature), "names")  # ClassLabel: the values are indices already
    if task in _LABELLED and not named:
        # A label only the held-out or test rows have (a small max_samples, a rare tag) still gets a place in the
        # head: never trained, so those rows count as misses instead of stopping the job.
        unseen = {name for part in (eval_, test) if part is not None
                  for name in label_names(part, target, task, data.multi_label)} - set(labels)  # fmt: skip
        if unseen:
            logger.warning("labels only in the evaluation or test rows: %s", ", ".join(sorted(unseen)))
            labels = _ordered(set(labels) | unseen, task)
    fn = _encoder(config, tokenizer, labels, named, model_type)
    raw_eval = eval_
    with args.main_process_first(desc="tokenize"):
        columns = train.column_names
        train = train.map(fn, batched=True, remove_columns=columns, desc="Tokenising train")
        eval_ = eval_.map(fn, batched=True, remove_columns=columns, desc="Tokenising eval")
        test = test.map(fn, batched=True, remove_columns=test.column_names, desc="Tokenising test") if test else None
    if task == "causal-lm":
        collator = DataCollatorForLanguageModeling(tokenizer, mlm=False)
    elif task == "summarization":
        collator = DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=-100)
    elif task == "token-classification":
        collator = DataCollatorForTokenClassification(tokenizer)
    else:
        collator = DataCollatorWithPadding(tokenizer)
    return Prepared(train, eval_, test, collator, labels, dropped, raw_eval)


_LABELLED = ("text-classification", "token-classification")


def _encoder(config: TrainConfig, tokenizer, labels: list[str], named: bool, model_type: str):
    data, task, max_length = config.dataset, config.task, config.max_length
    text, target = data.text_column, data.target(task)
    index = {name: i for i, name in enumerate(labels)}

    def label_id(value) -> int:
        return int(value) if named else index[label_values(value)[0]]

    def classification(batch):
        out = tokenizer([str(t) for t in batch[text]], truncation=True, max_length=max_length)
        if data.multi_label:
            out["labels"] = [[1.0 if name in label_values(v, True) else 0.0 for name in labels] for v in batch[target]]
        else:
            out["labels"] = [label_id(v) for v in batch[target]]
        return out

    def regression(batch):
        out = tokenizer([str(t) for t in batch[text]], truncation=True, max_length=max_length)
        out["labels"] = [float(v) for v in batch[target]]
        return out

    def tokens(batch):
        words = [[str(w) for w in ws] for ws in batch[text]]
        out = tokenizer(words, is_split_into_words=True, truncation=True, max_length=max_length)
        all_labels = []
        for i, tags in enumerate(batch[target]):
            ids = [label_id(t) for t in tags]
            previous, row = None, []
            for word in out.word_ids(i):
                # Only a word's first piece is scored; the rest (and special tokens) are ignored (-100).
                row.append(-100 if word is None or word == previous else ids[word])
                previous = word
            all_labels.append(row)
        out["labels"] = all_labels
        return out

    prefix = "summarize: " if model_type == "t5" else ""

    def summaries(batch):
        out = tokenizer([prefix + str(t) for t in batch[text]], truncation=True, max_length=max_length)
        targets = tokenizer(
            text_target=[str(s) for s in batch[target]], truncation=True, max_length=config.max_target_length
        )
        out["labels"] = targets["input_ids"]
        return out

    def blocks(batch):
        # Texts joined (each ending with EOS) and cut into max_length blocks: no padding is wasted.
        eos = tokenizer.eos_token or ""
        ids = tokenizer([str(t) + eos for t in batch[text]])["input_ids"]
        flat = [token for row in ids for token in row]
        size = max_length
        usable = max(len(flat) // size * size, size if len(flat) >= 8 else 0)
        chunks = [flat[i : i + size] for i in range(0, usable, size)]
        return {"input_ids": chunks, "attention_mask": [[1] * len(c) for c in chunks]}

    return {
        "text-classification": classification,
        "text-regression": regression,
        "token-classification": tokens,
        "summarization": summaries,
        "causal-lm": blocks,
    }[task]
