"""The chat job's trainer: trl's `SFTTrainer` with a LoRA adapter (`services.training.lora_config`), the
playground's own loss mask (`services.training.chat_data`), its callbacks and defaults fitted to the device, on the
same `train()` / `finish()` path as Fine-tune.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from services.training.common import TrainingError
from services.training.config import TrainConfig
from services.training.data import Prepared
from services.training.lora_config import check_quantization, peft_config, quantization_config

logger = logging.getLogger(__name__)


def _sft_args(config: TrainConfig, out: Path, cuda: bool):
    """SFTConfig from the job's settings, with the defaults trl picks for big GPUs turned into ones that fit here."""
    from trl import SFTConfig

    from services.training.run import base_arguments

    values = base_arguments(config, out)
    values.update(
        # Pre-tokenised rows with our labels: trl's own chat rendering, EOS appending and masks do not run.
        max_length=config.max_length,
        dataset_num_proc=None,
        completion_only_loss=None,
        assistant_only_loss=False,
    )
    values.setdefault("learning_rate", 2e-4)  # trl's 2e-5 is for full fine-tuning; an adapter needs ~10x
    values.setdefault("packing", False)
    values.setdefault("include_num_input_tokens_seen", "non_padding")  # tokens/s on the tab's curves
    if not cuda:
        # trl turns activation checkpointing on by default (memory for time). On a CPU with a small model memory
        # is not what runs out, and recomputing every layer in the backward pass costs a third of the step.
        # (transformers 5 calls it activation_checkpointing; trl's gradient_checkpointing=True is an alias of it.)
        if "gradient_checkpointing" not in values and "activation_checkpointing" not in values:
            values["activation_checkpointing"] = values["gradient_checkpointing"] = False
        # trl turns bf16 on when fp16 is not set; CPU bf16 autocast is slower than fp32 on most CPUs and rounds
        # the small LoRA updates away.
        values.setdefault("bf16", False)
        values.setdefault("fp16", False)
    try:
        return SFTConfig(**values)
    except (TypeError, ValueError) as err:
        raise TrainingError(f"These training settings do not work together: {str(err).splitlines()[0]}") from err


def build_sft_trainer(config, out: Path, tokenizer, base, location, train_rows, eval_rows, test_rows, events):
    """trl's SFTTrainer for a chat job, with the model and the prepared data (same contract as `build_trainer`)."""
    import transformers
    from transformers import EarlyStoppingCallback
    from trl import SFTTrainer

    from services.core.config import get_settings
    from services.training.chat_data import ensure_chat_template, tokenise
    from services.training.run import _callback, _cuda

    check_quantization(config)
    warning = ensure_chat_template(tokenizer, config.model)
    if warning:
        events.log(warning)
    cuda = _cuda()
    args = _sft_args(config, out, cuda)
    if config.dataset.max_samples:
        train_rows = train_rows.select(range(min(int(config.dataset.max_samples), train_rows.num_rows)))
    with args.main_process_first(desc="tokenize"):
        train, stats = tokenise(train_rows, config, tokenizer)
        eval_, _ = tokenise(eval_rows, config, tokenizer)
        test = tokenise(test_rows, config, tokenizer)[0] if test_rows is not None else None
    if train.num_rows == 0:
        raise TrainingError(
            "No token would be trained: every row's loss mask is empty (all labels -100). Check loss_on and that "
            "max_length leaves room for the assistant's answers."
        )
    if eval_.num_rows == 0:
        raise TrainingError("No evaluation row has an answer left to score: hold out more data or raise max_length.")
    if stats["truncated"]:
        events.log(
            f"{stats['truncated']:,} of {stats['rows']:,} conversations ({stats['truncated'] / stats['rows']:.0%}) "
            f"are longer than max_length {config.max_length} and were cut."
        )
    if stats["render_differs"]:
        events.log("The chat template renders a conversation differently as it goes on: see `lora mask`.")
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(
            location,
            trust_remote_code=config.trust_remote_code,
            quantization_config=quantization_config(config),
            use_safetensors=None if get_settings().allow_pickle else True,
            **({"device_map": {"": int(os.environ.get("LOCAL_RANK", "0"))}} if config.quantization else {}),
        )
    except ValueError as err:
        if "Unrecognized configuration class" in str(err):
            raise TrainingError(
                f"'{config.model}' ({base.model_type}) cannot chat: a chat job needs a decoder such as SmolLM2."
            ) from err
        raise
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    lora = peft_config(config, model)
    callback = _callback(events, True)
    callbacks = [callback]
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(config.early_stopping_patience)))
    try:
        trainer = SFTTrainer(
            model=model,
            args=args,
            train_dataset=train,
            eval_dataset=eval_,
            processing_class=tokenizer,
            peft_config=lora,
            callbacks=callbacks,
        )
    except ValueError as err:
        raise TrainingError(f"The LoRA adapter could not be put on this model: {str(err).splitlines()[0]}") from err
    trainer.diverged = False
    callback.trainer = trainer
    dropped = stats["no_trained_tokens"]
    return trainer, Prepared(train, eval_, test, trainer.data_collator, [], dropped, eval_rows, test_rows)
