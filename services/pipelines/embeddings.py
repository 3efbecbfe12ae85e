"""Sentence embeddings from encoder models: pooling, similarity, and zero-shot classification by similarity.

Sentence-transformers folders (like the packaged MiniLM) say how to pool in ``1_Pooling/config.json``; other
encoders get mean pooling over real tokens. Vectors are L2-normalised, so a dot product is a cosine similarity.
"""

from __future__ import annotations

import json
from pathlib import Path

from services.core import gpu
from services.core.errors import PlaygroundError
from services.core.limits import LimitExceeded
from services.models.loading import LoadedModel

_HYPOTHESIS = "This text is about {}."
MIN_TEMPERATURE = 0.001  # at 0 the softmax divides by zero (NaN scores); below 0.001 every score is 0 or 1 already


def is_embedding_model(loaded: LoadedModel) -> bool:
    """True for models without a task head (sentence-transformers folders and bare encoders)."""
    from services.models.catalog import tasks_for_config

    folder = Path(loaded.location)
    tasks = tasks_for_config(loaded.model.config.to_dict(), folder if folder.is_dir() else None)
    return not tasks or ("sentence-similarity" in tasks and "text-classification" not in tasks)


def _model_file(loaded: LoadedModel, name: str) -> Path | None:
    """A file of the model: in its folder, or (a Hub model) fetched from its repo, or None."""
    local = Path(loaded.location) / name
    if local.exists():
        return local
    from services.hub import push as hub

    return hub.model_file(loaded.location, name) if not Path(loaded.location).is_dir() else None


def _pooling(loaded: LoadedModel) -> str:
    with loaded.lock:
        mode = loaded.extras.get("pooling")
        if mode is None:
            mode = "mean"
            config = _model_file(loaded, "1_Pooling/config.json")
            if config is not None:
                settings = json.loads(config.read_text())
                if settings.get("pooling_mode_cls_token"):
                    mode = "cls"
            loaded.extras["pooling"] = mode
    return mode


def embed(loaded: LoadedModel, texts: list[str], batch_size: int = 32):
    """Normalised sentence vectors, one row per text (a torch tensor on the CPU)."""

    mode = _pooling(loaded)
    with gpu.lane(loaded.device), loaded.busy:
        return _embed_locked(loaded, texts, batch_size, mode)


def _embed_locked(loaded: LoadedModel, texts: list[str], batch_size: int, mode: str):
    import torch

    rows = []
    for start in range(0, len(texts), batch_size):
        batch = loaded.tokenizer(
            texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt"
        ).to(loaded.model.device)
        with torch.no_grad():
            hidden = loaded.model(**batch).last_hidden_state
        if mode == "cls":
            pooled = hidden[:, 0]
        else:
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        rows.append(torch.nn.functional.normalize(pooled.float(), dim=-1).cpu())
    return torch.cat(rows)


def similarity(loaded: LoadedModel, source: str, sentences: list[str]) -> list[float]:
    """Cosine similarity of each sentence to the source (the Hub's sentence-similarity schema)."""
    vectors = embed(loaded, [source, *sentences])
    return [round(float(v), 6) for v in vectors[1:] @ vectors[0]]


def similarity_matrix(loaded: LoadedModel, sentences: list[str]) -> list[list[float]]:
    """Every pair's cosine similarity, for the similarity heat map."""
    vectors = embed(loaded, sentences)
    return [[round(float(x), 4) for x in row] for row in vectors @ vectors.T]


def _temperature(value) -> float:
    """The softmax temperature: a number of at least MIN_TEMPERATURE, in a sentence otherwise."""
    try:
        temperature = float(value)
    except (TypeError, ValueError):
        temperature = float("nan")
    if not MIN_TEMPERATURE <= temperature < float("inf"):
        raise LimitExceeded(
            f"The temperature must be a number of at least {MIN_TEMPERATURE} (0.05 is the usual value), not "
            f"{str(value)[:40]}: it divides the similarities, so 0 has no meaning. multi_label needs no temperature."
        )
    return temperature


