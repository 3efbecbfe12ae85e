"""Batch inference: run a task over every row of an uploaded CSV, JSONL or TXT file, as a background job.

The file is read and checked before the job starts (so a bad file is explained at once); the job runs the task
in batches on the cached model, reports progress, and writes the results as CSV into the job's own folder.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from services.core.errors import PlaygroundError
from services.jobs.manager import JobContext, JobManager
from services.models import loading
from services.models.catalog import canonical_task

logger = logging.getLogger(__name__)

SUPPORTED = (".csv", ".tsv", ".jsonl", ".json", ".txt")
BATCH_TASKS = (
    "text-classification",
    "token-classification",
    "zero-shot-classification",
    "fill-mask",
    "summarization",
    "translation",
    "text-generation",
    "question-answering",
)
MAX_ROWS = 100_000


def _decode(raw: bytes, name: str) -> str:
    if b"\x00" in raw[:4096]:
        raise PlaygroundError(f"'{name}' looks like a binary file, not text. Upload a CSV, JSONL or TXT file.")
    # UTF-16 only with its byte-order mark: without one, any even-length bytes "decode" as UTF-16 noise.
    encoding = "utf-16" if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError:
        pass
    raise PlaygroundError(
        f"'{name}' is not UTF-8 text. Save it as 'CSV UTF-8' (Excel) or re-encode it as UTF-8 and upload it again."
    )


def read_rows(path: str | Path) -> tuple[list[str], list[dict]]:
    """(column names, rows) of a CSV/TSV (delimiter sniffed), JSONL/JSON (list of objects) or TXT (one text per
    line, column "text"). Raises a PlaygroundError that says what is wrong with the file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        raise PlaygroundError(f"'{path.name}' is not a file type this can read. Use one of: {', '.join(SUPPORTED)}.")
    text = _decode(path.read_bytes(), path.name)
    if suffix == ".txt":
        rows = [{"text": line.strip()} for line in text.splitlines() if line.strip()]
    elif suffix in (".jsonl", ".json"):
        rows = _json_rows(text, path.name)
    else:
        rows = _csv_rows(text, "\t" if suffix == ".tsv" else None)
    if not rows:
        raise PlaygroundError(f"'{path.name}' has no rows to process.")
    if len(rows) > MAX_ROWS:
        raise PlaygroundError(f"'{path.name}' has {len(rows):,} rows; at most {MAX_ROWS:,} can be processed here.")
    columns = list(dict.fromkeys(key for row in rows[:1000] for key in row))
    return columns, rows


def _json_rows(text: str, name: str) -> list[dict]:
    stripped = text.strip()
    try:
        if stripped.startswith("["):
            data = json.loads(stripped)
        else:
            data = [json.loads(line) for line in stripped.splitlines() if line.strip()]
    except ValueError as err:
        raise PlaygroundError(f"'{name}' is not valid JSON Lines: {err}.") from err
    if not all(isinstance(row, dict) for row in data):
        raise PlaygroundError(f'Each line of \'{name}\' must be a JSON object such as {{"text": "..."}}.')
    return data


def _csv_rows(text: str, delimiter: str | None) -> list[dict]:
    if delimiter is None:
        try:
            delimiter = csv.Sniffer().sniff(text[:20_000], delimiters=",;\t|").delimiter
        except csv.Error:
            delimiter = ","
    csv.field_size_limit(16 * 2**20)  # one long review must not stop the file (the default is 128 KB)
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [{(k or "").strip(): v for k, v in row.items() if k is not None} for row in reader]
    except csv.Error as err:
        raise PlaygroundError(f"The CSV file could not be read: {err}.") from err


def check_column(columns: list[str], rows: list[dict], column: str, name: str = "the file") -> None:
    if column not in columns:
        raise PlaygroundError(f"{name} has no column '{column}'. Its columns are: {', '.join(columns)}.")
    if not any(str(row.get(column) or "").strip() for row in rows):
        raise PlaygroundError(f"The column '{column}' is empty in every row.")


def _flatten(task: str, result: Any) -> dict:
    """One output row from one pipeline result."""
    if task == "text-classification":
        best = result[0] if isinstance(result, list) else result
        return {"label": best["label"], "score": round(float(best["score"]), 6)}
    if task == "zero-shot-classification":
        return {"label": result["labels"][0], "score": round(float(result["scores"][0]), 6)}
    if task == "fill-mask":
        best = result[0]
        return {"token": best["token_str"], "score": round(float(best["score"]), 6)}
    if task == "token-classification":
        return {"entities": json.dumps([{k: (str(v) if k == "score" else v) for k, v in e.items()} for e in result])}
    if task == "summarization":
        return {"summary": result["summary_text"]}
    if task == "translation":
        return {"translation": result["translation_text"]}
    if task == "text-generation":
        return {"generated": result[0]["generated_text"] if isinstance(result, list) else result["generated_text"]}
    if task == "question-answering":
        best = result[0] if isinstance(result, list) else result
        return {"answer": best["answer"], "score": round(float(best["score"]), 6)}
    raise PlaygroundError(f"{task} cannot run over a file here.")


