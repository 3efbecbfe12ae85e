"""`OnnxModel`: an ONNX export (`services.serve.onnx_export`) used from Python without the playground's model
cache or torch: `predict` for classification, `embed` for sentence vectors, `outputs` for the raw arrays of any
task. (Pipelines, the REST API and the server bundle load exports through `services.models.onnx_runtime`.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path

from services.core.errors import NotAModel, PlaygroundError, TaskMismatch
from services.models.onnx_runtime import FP32, INT8, REPORT
from services.serve import onnx_report


class OnnxModel:
    """An exported folder loaded in ONNX Runtime (CPU): `predict` for classification, `embed` for embeddings,
    `outputs` for the raw arrays of any task.

    `precision`: "int8" or "fp32"; by default int8 when the folder has it."""

    def __init__(self, folder: Path, precision: str | None = None, threads: int | None = None):
        from transformers import AutoTokenizer

        self.folder = Path(folder)
        try:
            self.report = json.loads((self.folder / REPORT).read_text(encoding="utf-8"))
            config = json.loads((self.folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise NotAModel(f"The folder '{self.folder.name}' is not an ONNX export made here.") from err
        precision = precision or ("int8" if (self.folder / INT8).exists() else "fp32")
        if precision not in ("int8", "fp32"):
            raise PlaygroundError(f"The precision is 'int8' or 'fp32', not '{precision}'.")
        path = self.folder / (INT8 if precision == "int8" else FP32)
        if not path.exists():
            raise PlaygroundError(f"This export has no {precision} model (it was made without it): use the other.")
        self.task, self.precision = self.report["task"], precision
        self.max_length, self.pooling = self.report.get("max_length", 512), self.report.get("pooling")
        self.id2label = {int(k): v for k, v in (config.get("id2label") or {}).items()}
        self.label2id = {v: k for k, v in self.id2label.items()}
        self.tokenizer = AutoTokenizer.from_pretrained(self.folder, local_files_only=True)
        self.session = onnx_report.session(path, threads or onnx_report.default_threads())
        self._run = onnx_report.runner(self.session)
        self._lock = threading.Lock()  # a fast tokenizer fails ("Already borrowed") when two threads use it at once

    def outputs(self, texts: Sequence, batch_size: int = 32) -> list[dict]:
        """The model's outputs (numpy arrays) per batch of `batch_size` texts, each with its tokenized batch."""
        results = []
        for start in range(0, len(texts), batch_size):
            with self._lock:
                batch = onnx_report.encode(self.tokenizer, texts[start : start + batch_size], self.task,
                                           self.max_length)  # fmt: skip
            results.append({**self._run(batch), "batch": batch})
        return results

    def predict(self, texts: Sequence[str], top_k: int | None = None) -> list[list[dict]]:
        """Text classification: per text, every label with its softmax score, best first (the `top_k` best).
        Token classification: per text, each real token with its best label and score."""
        import numpy as np

        if self.task not in ("text-classification", "token-classification"):
            raise TaskMismatch(f"This export does {self.task}; predict() is for classification models.")
        results = []
        for part in self.outputs(list(texts)):
            logits = part["logits"].astype(np.float64)
            scores = np.exp(logits - logits.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            batch = part["batch"]
            for row, ids, mask in zip(scores, batch["input_ids"], batch["attention_mask"], strict=True):
                if self.task == "text-classification":
                    order = np.argsort(-row)[:top_k]
                    results.append([{"label": self._label(i), "score": float(row[i])} for i in order])
                    continue
                special = set(self.tokenizer.all_special_ids)
                tokens = self.tokenizer.convert_ids_to_tokens(ids.tolist())
                results.append([
                    {"token": tokens[t], "label": self._label(int(row[t].argmax())), "score": float(row[t].max())}
                    for t in range(len(ids)) if mask[t] and int(ids[t]) not in special
                ])  # fmt: skip
        return results

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalised sentence vectors, pooled as the model's sentence-transformers config says (mean otherwise)."""
        if self.task not in ("feature-extraction", "sentence-similarity"):
            raise TaskMismatch(f"This export does {self.task}; embed() needs one made for feature-extraction.")
        rows = []
        for part in self.outputs(list(texts)):
            vectors = onnx_report.pool(part["last_hidden_state"], part["batch"]["attention_mask"], self.pooling)
            rows.extend(vectors.tolist())
        return rows

    def _label(self, index: int) -> str:
        return self.id2label.get(index, f"LABEL_{index}")
