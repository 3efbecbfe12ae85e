"""Model cards for what the playground pushes, written with `huggingface_hub`'s card tools.

A card is the README.md of a Hub repo: YAML metadata the Hub indexes (library, tags, language, license...) and
text for people: what it is, how it was made, a runnable snippet and its limitations.
"""

from __future__ import annotations

import json
from pathlib import Path

# How each metric is called in reports and model cards.
METRIC_NAMES = {
    "accuracy": "Accuracy",
    "f1": "F1",
    "f1_micro": "F1 (micro)",
    "precision": "Precision",
    "recall": "Recall",
    "rouge1": "ROUGE-1",
    "rouge2": "ROUGE-2",
    "rougeL": "ROUGE-L",
    "bleu": "BLEU",
    "mse": "MSE",
    "mae": "MAE",
    "pearson": "Pearson r",
    "perplexity": "Perplexity",
    "loss": "Loss",
    "exact_match": "Exact match",
}


def tokenizer_card(folder: str | Path, repo_id: str) -> str:
    """The card of a tokenizer trained here, from the summary saved next to it."""
    from huggingface_hub import ModelCard, ModelCardData

    folder = Path(folder)
    meta = json.loads((folder / "playground-tokenizer.json").read_text())
    config, corpus = meta.get("config", {}), meta.get("corpus", {})
    data = ModelCardData(library_name="transformers", tags=["tokenizer", "hf-playground", meta["kind"].lower()])
    source = {
        "bundled": "the HF Playground bundled corpus (12 short texts on many topics, several languages)",
        "files": f"{corpus.get('files', '?')} uploaded file(s)",
        "dataset": f"the `{config.get('text_column')}` column of the dataset `{config.get('dataset')}`",
    }.get(config.get("corpus"), "a text corpus")
    settings = "\n".join(
        f"| {key} | `{config.get(key)}` |"
        for key in ("model", "vocab_size", "min_frequency", "normalization", "pre_tokenizer", "byte_fallback")
    )
    specials = ", ".join(f"`{t}`" for t in config.get("special_tokens", [])) or "none"
    content = f"""---
{data.to_yaml()}
---

# {repo_id.split("/")[-1]}

A **{meta["kind"]}** tokenizer with **{meta["vocab_size"]:,} tokens**, trained from scratch in HF Playground with the
🤗 `tokenizers` library on {source}: {corpus.get("characters", 0):,} characters, {corpus.get("lines", 0):,} lines,
in {meta.get("seconds", "?")} s.

## Training settings

| setting | value |
|---|---|
{settings}

Special tokens: {specials}.

## Use it

```python
{snippet("tokenizer").format(repo=repo_id)}
```

## Limitations

A tokenizer learns the pieces that are frequent in its corpus: text unlike it (other languages, code, emoji) is cut
into many short pieces, or into unknown tokens without byte fallback. A vocabulary this size suits experiments and
small models; it has not been evaluated with a trained model.
"""
    return str(ModelCard(content))


def write_tokenizer_card(folder: str | Path, repo_id: str) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(tokenizer_card(folder, repo_id), encoding="utf-8")
    return path


# ---- fine-tuned models ------------------------------------------------------------------------------------------

_PIPELINE_TAG = {
    "text-classification": "text-classification",
    "text-regression": "text-classification",
    "token-classification": "token-classification",
    "summarization": "summarization",
    "causal-lm": "text-generation",
}
_BASE_HUB_ID = {
    "all-minilm-l6-v2": "sentence-transformers/all-MiniLM-L6-v2",
    "smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct",
}
# Runnable snippets per task, in assets/cards/<task>.py.tmpl ({repo}, {example} and {prefix} are filled in).
SNIPPETS = Path(__file__).resolve().parents[2] / "assets" / "cards"


def snippet(name: str) -> str:
    return (SNIPPETS / f"{name}.py.tmpl").read_text(encoding="utf-8").rstrip("\n")


_EXAMPLE = {
    "text-classification": "I loved every minute of it.",
    "text-regression": "A quiet, well-made little film.",
    "token-classification": "Ada Lovelace worked with Charles Babbage in London.",
    "summarization": "The council met on Tuesday and agreed to open the new library in spring.",
    "causal-lm": "Once upon a time",
}