def process_rows(
    loaded: loading.LoadedModel,
    task: str,
    texts: list[Any],
    params: dict,
    batch_size: int = 32,
    on_batch=None,
) -> list[dict]:
    """Run the task over `texts` in batches; `on_batch(done)` after each one (progress, cancel checks)."""
    from services.pipelines import run_loaded  # imported here: services.pipelines imports this module's peers

    out: list[dict] = []
    # Several model batches per call: each pipeline call has a fixed cost. Generative rows are slow, so they
    # report (and notice Cancel) every batch.
    chunk_size = batch_size if task in _GENERATIVE else batch_size * 8
    params = dict(params)
    if task == "text-generation":
        params.setdefault("return_full_text", False)  # the new text only: the prompt is already in the row
        if loaded.tokenizer.pad_token is None and loaded.tokenizer.eos_token is not None:
            loaded.tokenizer.pad_token = loaded.tokenizer.eos_token  # batching needs a pad token (GPT-2 has none)
    for start in range(0, len(texts), chunk_size):
        chunk = texts[start : start + chunk_size]
        extra = {"batch_size": batch_size} if task in _PIPELINE_BATCHED else {}
        results = run_loaded(loaded, task, chunk, **params, **extra)
        if len(chunk) == 1 and task in ("question-answering", "fill-mask"):
            results = [results]  # these pipelines unwrap a list of one
        if len(results) != len(chunk):
            raise PlaygroundError(f"The model returned {len(results)} results for {len(chunk)} rows.")
        out.extend(_flatten(task, r) for r in results)
        if on_batch is not None:
            on_batch(len(out))
    return out


_PIPELINE_BATCHED = {"text-classification", "token-classification", "fill-mask", "text-generation"}
_GENERATIVE = {"summarization", "translation", "text-generation"}


def start_batch(
    manager: JobManager,
    owner: str,
    task: str,
    model: str,
    path: str | Path,
    column: str,
    params: dict | None = None,
    context_column: str | None = None,
) -> str:
    """Check the file and the model now, then run the batch as a job; returns the job id."""
    task = canonical_task(task)
    if task not in BATCH_TASKS:
        raise PlaygroundError(f"{task} cannot run over a file here. Choose one of: {', '.join(BATCH_TASKS)}.")
    columns, rows = read_rows(path)
    check_column(columns, rows, column, f"'{Path(path).name}'")
    if task == "question-answering":
        if not context_column:
            raise PlaygroundError("Question answering over a file needs a question column and a context column.")
        check_column(columns, rows, context_column, f"'{Path(path).name}'")
    from services.models.catalog import resolve
    from services.pipelines import load_for

    resolve(model, owner)  # a clear error now beats a failed job
    params = dict(params or {})
    name = Path(path).name

    def work(ctx: JobContext) -> dict:
        ctx.progress(0.0, f"Loading {model}")
        loaded = load_for(task, model, owner=owner, progress=lambda f, m: ctx.progress(0.0, m))
        if task == "question-answering":
            texts: list[Any] = [
                {"question": str(r.get(column) or ""), "context": str(r.get(context_column) or "")} for r in rows
            ]
        else:
            texts = [str(r.get(column) or "") or " " for r in rows]

        def on_batch(done: int) -> None:
            ctx.check_cancelled()
            ctx.progress(done / len(rows), f"{done:,} of {len(rows):,} rows")

        outputs = process_rows(loaded, task, texts, params, on_batch=on_batch)
        out_path = ctx.workdir / f"{Path(name).stem}-{task}.csv"
        # The model's columns never overwrite the user's (a gold "label" column stays next to the prediction).
        renamed = {key: (f"predicted_{key}" if key in columns else key) for key in outputs[0]}
        fieldnames = list(dict.fromkeys([*columns, *renamed.values()]))
        with open(out_path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=fieldnames, extrasaction="ignore")
            writer.writeheader()
            for row, result in zip(rows, outputs, strict=True):
                writer.writerow({**row, **{renamed[k]: v for k, v in result.items()}})
        ctx.artifact(out_path, kind="results", rows=len(rows))
        return {"rows": len(rows), "output": out_path.name}

    return manager.submit(
        "batch",
        owner,
        work,
        title=f"{task} on {name} ({len(rows):,} rows)",
        config={"task": task, "model": model, "file": name, "column": column, "params": params},
        needs_gpu=False,
    )
