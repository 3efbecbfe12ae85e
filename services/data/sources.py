"""Data for fine-tuning: bundled samples, uploaded files and Hub datasets, checked and described before training.

`load()` turns a source into a `datasets.DatasetDict` (Arrow files on disk, memory-mapped: two million rows do not
fill the memory). `describe()` previews a source with column types; `analyze()` reports what matters for a task:
labels and their balance, empty and duplicate rows, missing labels, and the token lengths with the model's own
tokenizer (on a seeded sample). `split()` holds out evaluation data (stratified for classification). Every problem
a user can cause is a `DatasetError` with one sentence.
"""

from __future__ import annotations

import csv
import difflib
import logging
from pathlib import Path

from services.core.config import PROJECT_ROOT, get_settings
from services.core.errors import PlaygroundError
from services.tokenizers.corpus import CorpusError, check_text_file

logger = logging.getLogger(__name__)

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "assets" / "datasets"
SAMPLE_PREFIX = "samples/"
# What each bundled sample is for, and its columns (the UI fills the mapping from this).
SAMPLES = {
    "samples/sentiment": ("text-classification", {"text_column": "text", "label_column": "label"}),
    "samples/ner": ("token-classification", {"text_column": "tokens", "label_column": "ner_tags"}),
    "samples/summaries": ("summarization", {"text_column": "text", "summary_column": "summary"}),
    "samples/stories": ("causal-lm", {"text_column": "text"}),
    # "question [SEP] heading: sentence" -> answers / does not: RAG chat's answerability classifier's data
    "samples/answerable-sentences": ("text-classification", {"text_column": "text", "label_column": "label"}),
}
# The chat samples (the LoRA trainer's; the Fine-tune tab's list above stays as it is): a format-following task, a
# short-answer task and answers grounded in numbered sources (RAG chat's prompt: several sources, or the one sentence
# RAG chat shows SmolLM2 at a time), each with a held-back test split worded unlike (or about other subjects than)
# its training rows.
CHAT_SAMPLES = {
    "samples/chat-extract": ("chat", {"messages_column": "messages"}),
    "samples/chat-days": ("chat", {"prompt_column": "prompt", "completion_column": "completion"}),
    "samples/grounded-answers": ("chat", {"messages_column": "messages"}),
    "samples/grounded-sentences": ("chat", {"messages_column": "messages"}),
}
BUILDERS = {".csv": "csv", ".tsv": "csv", ".txt": "text", ".json": "json", ".jsonl": "json", ".parquet": "parquet"}
PREVIEW_ROWS = 20
ANALYSIS_ROWS = 2000


class DatasetError(PlaygroundError):
    """The data cannot be used as asked; the message says why in one sentence."""


def looks_like_path(source: str) -> bool:
    """Whether a source names a file or folder rather than a Hub id: a suffix, a path-like start, or anything that
    exists on this machine relative to where the app runs (`datasets` would read such a folder, not the Hub)."""
    source = (source or "").strip()
    if Path(source).suffix or source.startswith(("/", "~", ".")):
        return True
    return any((base / source).exists() for base in (Path.cwd(), PROJECT_ROOT)) if source else False


def sample_ids() -> list[str]:
    return [s for s in SAMPLES if (SAMPLES_DIR / s).is_dir()]


def chat_sample_ids() -> list[str]:
    return [s for s in CHAT_SAMPLES if (SAMPLES_DIR / s).is_dir()]


def _files(folder: Path) -> dict[str, list[str]]:
    splits: dict[str, list[str]] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in BUILDERS and path.stem.split("_")[0] in ("train", "test", "validation"):
            splits.setdefault(path.stem.split("_")[0], []).append(str(path))
    return splits


