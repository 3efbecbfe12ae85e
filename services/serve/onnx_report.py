"""What an ONNX export is worth: parity with the PyTorch model it came from, and its speed and size.

`services.serve.onnx_export.export` calls these after writing `model.onnx` and `model.int8.onnx`; the figures go to
`onnx_report.json`. Both sides get the same tokenized batches, so the report compares the engines, not the
tokenizer:

- parity: max |Δ| of the task's outputs (logits; for embeddings the pooled, normalised vectors) against PyTorch,
  the share of inputs whose argmax matches PyTorch's ("label agreement"), and accuracy when labels are given;
- speed: p50 latency at batch 1 and throughput at batch 32, measured in one run with the engines taking turns in
  rounds (a slower machine, or another job starting, then slows them all alike).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

# The runtime side (sessions, runners) lives with the models, which load exports too; the export calls it from here.
from services.models.onnx_runtime import default_threads, runner, session  # noqa: F401

# Probe texts for parity when the caller gives none: short and long, positive, negative, neutral, named things.
DEFAULT_SAMPLES = (
    "The movie was very good and I love it.",
    "The food was terrible and the service was slow.",
    "Alice lives in Paris and works at Acme.",
    "What is the capital of France? Paris is the capital.",
    "Bob likes the big city but not the small river.",
    "It was fine.",
    "I waited forty minutes for a cold pizza, the driver was rude and the refund never arrived; never again.",
    "A quiet, well-acted film that stays with you long after the credits roll.",
)
DEFAULT_QUESTION = "What is this about?"  # a question-answering sample given as a plain text is its context

Runner = Callable[[dict], dict]  # tokenized batch (numpy int64) -> the model's outputs by name (numpy)


def encode(tokenizer: Any, texts: Sequence, task: str, max_length: int) -> dict:
    """Tokenize a batch for the model: plain texts, or (first, second) pairs; question answering pairs a plain
    text with DEFAULT_QUESTION. Returns numpy int64 arrays, padded to the longest text."""
    import numpy as np

    items = list(texts)
    if task == "question-answering":
        items = [item if isinstance(item, list | tuple) else (DEFAULT_QUESTION, item) for item in items]
    pairs = bool(items) and all(isinstance(item, list | tuple) for item in items)
    args = ([str(a) for a, _ in items], [str(b) for _, b in items]) if pairs else ([str(t) for t in items],)
    batch = tokenizer(*args, padding=True, truncation=True, max_length=max_length, return_tensors="np")
    return {name: np.asarray(value, dtype=np.int64) for name, value in batch.items()}


def pool(hidden, attention_mask, mode: str):
    """Sentence vectors the way the app pools (`services.pipelines.embeddings`): the first token, or the mean over
    real tokens; L2-normalised, so a dot product is a cosine similarity."""
    import numpy as np

    hidden = np.asarray(hidden, dtype=np.float32)
    if mode == "cls":
        pooled = hidden[:, 0]
    else:
        mask = attention_mask[..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12, None)


def pooling_mode(folder: Path) -> str:
    """How `services.pipelines.embeddings` pools a folder's vectors: the first token when its
    ``1_Pooling/config.json`` says so, else the mean over real tokens."""
    try:
        settings = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "mean"
    return "cls" if settings.get("pooling_mode_cls_token") else "mean"


def task_outputs(outputs: dict, batch: dict, task: str, pooling: str | None) -> dict:
    """The outputs parity is judged on: the head's logits, or the pooled sentence vectors."""
    if task in ("feature-extraction", "sentence-similarity"):
        return {"embeddings": pool(outputs["last_hidden_state"], batch["attention_mask"], pooling or "mean")}
    if task == "question-answering":
        return {"start_logits": outputs["start_logits"], "end_logits": outputs["end_logits"]}
    return {"logits": outputs["logits"]}