def zero_shot(
    loaded: LoadedModel,
    sequences: str | list[str],
    candidate_labels: str | list[str],
    hypothesis_template: str = _HYPOTHESIS,
    multi_label: bool = False,
    temperature: float = 0.05,
) -> dict | list[dict]:
    """Zero-shot classification by embedding similarity, in the 4.x zero-shot pipeline's output schema.

    Each label becomes a sentence (`hypothesis_template`); a softmax over the cosine similarities (sharpened by
    `temperature`, at least MIN_TEMPERATURE: at 0 the softmax would divide by zero) gives the scores, or, with
    `multi_label`, each label's own cosine similarity, below 0 read as 0 (the temperature is then unused).
    Mapping cosines to (cos + 1) / 2 instead would put an unrelated label (cosine 0) at 50 %: flat scores that
    read as confident.
    """
    import torch

    from services.pipelines.caps import check_labels

    labels = check_labels(candidate_labels)
    if not labels:
        raise ValueError("Please give at least one candidate label.")
    if not multi_label:
        temperature = _temperature(temperature)
    texts = [sequences] if isinstance(sequences, str) else list(sequences)
    try:
        hypotheses = [str(hypothesis_template).format(label) for label in labels]
    except (IndexError, KeyError, ValueError) as err:
        example = "'This text is about {}.'"
        raise PlaygroundError(f"The hypothesis template needs one {{}} where the label goes, like {example}") from err
    label_vectors = embed(loaded, hypotheses)
    text_vectors = embed(loaded, texts)
    results = []
    for text, sims in zip(texts, text_vectors @ label_vectors.T, strict=True):
        scores = sims.clamp(0, 1) if multi_label else torch.softmax(sims / temperature, dim=-1)
        order = torch.argsort(scores, descending=True).tolist()
        results.append(
            {"sequence": text, "labels": [labels[i] for i in order], "scores": [float(scores[i]) for i in order]}
        )
    return results[0] if isinstance(sequences, str) else results


def cut_notice(loaded: LoadedModel, task: str, inputs: str | dict) -> str | None:
    """A sentence naming the texts longer than the model reads (similarity: the source and each sentence;
    zero-shot: the text), which `truncation=True` cut to their first tokens; None when nothing was cut."""
    from services.models.loading import token_limit

    if task == "sentence-similarity" and isinstance(inputs, dict):
        named = [("The source sentence", inputs.get("source_sentence", ""))]
        named += [(f"sentence {i}", s) for i, s in enumerate(inputs.get("sentences") or [], 1)]
    elif isinstance(inputs, str):
        named = [("Your text", inputs)]
    else:
        return None
    tokenizer = loaded.tokenizer
    # What `truncation=True` keeps: the tokenizer's limit (within the model's), less [CLS] and [SEP].
    limit = min(tokenizer.model_max_length, token_limit(loaded.model.config, tokenizer))
    room = limit - tokenizer.num_special_tokens_to_add()
    candidates = [(name, text) for name, text in named if isinstance(text, str) and len(text) > room]
    if not candidates:  # a token covers at least one character: shorter texts cannot be too long
        return None
    with loaded.busy:
        counts = [(name, len(tokenizer(text, add_special_tokens=False)["input_ids"])) for name, text in candidates]
    cut = [(name, count) for name, count in counts if count > room]
    if not cut:
        return None
    if len(cut) == 1:
        name, count = cut[0]
        return (
            f"{name} is {count:,} tokens long and this model reads {room:,} at a time: "
            f"only its first {room:,} tokens were used."
        )
    names = ", ".join(name for name, _ in cut[:-1]) + f" and {cut[-1][0]}"
    return (
        f"{names[0].upper()}{names[1:]} are longer than the {room:,} tokens this model reads at a time: "
        f"only their first {room:,} tokens were used."
    )