def check_file(path: Path) -> str:
    """The `datasets` builder for a file, after checking that it is what its extension says."""
    if not path.is_file():
        raise DatasetError(f"There is no file '{path.name}'.")
    builder = BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DatasetError(
            f"'{path.name}' is not a data file the launcher reads: use CSV, TSV, JSON, JSONL, Parquet or TXT."
        )
    if path.stat().st_size == 0:
        raise DatasetError(f"'{path.name}' is empty: it has 0 rows.")
    if builder == "parquet":
        if path.open("rb").read(4) != b"PAR1":
            raise DatasetError(f"'{path.name}' is not a Parquet file, whatever its name says.")
        return builder
    try:
        check_text_file(path)
    except CorpusError as err:
        raise DatasetError(str(err)) from err
    if builder == "json":
        head = path.open("rb").read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head[:1] not in (b"{", b"["):
            raise DatasetError(f"'{path.name}' is not JSON: it should hold objects such as {{\"text\": ...}}.")
    return builder


def _csv_options(path: Path) -> dict:
    """Delimiter (comma, semicolon, tab or bar, sniffed) and a BOM-tolerant encoding."""
    head = path.open(encoding="utf-8-sig", errors="replace").read(65536)
    default = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        delimiter = csv.Sniffer().sniff(head, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = default
    return {"delimiter": delimiter, "encoding": "utf-8-sig"}


def load(source: str, *, config: str | None = None, split: str | None = None):
    """A `DatasetDict` for a bundled sample id, a file path, or a Hub dataset id (online only)."""
    import datasets

    source = (source or "").strip()
    if not source:
        raise DatasetError("Choose a dataset first: a bundled sample, an uploaded file or a Hub dataset.")
    cache = str(get_settings().home / "cache" / "datasets")
    kwargs: dict = {"cache_dir": cache}
    if source.startswith(SAMPLE_PREFIX):
        folder = SAMPLES_DIR / source
        if (source not in SAMPLES and source not in CHAT_SAMPLES) or not folder.is_dir():
            known = ", ".join(sample_ids() + chat_sample_ids())
            raise DatasetError(f"There is no bundled sample '{source}'. Samples: {known}.")
        files = _files(folder)
        builder = BUILDERS[Path(files["train"][0]).suffix.lower()]
    elif Path(source).suffix.lower() in BUILDERS or Path(source).expanduser().is_file():
        path = Path(source).expanduser()
        builder = check_file(path)
        files = {"train": [str(path)]}
        if path.suffix.lower() in (".csv", ".tsv"):
            kwargs.update(_csv_options(path))
    else:
        return _load_hub(source, config, split, kwargs)
    if builder == "csv" and not kwargs.get("delimiter"):
        kwargs.update(_csv_options(Path(files["train"][0])))
    if builder == "text":
        kwargs["sample_by"] = "paragraph"  # stories and prose: a paragraph per row, grouped into blocks later
    try:
        data = datasets.load_dataset(builder, data_files=files, **kwargs)
    except Exception as err:
        if "corresponds to no data" in str(err):
            raise DatasetError(f"'{Path(files['train'][0]).name}' has no rows.") from err
        raise DatasetError(
            f"'{Path(files['train'][0]).name}' could not be read as {builder.upper()}: {_first_line(err)}"
        ) from err
    return _non_empty(data, source)


def _load_hub(source: str, config: str | None, split: str | None, kwargs: dict):
    import datasets

    from services.hub import push as hub

    if not hub.is_valid_repo_id(source) or looks_like_path(source):
        raise DatasetError(f"'{source}' is neither a bundled sample, a file nor a Hub dataset id.")
    if get_settings().offline:
        raise DatasetError(
            f"'{source}' is a Hub dataset, and the playground is offline: upload a file or use a bundled sample."
        )
    try:
        data = datasets.load_dataset(source, config or None, **kwargs)
    except Exception as err:
        raise DatasetError(f"The Hub dataset '{source}' could not be loaded: {_first_line(err)}") from err
    if split:
        if split not in data:
            raise DatasetError(f"'{source}' has no split '{split}'; it has {', '.join(data)}.")
        data = datasets.DatasetDict({"train": data[split], **{k: v for k, v in data.items() if k != split}})
    return _non_empty(data, source)


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]