def model_card(
    folder: str | Path, config, summary: dict, report: dict, history: list[dict], repo_id: str | None = None
) -> str:
    """The card of a model fine-tuned here: metadata with model-index, how it was trained, results, a snippet."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    folder = Path(folder)
    repo = repo_id or (config.push_to_hub or {}).get("repo_id") or folder.name
    task, data = config.task, config.dataset
    dataset_id = data.source if not Path(data.source).suffix else Path(data.source).name
    results_on = report.get("test") or summary.get("metrics") or {}
    split_name = "the held-back test split" if report.get("test") else "held-out evaluation data"
    names = {**METRIC_NAMES, "f1": "F1 (entities)" if task == "token-classification" else "F1 (macro)"}
    evals = [
        EvalResult(
            task_type=_PIPELINE_TAG[task],
            dataset_type=dataset_id,
            dataset_name=dataset_id,
            dataset_split="test" if report.get("test") else "validation",
            metric_type=name,
            metric_name=names[name],
            metric_value=round(float(value), 4),
        )
        for name, value in results_on.items()
        if name in names and name != "loss" and value is not None
    ]
    base = _BASE_HUB_ID.get(
        config.model, config.model if "/" in config.model and not Path(config.model).exists() else None
    )
    card_data = ModelCardData(
        model_name=repo.split("/")[-1],
        base_model=base,
        datasets=[dataset_id] if "/" in dataset_id and not dataset_id.startswith("samples/") else None,
        language=["en"],
        license="apache-2.0",
        library_name="transformers",
        pipeline_tag=_PIPELINE_TAG[task],
        tags=["hf-playground", task, "generated_from_trainer"],
        eval_results=evals or None,
    )
    rows = "\n".join(
        f"| {names.get(k, k)} | {v:.4f} |" for k, v in results_on.items() if isinstance(v, float) and k in names
    )
    per_class = report.get("per_class") or {}
    classes = "\n".join(
        f"| {name} | {m.get('precision', float('nan')):.3f} | {m.get('recall', float('nan')):.3f} "
        f"| {m['f1']:.3f} | {m['support']} |"
        for name, m in per_class.items()
    )
    class_table = (
        "### Per class\n\n| class | precision | recall | F1 | support |\n|---|---|---|---|---|\n" + classes
        if classes
        else ""
    )
    stopping = (
        f", early stopping after {config.early_stopping_patience} evaluations without progress"
        if config.early_stopping_patience
        else ""
    )
    curve = [h for h in history if "eval_loss" in h]
    curve_rows = "\n".join(f"| {h.get('epoch', 0):.2f} | {h.get('step', '')} | {h['eval_loss']:.4f} |" for h in curve)
    settings = "\n".join(f"| {k} | `{v}` |" for k, v in sorted(config.training.items()))
    code = snippet(task).format(
        repo=repo, example=_EXAMPLE[task], prefix="summarize: " if "t5" in str(config.model).lower() else ""
    )
    labels = ", ".join(f"`{label}`" for label in summary.get("labels") or []) or "—"
    content = f"""---
{card_data.to_yaml()}
---

# {repo.split("/")[-1]}

`{config.model}` fine-tuned for **{task}** on `{dataset_id}` ({summary.get("train_rows", 0):,} training rows,
{summary.get("eval_rows", 0):,} held out for evaluation), with the 🤗 Trainer in HF Playground.
{"Labels: " + labels + "." if summary.get("labels") else ""}

## Results on {split_name}

| metric | value |
|---|---|
{rows}

{class_table}

## Use it

```python
{code}
```

## Training

- Base model: `{config.model}`; max length {config.max_length} tokens; {summary.get("epochs") or 0:.1f} epochs,
  {summary.get("steps", 0)} steps in {summary.get("seconds", 0):.0f} s; best checkpoint chosen on
  `{config.best_metric[0]}`{stopping}.
- Rows without text or label left out: {summary.get("dropped_rows", 0)}.

| setting | value |
|---|---|
{settings}

### Evaluation loss per epoch

| epoch | step | eval loss |
|---|---|---|
{curve_rows}

## Limitations

This model was trained on a small dataset in a playground: it knows the kind of text it was shown and little else.
Check it on your own data before you rely on it; its scores above come from {split_name} data of the same kind as
its training data, which flatters it.
"""
    return str(ModelCard(content))


def write_model_card(
    folder: str | Path, config, summary: dict, report: dict, history: list[dict], repo_id: str | None = None
) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(model_card(folder, config, summary, report, history, repo_id), encoding="utf-8")
    return path


def collection_card(folder: str | Path, repo_id: str) -> str:
    """The README of a RAG collection pushed as a dataset: what the files are and how to search them."""
    import sqlite3
    from contextlib import closing

    from huggingface_hub import DatasetCard, DatasetCardData

    folder = Path(folder)
    with closing(sqlite3.connect(folder / "chunks.sqlite")) as conn:
        documents = [r[0] for r in conn.execute("SELECT name FROM documents ORDER BY added")]
        chunks = conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
        meta = {k: json.loads(v) for k, v in conn.execute("SELECT key, value FROM meta")}
    data = DatasetCardData(tags=["rag", "faiss", "embeddings", "hf-playground"], pretty_name=repo_id.split("/")[-1])
    listing = "\n".join(f"- {name}" for name in documents[:50]) + ("\n- …" if len(documents) > 50 else "")
    content = f"""---
{data.to_yaml()}
---

# {repo_id.split("/")[-1]}

A retrieval collection made in HF Playground: {len(documents)} document(s) cut into {chunks} passages and embedded
with `{meta.get("model", "all-minilm-l6-v2")}` ({meta.get("dim", 384)} dimensions, normalised: inner product = cosine).

## Files

- `chunks.sqlite`: tables `documents` (name, SHA-256, pages) and `chunks` (text, page, heading, character span).
- `vectors.npy`: one float32 row per chunk; `ids.npy`: the chunk id of each row.

## Search it

```python
{snippet("collection")}
```

## Documents

{listing}
"""
    return str(DatasetCard(content))


def write_collection_card(folder: str | Path, repo_id: str) -> Path:
    path = Path(folder) / "README.md"
    path.write_text(collection_card(folder, repo_id), encoding="utf-8")
    return path
