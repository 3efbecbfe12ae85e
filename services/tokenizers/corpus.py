"""Reading a tokenizer-training corpus: the bundled one, uploaded text or table files, or a Hub dataset column.

Lines come out in batches while their size is counted; binary, non-UTF-8 and empty inputs are explained in words.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.core.config import get_settings
from services.core.errors import PlaygroundError

if TYPE_CHECKING:
    from services.tokenizers.config import TokenizerTrainConfig

CORPUS_DIR = Path(__file__).resolve().parents[2] / "assets" / "corpus"
TEXT_SUFFIXES = (".txt", ".md", ".text")
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")
_BATCH_LINES = 1000

Progress = Callable[[float, str], None]


class CorpusError(PlaygroundError):
    """The training text cannot be used (empty, binary, unreadable, too small)."""


@dataclass
class CorpusStats:
    files: int = 0
    lines: int = 0
    characters: int = 0
    bytes: int = 0
    text_lines: int = 0  # lines with something besides whitespace


def check_text_file(path: Path) -> None:
    head = path.open("rb").read(65536)
    if b"\x00" in head:
        raise CorpusError(f"'{path.name}' is not a text file: it holds binary data.")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if len(head) < 65536 or err.start < len(head) - 4:  # only a character cut at the 64 KB edge is fine
            raise CorpusError(f"'{path.name}' is not UTF-8 text (maybe a binary file renamed to .txt).") from err


def _text_lines(path: Path) -> Iterator[str]:
    check_text_file(path)
    try:
        with path.open(encoding="utf-8") as handle:
            yield from handle
    except UnicodeDecodeError as err:
        raise CorpusError(f"'{path.name}' is not UTF-8 text past its beginning.") from err


def _table_lines(path: Path, column: str) -> Iterator[str]:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        check_text_file(path)
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t" if suffix == ".tsv" else ",")
            if column not in (reader.fieldnames or []):
                raise CorpusError(
                    f"'{path.name}' has no column '{column}'. Its columns: {', '.join(reader.fieldnames or [])}."
                )
            for row in reader:
                yield str(row.get(column) or "")
        return
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as err:
            raise CorpusError(f"'{path.name}' is not a readable Parquet file.") from err
        if column not in table.column_names:
            raise CorpusError(f"'{path.name}' has no column '{column}'. Its columns: {', '.join(table.column_names)}.")
        for value in table.column(column).to_pylist():
            yield "" if value is None else str(value)
        return
    check_text_file(path)
    with path.open(encoding="utf-8") as handle:
        rows: list = []
        if suffix == ".json":
            try:
                data = json.load(handle)
            except ValueError as err:
                raise CorpusError(f"'{path.name}' is not valid JSON.") from err
            rows = data if isinstance(data, list) else data.get("data", []) if isinstance(data, dict) else []
        else:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except ValueError as err:
                        raise CorpusError(f"Line {number} of '{path.name}' is not valid JSON.") from err
    if rows and not any(isinstance(r, dict) and column in r for r in rows[:100]):
        raise CorpusError(f"The records in '{path.name}' have no field '{column}'.")
    for row in rows:
        if isinstance(row, dict) and row.get(column) is not None:
            yield str(row[column])


def _dataset_lines(dataset: str, split: str, column: str) -> Iterator[str]:
    if get_settings().offline:
        raise CorpusError("Hub datasets need the Hub, and the playground is offline. Upload text files instead.")
    import datasets

    try:
        stream = datasets.load_dataset(dataset, split=split, streaming=True, token=False)
        for row in stream:
            if column not in row:
                raise CorpusError(f"The dataset '{dataset}' has no column '{column}'. Its columns: {', '.join(row)}.")
            yield str(row[column] or "")
    except CorpusError:
        raise
    except Exception as err:
        raise CorpusError(
            f"The dataset '{dataset}' (split '{split}') could not be read: {type(err).__name__}."
        ) from err


def corpus_files(config: TokenizerTrainConfig) -> list[Path]:
    if config.corpus == "bundled":
        files = sorted(CORPUS_DIR.glob("*.txt"))
        if not files:
            raise CorpusError("The bundled corpus is missing from assets/corpus.")
        return files
    paths = [Path(f) for f in config.files]
    for path in paths:
        if not path.is_file():
            raise CorpusError(f"The file '{path.name}' is not there any more. Upload it again.")
        if path.suffix.lower() not in TEXT_SUFFIXES + TABLE_SUFFIXES:
            raise CorpusError(
                f"'{path.name}' is not a file type the trainer reads: use .txt, .md, .csv, .tsv, .json, .jsonl "
                "or .parquet."
            )
    return paths


def iter_corpus(
    config: TokenizerTrainConfig, stats: CorpusStats, progress: Progress | None = None
) -> Iterator[list[str]]:
    """Batches of lines from the corpus, counting as it goes; progress runs from 0 to 0.5 while reading."""
    progress = progress or (lambda f, m: None)
    if config.corpus == "dataset":
        sources = [(config.dataset, _dataset_lines(config.dataset, config.dataset_split, config.text_column))]
        total = 0
    else:
        files = corpus_files(config)
        sources = [
            (p.name, _text_lines(p) if p.suffix.lower() in TEXT_SUFFIXES else _table_lines(p, config.text_column))
            for p in files
        ]
        total = sum(p.stat().st_size for p in files) or 1
    for name, lines in sources:
        stats.files += 1
        batch: list[str] = []
        for line in lines:
            stats.lines += 1
            stats.characters += len(line)
            stats.bytes += len(line.encode("utf-8"))
            if not line.isspace() and line:
                stats.text_lines += 1
            batch.append(line)
            if len(batch) >= _BATCH_LINES:
                yield batch
                batch = []
                if total > 1:
                    progress(min(0.5, 0.5 * stats.bytes / total), f"Reading {name}")
                else:
                    progress(0.25, f"Reading {name}: {stats.lines:,} rows")
        if batch:
            yield batch
