"""LoRA's peft side, for every task: the adapter's `LoraConfig` from a `TrainConfig` (target modules checked against
the model's real linear layers; a classifier head saved whole with it), the adapter put on a model, and QLoRA's
device check and quantization config.
"""

from __future__ import annotations

import logging

from services.training.common import TrainingError
from services.training.config import TrainConfig

logger = logging.getLogger(__name__)
# Heads trained in full and saved with the adapter: a classifier made for new labels starts random.
HEADS = ("classifier", "score", "qa_outputs", "pre_classifier")
_TASK_TYPES = {
    "chat": "CAUSAL_LM",
    "causal-lm": "CAUSAL_LM",
    "text-classification": "SEQ_CLS",
    "text-regression": "SEQ_CLS",
    "token-classification": "TOKEN_CLS",
    "summarization": "SEQ_2_SEQ_LM",
}


def check_quantization(config: TrainConfig) -> None:
    """QLoRA needs bitsandbytes on a CUDA GPU; anywhere else a sentence says why not."""
    if not config.quantization:
        return
    import importlib.util

    import torch

    if not torch.cuda.is_available():
        raise TrainingError(
            f"{config.quantization} quantization (QLoRA) needs a CUDA GPU, and this machine has none: remove "
            "'quantization' to train the LoRA adapter on the full-precision model."
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise TrainingError(
            f"{config.quantization} quantization (QLoRA) needs the bitsandbytes package, which is not installed "
            "here: remove 'quantization', or install bitsandbytes."
        )


def quantization_config(config: TrainConfig):
    if not config.quantization:
        return None
    import torch
    from transformers import BitsAndBytesConfig

    if config.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16,
    )


def linear_layer_names(model) -> list[str]:
    """The short names of the model's linear layers (what target_modules may name), heads left out."""
    import torch
    from transformers.pytorch_utils import Conv1D

    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear | Conv1D) or type(module).__name__.startswith("Linear"):
            short = name.rsplit(".", 1)[-1]
            if short not in ("lm_head", *HEADS):
                names.add(short)
    return sorted(names)


def head_modules(model) -> list[str]:
    """The task head's module names (saved whole with a SEQ_CLS / TOKEN_CLS adapter)."""
    return [h for h in HEADS if any(n.rsplit(".", 1)[-1] == h for n, _ in model.named_modules())]


def peft_config(config: TrainConfig, model):
    """peft's `LoraConfig` for this job and model; unknown target modules are named with the ones that exist."""
    from peft import LoraConfig, TaskType

    settings = config.lora
    existing = linear_layer_names(model)
    targets = settings.target_modules
    if targets != "all-linear":
        missing = [t for t in targets if t not in existing]
        if missing:
            raise TrainingError(
                f"The model has no linear layer called {', '.join(repr(m) for m in missing)}. Its linear layers are "
                f"{', '.join(existing)} (or use all-linear)."
            )
    init: bool | str = True if settings.init == "default" else settings.init
    task_type = getattr(TaskType, _TASK_TYPES[config.task])
    heads = head_modules(model) if task_type in (TaskType.SEQ_CLS, TaskType.TOKEN_CLS) else None
    try:
        return LoraConfig(
            r=settings.r,
            lora_alpha=settings.alpha,
            lora_dropout=settings.dropout,
            target_modules=targets,
            use_dora=settings.use_dora,
            use_rslora=settings.use_rslora,
            init_lora_weights=init,
            task_type=task_type,
            modules_to_save=heads or None,
        )
    except ValueError as err:
        raise TrainingError(f"These LoRA settings do not work together: {str(err).splitlines()[0]}") from err


def wrap(config: TrainConfig, model):
    """The model with a LoRA adapter on it (for the Trainer path: classification, NER, ...)."""
    from peft import get_peft_model

    try:
        wrapped = get_peft_model(model, peft_config(config, model))
    except ValueError as err:
        raise TrainingError(f"The LoRA adapter could not be put on this model: {str(err).splitlines()[0]}") from err
    trainable, total = wrapped.get_nb_trainable_parameters()
    logger.info("LoRA: %s trainable parameters of %s (%.2f%%)", trainable, total, 100 * trainable / max(total, 1))
    return wrapped
