"""What a training and its Trainer run share: the Auto classes per task, the training errors, which process
writes files, perplexity."""

from __future__ import annotations

import math
import os

from services.core.errors import PlaygroundError

_AUTO = {
    "text-classification": "AutoModelForSequenceClassification",
    "text-regression": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "summarization": "AutoModelForSeq2SeqLM",
    "causal-lm": "AutoModelForCausalLM",
    "chat": "AutoModelForCausalLM",
}
_KIND = {"summarization": "an encoder-decoder model such as T5 or BART", "causal-lm": "a decoder such as GPT-2"}


class TrainingError(PlaygroundError):
    """Training could not go on; the message says why and what to try."""


class TrainingCancelled(PlaygroundError):
    """Cancel was asked for; the last checkpoint is kept."""


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def is_trained(out) -> bool:
    """Whether a folder holds a finished model: full weights (config.json) or a LoRA adapter."""
    return (out / "config.json").exists() or (out / "adapter_config.json").exists()


def perplexity(loss: float | None) -> float | None:
    if loss is None or not math.isfinite(loss):
        return None
    return float(math.exp(min(loss, 50.0)))


def peak_mb() -> float:
    """This process's peak memory in MiB: the GPU's allocations on CUDA, else the resident set (Linux: KiB)."""
    import resource

    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