def _non_empty(data, source: str):
    if "train" not in data:
        first = next(iter(data))
        data = type(data)({"train": data[first], **{k: v for k, v in data.items() if k != first}})
    if data["train"].num_rows == 0:
        raise DatasetError(f"'{Path(source).name}' has no rows.")
    return data


def column_types(dataset) -> list[dict]:
    """Each column with a plain type: text, number, label, list of ..., or other."""
    from datasets import ClassLabel, Sequence, Value

    def kind(feature) -> str:
        if isinstance(feature, ClassLabel):
            return "label"
        if isinstance(feature, Value):
            if feature.dtype in ("string", "large_string"):
                return "text"
            return "number" if feature.dtype.startswith(("int", "uint", "float")) else feature.dtype
        if isinstance(feature, Sequence | list) or hasattr(feature, "feature"):
            inner = getattr(feature, "feature", None) or (feature[0] if isinstance(feature, list) else None)
            return f"list of {kind(inner)}" if inner is not None else "list"
        return "other"

    return [{"name": name, "type": kind(f)} for name, f in dataset.features.items()]


def describe(source: str, *, config: str | None = None, split: str | None = None) -> dict:
    """Splits and their sizes, the columns with their types, and the first rows of the training split."""
    data = load(source, config=config, split=split)
    train = data["train"]
    rows = [dict(r) for r in train.select(range(min(PREVIEW_ROWS, train.num_rows)))]
    return {
        "source": source,
        "splits": {name: part.num_rows for name, part in data.items()},
        "columns": column_types(train),
        "rows": rows,
        "suggested": {**SAMPLES, **CHAT_SAMPLES}.get(source, (None, {}))[1],
    }


def require_columns(dataset, columns: dict[str, str | None]) -> None:
    """Every mapped column exists; a missing one is named with the closest existing name."""
    names = list(dataset.column_names)
    for role, column in columns.items():
        if not column:
            raise DatasetError(f"Choose the {role.replace('_', ' ')} (columns: {', '.join(names)}).")
        if column not in names:
            close = difflib.get_close_matches(column, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise DatasetError(f"There is no column '{column}'; the columns are {', '.join(names)}.{hint}")


def sample_rows(dataset, limit: int = ANALYSIS_ROWS, seed: int = 0):
    """A seeded random sample of `limit` rows (in their original order), or all of them."""
    import numpy as np

    if dataset.num_rows <= limit:
        return dataset
    picked = np.random.default_rng(seed).choice(dataset.num_rows, size=limit, replace=False)
    return dataset.select(np.sort(picked))


def split(data, eval_split: float | str | None, label_column: str | None = None, seed: int = 42):
    """(train, eval): an existing split by name, or a seeded fraction held out (stratified by label when given)."""
    import numpy as np

    if isinstance(eval_split, str) and not _is_number(eval_split):
        if eval_split not in data:
            raise DatasetError(f"There is no split '{eval_split}'; the data has {', '.join(data)}.")
        return data["train"], data[eval_split]
    fraction = float(eval_split if eval_split is not None else 0.2)
    if not 0 < fraction < 1:
        raise DatasetError("The evaluation share must be between 0 and 1 (for example 0.2 for 20%).")
    train = data["train"]
    if train.num_rows < 4:
        raise DatasetError(f"There are only {train.num_rows} rows: too few to hold some out for evaluation.")
    rng = np.random.default_rng(seed)
    if label_column and label_column in train.column_names:
        labels = [str(v) for v in train[label_column]]
        held = []
        for value in sorted(set(labels)):
            idx = np.flatnonzero(np.asarray(labels) == value)
            rng.shuffle(idx)
            held.extend(idx[: max(1, round(len(idx) * fraction))] if len(idx) > 1 else [])
        held_set = set(int(i) for i in held)
    else:
        order = rng.permutation(train.num_rows)
        held_set = set(int(i) for i in order[: max(1, round(train.num_rows * fraction))])
    keep = [i for i in range(train.num_rows) if i not in held_set]
    return train.select(keep), train.select(sorted(held_set))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
