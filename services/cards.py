"""Model cards for what the playground pushes, written with `huggingface_hub`'s card tools.

A card is the README.md of a Hub repo: YAML metadata the Hub indexes (library, tags, language, license...) and
text for people: what it is, how it was made, a runnable snippet and its limitations.
"""

from __future__ import annotations

import json
from pathlib import Path


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
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained("{repo_id}")
print(tokenizer.tokenize("Tokenizers cut text into pieces."))
print(tokenizer("Tokenizers cut text into pieces.")["input_ids"])
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
