"""Fine-tuning with the 🤗 Trainer: `train(config)` is what `python -m services train CONFIG.yaml` runs, in a child
process of the app (under `accelerate launch` when several GPUs are present) or in a terminal.

It writes into `output_dir`: `job.yaml` (the resolved config) first, then `events.jsonl` (progress, logs, metrics),
checkpoints under `checkpoints/` at each evaluation, and at the end the model and tokenizer (`from_pretrained`
loads them; classification labels are `id2label` names), `metrics.json`, `report.json` (per-class metrics, confusion
matrix, sample predictions) and `README.md` (the model card). Cancel (SIGTERM) saves a checkpoint and stops;
`resume: true` continues from the last one. Only the main process writes files when several run.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

from services.core.errors import PlaygroundError
from services.jobs.events import EventWriter, cancel_requested
from services.training.common import (  # noqa: F401  (their home before; callers import them here)
    _AUTO,
    _KIND,
    TrainingCancelled,
    TrainingError,
    _is_main,
    is_trained,
    perplexity,
)
from services.training.config import TrainConfig

logger = logging.getLogger(__name__)


class RunEvents(EventWriter):
    """Events for the supervising job, also appended to `events.jsonl` in the output folder (the run's log)."""

    def __init__(self, log_path: Path | None):
        super().__init__()
        self.log_path = log_path

    def emit(self, type_: str, **data) -> None:
        super().emit(type_, **data)
        if self.log_path is not None and self.enabled:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps({"time": time.time(), "type": type_, **data}, default=str) + "\n")


def model_location(model: str, owner: str | None) -> tuple[str, str]:
    """(what from_pretrained loads, where it came from) for a catalog id, Hub id, folder or trained:<name>."""
    from services.models import catalog as models
    from services.models import fast_cpu, packs
    from services.models.onnx_runtime import check_trainable

    resolved = models.resolve(model, owner)
    check_trainable(resolved.location, model)
    fast_cpu.check_trainable(resolved, model)
    if resolved.source == "packaged":
        return str(packs.ensure_ready(resolved.location)), "packaged"
    return resolved.location, resolved.source


def train(config: TrainConfig, owner: str | None = None, events: EventWriter | None = None) -> dict:
    """Run one fine-tuning job end to end; returns the summary also saved as the job's result."""
    import torch
    import transformers

    from services.core.safety import check_remote_code
    from services.data import sources as data_sources
    from services.training.lora import build_sft_trainer
    from services.training.lora_config import check_quantization
    from services.training.run import build_trainer, finish

    check_remote_code(config.trust_remote_code)  # again here: the policy holds for the job process too
    check_quantization(config)
    out = Path(config.output_dir).expanduser().resolve()
    main = _is_main()
    if main:
        out.mkdir(parents=True, exist_ok=True)
        if not config.resume and is_trained(out):
            raise TrainingError(
                f"'{out}' already holds a trained model; choose another output_dir (nothing was overwritten)."
            )
        (out / "job.yaml").write_text(config.to_yaml(), encoding="utf-8")
    events = events or RunEvents(out / "events.jsonl" if main else None)
    started = time.time()
    events.progress(0.01, "Loading the data")
    data = data_sources.load(config.dataset.source, config=config.dataset.config, split=config.dataset.split)
    label_column = config.dataset.target(config.task) if config.task == "text-classification" else None
    train_rows, eval_rows = data_sources.split(data, config.dataset.eval_split, label_column)
    test_rows = data["test"] if "test" in data and config.dataset.eval_split != "test" else None

    events.progress(0.03, f"Loading {config.model}")
    location, source = model_location(config.model, owner)
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(location, trust_remote_code=config.trust_remote_code)
        base = transformers.AutoConfig.from_pretrained(location, trust_remote_code=config.trust_remote_code)
    except Exception as err:
        raise TrainingError(f"'{config.model}' could not be loaded: {str(err).splitlines()[0][:300]}") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    builder = build_sft_trainer if config.task == "chat" else build_trainer
    # Seeded before the model is built: its new head and the LoRA weights start random, and the Trainer seeds only
    # once it exists, so without this the same config would give another model each time.
    transformers.set_seed(int(config.training.get("seed", 42)))
    trainer, prepared = builder(config, out, tokenizer, base, location, train_rows, eval_rows, test_rows, events)

    resume_from = None
    if config.resume:
        from transformers.trainer_utils import get_last_checkpoint

        checkpoints = out / "checkpoints"
        resume_from = get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None
        if resume_from is None:
            raise TrainingError(f"There is no checkpoint in '{out}' to resume from; start a new training instead.")
        events.log(f"Resuming from {Path(resume_from).name}")
    events.progress(0.05, f"Training on {prepared.train.num_rows:,} rows, evaluating on {prepared.eval.num_rows:,}")
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    except (torch.OutOfMemoryError, MemoryError) as err:
        raise TrainingError(_memory_advice(config)) from err
    except RuntimeError as err:
        if "out of memory" in str(err).lower() or "can't allocate memory" in str(err).lower():
            raise TrainingError(_memory_advice(config)) from err
        raise
    if getattr(trainer, "diverged", False):
        raise TrainingError(
            "The loss became NaN or infinite: the learning rate is too high for this model. Try 5e-5 or lower; "
            "the last checkpoint is kept."
        )
    if cancel_requested():
        events.log("Cancelled: the last checkpoint is kept; resume continues from it.")
        raise TrainingCancelled("Training was cancelled; the last checkpoint is kept.")
    summary = finish(config, trainer, prepared, out, tokenizer, events, started, source)
    if main and not config.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)  # the final model is saved; checkpoints are large
    if main and config.push_to_hub:
        summary["push"] = push_result(config, out, events)
    events.progress(1.0, "Done")
    return summary


def _memory_advice(config: TrainConfig) -> str:
    batch = int(config.training.get("per_device_train_batch_size", 16))
    accumulate = 2 * int(config.training.get("gradient_accumulation_steps", 1))
    return (
        f"A batch of {batch} texts of up to {config.max_length} tokens did not fit in memory. Try a batch size of "
        f"{max(1, batch // 2)} with gradient_accumulation_steps {accumulate}, or a smaller max_length. "
        "Nothing else was lost."
    )


def push_result(config: TrainConfig, out: Path, events: EventWriter) -> dict:
    from services.hub.push import push

    target = config.push_to_hub or {}
    try:
        return push(
            out,
            target["repo_id"],
            private=bool(target.get("private", True)),
            message=target.get("message") or f"Fine-tuned {config.model} for {config.task} with HF Playground",
            token=os.environ.get("PLAYGROUND_PUSH_TOKEN"),
            progress=lambda f, m: events.log(m),
        )
    except PlaygroundError as err:
        # The model is trained and saved; a failed push must not turn the job into a failure.
        events.log(f"Push to the Hub failed: {err}")
        return {"error": str(err)}