def measure(
    model: Any,
    output_names: Sequence[str],
    sessions: dict[str, Any],
    encoding: tuple,
    texts: list,
    labels: Sequence | None,
    speed_runs: int,
    threads: int,
) -> tuple[dict, dict | None]:
    """Parity and speed of the ONNX `sessions` against the PyTorch `model`, on the same threads.

    `encoding`: (tokenizer, task, max_length, pooling). Batch 1 times the sample of median length; batch 32 the
    samples, repeated as needed."""
    import numpy as np
    import torch

    tokenizer, task, max_length, pooling = encoding

    def torch_run(batch: dict) -> dict:
        with torch.inference_mode():
            result = model(**{k: torch.from_numpy(v) for k, v in batch.items()})
        return {name: result[name].float().numpy() for name in output_names}

    runners = {"pytorch_fp32": torch_run, **{name: runner(s) for name, s in sessions.items()}}
    label2id = {str(k): int(v) for k, v in (getattr(model.config, "label2id", None) or {}).items()}
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # the same cores for both engines, or the ratios mean little
    try:
        report = parity(runners, tokenizer, task, texts, labels, label2id, max_length, pooling)
        if speed_runs <= 0:
            return report, None
        lengths = encode(tokenizer, texts, task, max_length)["attention_mask"].sum(-1)
        single = encode(tokenizer, [texts[int(np.argsort(lengths)[len(lengths) // 2])]], task, max_length)
        batch = encode(tokenizer, [texts[i % len(texts)] for i in range(32)], task, max_length)
        timing = {"threads": threads, "runs": speed_runs, "warmup": 3, "batch1_tokens": single["input_ids"].shape[1]}
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        timing.update(speed(runners, single, batch, runs=speed_runs))
        # Other work on the cores slows PyTorch's threads most (they wait for each other): the load shows it.
        timing["load_average"] = [load, os.getloadavg()[0] if load is not None else None]
    finally:
        torch.set_num_threads(before)
    if "onnx_int8" in timing:
        ratio = timing["pytorch_fp32"]["p50_ms_batch1"] / timing["onnx_int8"]["p50_ms_batch1"]
        timing["int8_speedup_vs_pytorch_batch1"] = round(ratio, 2)
    return report, timing


def compare(reference: dict, other: dict, batch: dict, task: str) -> dict:
    """max |Δ| against the reference, and the label agreement (None for embeddings, which have no labels).

    Token classification is judged on real tokens only (padding logits mean nothing); question answering agrees
    when both the start and the end argmax match."""
    import numpy as np

    mask = batch["attention_mask"].astype(bool)
    diffs, agree = [], None
    for name, ref in reference.items():
        delta = np.abs(np.asarray(other[name], dtype=np.float32) - np.asarray(ref, dtype=np.float32))
        diffs.append(float(delta[mask].max() if task == "token-classification" else delta.max()))
    if task in ("text-classification", "zero-shot-classification"):
        agree = float(np.mean(reference["logits"].argmax(-1) == other["logits"].argmax(-1)))
    elif task == "token-classification":
        agree = float(np.mean((reference["logits"].argmax(-1) == other["logits"].argmax(-1))[mask]))
    elif task == "question-answering":
        same = [reference[k].argmax(-1) == other[k].argmax(-1) for k in ("start_logits", "end_logits")]
        agree = float(np.mean(same[0] & same[1]))
    result = {"max_abs_diff": max(diffs), "label_agreement": agree}
    if task in ("feature-extraction", "sentence-similarity"):
        cosine = (reference["embeddings"] * other["embeddings"]).sum(-1)
        result["min_cosine_similarity"] = float(cosine.min())
    return result


def label_ids(labels: Sequence, label2id: dict) -> list[int]:
    """Label ids from ids or names (names matched case-insensitively, as people write them in a CSV)."""
    from services.core.errors import PlaygroundError

    by_name = {str(name).lower(): int(i) for name, i in label2id.items()}
    ids = []
    for label in labels:
        if isinstance(label, int) or str(label).isdigit():
            ids.append(int(label))
        elif str(label).lower() in by_name:
            ids.append(by_name[str(label).lower()])
        else:
            known = ", ".join(sorted(by_name)) or "none"
            raise PlaygroundError(f"The label '{label}' is not one of the model's labels ({known}).")
    return ids


def parity(
    runners: dict[str, Runner],
    tokenizer: Any,
    task: str,
    samples: Sequence,
    labels: Sequence | None,
    label2id: dict,
    max_length: int,
    pooling: str | None = None,
    batch_size: int = 32,
) -> dict:
    """Each runner against the first (PyTorch): max |Δ|, label agreement, and accuracy when `labels` are given
    (text classification only: one label per sample)."""
    import numpy as np

    names = list(runners)
    results: dict[str, list] = {name: [] for name in names}
    batches = []
    for start in range(0, len(samples), batch_size):
        batch = encode(tokenizer, samples[start : start + batch_size], task, max_length)
        batches.append(batch)
        for name in names:
            results[name].append(task_outputs(runners[name](batch), batch, task, pooling))
    report: dict[str, Any] = {"samples": len(samples)}
    for name in names[1:]:
        # Per batch (their padded lengths differ), then the worst case and the weighted agreement.
        parts = [
            compare(ref, out, batch, task)
            for ref, out, batch in zip(results[names[0]], results[name], batches, strict=True)
        ]
        entry = {"max_abs_diff": max(p["max_abs_diff"] for p in parts)}
        weights = [len(batch["input_ids"]) for batch in batches]
        if parts[0]["label_agreement"] is not None:
            entry["label_agreement"] = float(np.average([p["label_agreement"] for p in parts], weights=weights))
        if "min_cosine_similarity" in parts[0]:
            entry["min_cosine_similarity"] = min(p["min_cosine_similarity"] for p in parts)
        report[name] = entry
    if labels is not None and task in ("text-classification", "zero-shot-classification"):
        truth = np.array(label_ids(labels, label2id))
        report["accuracy"] = {
            name: float(np.mean(np.concatenate([r["logits"].argmax(-1) for r in results[name]]) == truth))
            for name in names
        }
    return report


def speed(runners: dict[str, Runner], single: dict, batch: dict, runs: int = 30, warmup: int = 3) -> dict:
    """p50 latency at batch 1 (ms, median of `runs` calls after `warmup` calls) and throughput at the size of
    `batch` (texts/s, median over a third as many calls), for every runner, in one run.

    The runners take turns in rounds of a few calls rather than call by call: ONNX Runtime's and PyTorch's worker
    threads each keep a core busy for a moment after a call, which would tax whoever runs next."""
    size = len(batch["input_ids"])
    latency: dict[str, list[float]] = {name: [] for name in runners}
    throughput: dict[str, list[float]] = {name: [] for name in runners}
    for run in runners.values():
        for _ in range(warmup):
            run(single)
        run(batch)
    rounds, per_round = max(1, runs // 5), min(5, runs)
    batch_calls = max(1, runs // 10)
    for round_index in range(rounds):
        order = list(runners) if round_index % 2 == 0 else list(reversed(runners))
        for name in order:
            run = runners[name]
            run(single)  # the other engine's threads are idle again before the clock starts
            for _ in range(per_round):
                start = time.perf_counter()
                run(single)
                latency[name].append(time.perf_counter() - start)
            if round_index < batch_calls:
                start = time.perf_counter()
                run(batch)
                throughput[name].append(size / (time.perf_counter() - start))
    return {
        name: {
            "p50_ms_batch1": round(1000 * statistics.median(latency[name]), 3),
            f"texts_per_s_batch{size}": round(statistics.median(throughput[name]), 1),
        }
        for name in runners
    }


def size_mb(*files: Path) -> float:
    return round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 2)


def versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("torch", "transformers", "onnx", "onnxscript", "onnxruntime"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found
