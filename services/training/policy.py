"""What a visitor's training config may ask for: bounded sizes everywhere, and on a Space only hyperparameters.

`TrainConfig` accepts any `TrainingArguments` field, which is right for a person at their own terminal. A visitor's
config (the app, the API) is checked here first: numbers that set how much work a job does are bounded, and on a
public Space only the settings that shape the optimisation are accepted. The rest (DeepSpeed/FSDP config files,
resuming from another folder, torch.compile, data-loader processes, Hub pushes, trackers) reach the server's files,
processes or network, so they are refused there with a sentence, as are `model_config` keys that would change a
model's size or code instead of its regularisation.
"""

from __future__ import annotations

import os

from services.core.config import get_settings
from services.training.config import ConfigError, TrainConfig

# TrainingArguments fields a visitor on a Space may set: the optimisation, its schedule, evaluation and logging
# cadence, precision and memory savers.
SPACE_SETTINGS = frozenset(
    {
        "num_train_epochs", "max_steps", "learning_rate", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon",
        "max_grad_norm", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "per_device_train_batch_size",
        "per_device_eval_batch_size", "gradient_accumulation_steps", "eval_accumulation_steps", "seed", "data_seed",
        "eval_strategy", "eval_steps", "save_strategy", "save_steps", "save_total_limit", "logging_strategy",
        "logging_steps", "logging_first_step", "label_smoothing_factor", "optim", "fp16", "bf16", "tf32",
        "gradient_checkpointing", "group_by_length", "neftune_noise_alpha", "auto_find_batch_size",
        "dataloader_drop_last", "full_determinism", "predict_with_generate", "generation_max_length",
        "generation_num_beams", "sortish_sampler", "eval_delay", "torch_empty_cache_steps", "disable_tqdm",
        "average_tokens_across_devices", "remove_unused_columns", "use_cpu",
        "activation_checkpointing", "packing", "packing_strategy", "loss_type",
    }
)  # fmt: skip
# The most any visitor's job may ask for: past these a job would run for days or fill the disk.
BOUNDS = {
    "num_train_epochs": (0, 100),
    "max_steps": (-1, 1_000_000),
    "per_device_train_batch_size": (1, 4_096),
    "per_device_eval_batch_size": (1, 4_096),
    "gradient_accumulation_steps": (1, 1_024),
    "eval_accumulation_steps": (1, 1_024),
    "save_total_limit": (1, 5),
    "eval_steps": (1, 10_000_000),
    "save_steps": (1, 10_000_000),
    "logging_steps": (1, 10_000_000),
    "generation_num_beams": (1, 8),
    "generation_max_length": (1, 8_192),
    "dataloader_num_workers": (0, os.cpu_count() or 1),
}
LORA_MAX_RANK = 256  # lora:, loss_on and quantization are top-level keys: a visitor may set them, r bounded
_MODEL_CONFIG_WORDS = ("dropout", "_prob", "_eps", "initializer_range", "problem_type")


def check_for_visitors(config: TrainConfig) -> None:
    """Refuse a visitor's config that asks for more than a job may do here (see the module docstring)."""
    for key, value in config.training.items():
        if key in BOUNDS and value is not None:
            low, high = BOUNDS[key]
            try:
                number = float(value)
            except (TypeError, ValueError) as err:
                raise ConfigError(f"{key} must be a number, not '{str(value)[:40]}'.") from err
            if not low <= number <= high:
                raise ConfigError(f"{key} must be between {low:,} and {high:,} here; {value} was asked.")
    if config.lora is not None and config.lora.r > LORA_MAX_RANK:
        raise ConfigError(
            f"lora r must be at most {LORA_MAX_RANK} here (8 to 64 is usual); {config.lora.r} was asked."
        )
    if config.max_target_length > 8_192:
        raise ConfigError("max_target_length must be at most 8,192 tokens.")
    if not get_settings().on_space:
        return
    refused = sorted(k for k in config.training if k not in SPACE_SETTINGS and k not in BOUNDS)
    if refused:
        raise ConfigError(
            f"'{refused[0]}' cannot be set on this Space: it reaches the server's files, processes or network. "
            "The optimisation settings can (learning rate, epochs, batch size, schedule, evaluation, precision)."
        )
    for key, value in (config.model_config or {}).items():
        if not any(word in key for word in _MODEL_CONFIG_WORDS) or not isinstance(value, int | float | str):
            raise ConfigError(
                f"model_config may change dropout and similar settings on this Space, not '{key}', which would "
                "change the model's size or code."
            )
