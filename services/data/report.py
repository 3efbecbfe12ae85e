"""What the data looks like for one task, before any training: the checks a careful person would make by hand.

`analyze()` reports labels and their balance, rows without text or label, duplicate texts, and the token lengths with
the model's own tokenizer (a histogram and the share `max_length` would cut). Up to `FULL_SCAN_ROWS` rows are counted
exactly; bigger data is judged on a seeded sample of `SAMPLE_SCAN_ROWS` and says so. Data that cannot train the task
(one class only, numbers where text belongs, no usable rows) is refused with a sentence.
"""

from __future__ import annotations

import math
from collections import Counter

from services.data.sources import DatasetError, load, require_columns, sample_rows

FULL_SCAN_ROWS = 100_000
SAMPLE_SCAN_ROWS = 20_000  # rows judged when there are more than FULL_SCAN_ROWS
BINS = 20
ANALYSIS = 2000  # rows looked at for checks that need no exact count
CLASSIFICATION = ("text-classification",)
TEXT_TASKS = ("text-classification", "text-regression", "summarization", "causal-lm")


def columns_for(task: str, text_column: str | None, label_column: str | None) -> dict[str, str | None]:
    roles = {"text_column": text_column}
    if task in ("text-classification", "token-classification"):
        roles["label_column"] = label_column
    elif task == "text-regression":
        roles["target_column"] = label_column
    elif task == "summarization":
        roles["summary_column"] = label_column
    return roles


def _missing(value) -> bool:
    return (
        value is None
        or (isinstance(value, float) and math.isnan(value))
        or (isinstance(value, str) and not value.strip())
    )


def _as_text(value) -> str:
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


def _numeric(value) -> bool:
    if isinstance(value, int | float):
        return True
    try:
        float(str(value).replace(",", ""))
    except ValueError:
        return False
    return True


def label_values(value, multi_label: bool = False) -> list[str]:
    """The label(s) of one row as strings (a list for multi-label; '1.0' read from a CSV becomes '1')."""
    if isinstance(value, list):
        return [str(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    if multi_label:
        return [part.strip() for part in text.replace("|", ",").split(",") if part.strip()]
    return [text]


def histogram(lengths: list[int], bins: int = BINS) -> list[dict]:
    if not lengths:
        return []
    top = max(lengths)
    width = max(1, math.ceil((top + 1) / bins))
    counts = Counter(min(n // width, bins - 1) for n in lengths)
    return [
        {"start": i * width, "end": (i + 1) * width, "count": counts.get(i, 0)}
        for i in range(bins)
        if i * width <= top
    ]


def analyze(
    source: str,
    task: str,
    text_column: str | None,
    label_column: str | None = None,
    *,
    model: str | None = None,
    max_length: int = 128,
    multi_label: bool = False,
    config: str | None = None,
    owner: str | None = None,
) -> dict:
    data = load(source, config=config)
    train = data["train"]
    roles = columns_for(task, text_column, label_column)
    require_columns(train, roles)
    exact = train.num_rows <= FULL_SCAN_ROWS
    scan = train if exact else sample_rows(train, SAMPLE_SCAN_ROWS)
    texts = [_as_text(v) for v in scan[text_column]]
    report: dict = {
        "rows": train.num_rows,
        "splits": {name: part.num_rows for name, part in data.items()},
        "exact": exact,
        "empty": sum(1 for t in texts if not t.strip()),
        "duplicates": len(texts) - len(set(texts)),
        "warnings": [],
    }
    filled = [t for t in texts if t.strip()]
    if not filled:
        raise DatasetError(f"The column '{text_column}' is empty in every row: there is no text to train on.")
    if task in TEXT_TASKS and sum(_numeric(t) for t in filled[:ANALYSIS]) >= 0.9 * len(filled[:ANALYSIS]):
        raise DatasetError(f"The column '{text_column}' holds numbers, not text: choose the column with the text.")
    if task in ("text-classification", "token-classification"):
        _labels(report, scan[label_column], task, multi_label)
    elif task == "text-regression":
        values = scan[label_column]
        bad = sum(1 for v in values if _missing(v) or not _numeric(v))
        if bad == len(values):
            raise DatasetError(f"The column '{label_column}' has no numbers: a regression needs a number per row.")
        report["missing_labels"] = bad
        numbers = [float(v) for v in values if not _missing(v) and _numeric(v)]
        report["target"] = {"min": min(numbers), "max": max(numbers), "mean": sum(numbers) / len(numbers)}
    elif task == "summarization":
        report["missing_labels"] = sum(1 for v in scan[label_column] if _missing(v))
    if report.get("missing_labels"):
        report["warnings"].append(
            f"{report['missing_labels']:,} row(s) have no usable {'summary' if task == 'summarization' else 'label'}: "
            "they are left out of training."
        )
    if report["empty"]:
        report["warnings"].append(f"{report['empty']:,} row(s) have no text: they are left out of training.")
    if report["duplicates"]:
        report["warnings"].append(f"{report['duplicates']:,} row(s) repeat a text seen before.")
    if not exact:
        report["warnings"].append(f"Counted on a sample of {SAMPLE_SCAN_ROWS:,} of the {train.num_rows:,} rows.")
    if model:
        report["lengths"] = _lengths(sample_rows(train), text_column, model, max_length, owner)
        if report["lengths"]["truncated_share"] > 0.1:
            report["warnings"].append(
                f"{report['lengths']['truncated_share']:.0%} of the texts are longer than max_length "
                f"({max_length} tokens) and will be cut; raise max_length if the end matters."
            )
    return report


def _labels(report: dict, values: list, task: str, multi_label: bool) -> None:
    counts: Counter = Counter()
    missing = 0
    for value in values:
        if task == "token-classification":
            counts.update(str(v) for v in (value or []))
            continue
        if _missing(value):
            missing += 1
            continue
        counts.update(label_values(value, multi_label))
    report["missing_labels"] = missing
    total = sum(counts.values()) or 1
    report["labels"] = [{"label": k, "count": n, "share": n / total} for k, n in sorted(counts.items())]
    if task in CLASSIFICATION and len(counts) < 2:
        only = next(iter(counts), "none")
        raise DatasetError(
            f"Every labelled row has the same label ('{only}'): a classifier needs at least two classes."
        )
    if task in CLASSIFICATION and len(counts) > 1:
        shares = [n / total for n in counts.values()]
        if max(shares) > 0.8:
            report["warnings"].append(
                f"The classes are unbalanced (the largest holds {max(shares):.0%}): accuracy alone will flatter the "
                "model; watch F1."
            )


def _lengths(dataset, text_column: str, model: str, max_length: int, owner: str | None) -> dict:
    from services.tokenizers.analysis import load_tokenizer

    tokenizer = load_tokenizer(model, owner).hf
    values = dataset[text_column]
    if values and isinstance(values[0], list):
        encoded = tokenizer([[str(w) for w in v] for v in values], is_split_into_words=True)["input_ids"]
    else:
        encoded = tokenizer([_as_text(v) for v in values])["input_ids"]
    lengths = sorted(len(ids) for ids in encoded)
    return {
        "histogram": histogram(lengths),
        "p50": lengths[len(lengths) // 2],
        "p95": lengths[min(len(lengths) - 1, int(len(lengths) * 0.95))],
        "max": lengths[-1],
        "truncated_share": sum(n > max_length for n in lengths) / len(lengths),
        "max_length": max_length,
        "sampled": len(lengths),
    }
