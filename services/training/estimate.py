"""A LoRA job's size before it runs: the model's linear layers (what `target_modules` may name), the trainable
parameters and their share, a memory estimate checked against this device, and a rough time per step.

Nothing is trained and no weight is read: the model is built on torch's "meta" device from its config alone. "seq"
below is the row length the trainer pads to: for a chat job whose data is here, measured on its first rows (each
batch padded to its longest row: the longest row for memory, the average batch for time), else max_length. The job
then measures its real speed and peak memory (`corrected`).

Memory model (bytes; a guide, not a promise):
- weights: every base parameter x its dtype size (0.5 for 4-bit, 1 for 8-bit QLoRA);
- adapter + optimizer: 16 bytes per trainable parameter (fp32 weight, fp32 gradient, AdamW's two fp32 states);
- activations: per layer about batch x seq x hidden x ACTIVATION_FACTOR values (Korthikanti et al. 2022
  count ~34 bytes per hidden unit per token in 16-bit, ~17 values, with attention scores not stored as SDPA does;
  18 leaves room for dropout masks). With activation checkpointing each layer keeps only its input (1 value) and
  one layer at a time is recomputed in full;
- logits: batch x seq x vocabulary x 4 bytes (fp32 for the loss): what fills memory first on a small model
  with a big vocabulary (SmolLM2: 49k entries).
Time model (rough): about 6 x parameters FLOPs per trained token for the layers an adapter trains through, less for
the frozen weights (their weight gradients are never computed: 4 x), at an assumed sustained speed for the device.
"""

from __future__ import annotations

import math

from services.training.common import _AUTO, TrainingError
from services.training.config import TrainConfig

ACTIVATION_FACTOR = 18
ADAM_BYTES = 16  # fp32 weight + fp32 gradient + AdamW exp_avg + exp_avg_sq
# Sustained training FLOP/s assumed per device (rough: real speed depends on the chip, shapes and padding).
CPU_FLOPS_PER_CORE = 30e9
RUNTIME_BYTES = 10**9
LENGTH_ROWS = 256  # rows read to measure a chat job's token lengths
GPU_FLOPS = 60e12
_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _meta_model(config: TrainConfig, location: str):
    """The task's model built from its config on the meta device (shapes only), and that config."""
    import torch
    import transformers

    try:
        base = transformers.AutoConfig.from_pretrained(location, trust_remote_code=config.trust_remote_code)
    except Exception as err:
        raise TrainingError(f"'{config.model}' could not be read: {str(err).splitlines()[0][:300]}") from err
    for key, value in (config.model_config or {}).items():
        setattr(base, key, value)
    if config.task == "text-regression":
        base.num_labels = 1
    auto = getattr(transformers, _AUTO[config.task])
    try:
        with torch.device("meta"):
            model = auto.from_config(base, trust_remote_code=config.trust_remote_code)
    except ValueError as err:
        raise TrainingError(f"'{config.model}' ({base.model_type}) cannot be trained for {config.task}.") from err
    return model, base


def _is_linear(module) -> bool:
    import torch
    from transformers.pytorch_utils import Conv1D

    return isinstance(module, torch.nn.Linear | Conv1D) or type(module).__name__.startswith("Linear")


def _shape(module) -> tuple[int, int]:
    """(in, out) features of a linear layer (GPT-2's Conv1D stores its weight transposed)."""
    rows, cols = module.weight.shape
    return (rows, cols) if type(module).__name__ == "Conv1D" else (cols, rows)


def count_trainable(config: TrainConfig, model, heads: list[str]) -> tuple[int, int, int]:
    """(trainable, base total, adapted layers): LoRA's A and B (r x (in + out)), DoRA's magnitude (out) and the
    heads saved whole, as peft builds them for this config."""
    from services.training.lora_config import HEADS

    settings = config.lora
    skip = ("lm_head", *HEADS)
    trainable = adapted = 0
    for name, module in model.named_modules():
        short = name.rsplit(".", 1)[-1]
        if not name or not _is_linear(module) or any(h in name.split(".") for h in heads):
            continue
        chosen = short not in skip if settings.target_modules == "all-linear" else short in settings.target_modules
        if chosen:
            fan_in, fan_out = _shape(module)
            trainable += settings.r * (fan_in + fan_out) + (fan_out if settings.use_dora else 0)
            adapted += 1
    for name, module in model.named_modules():
        if name.rsplit(".", 1)[-1] in heads:
            trainable += sum(p.numel() for p in module.parameters())
    return trainable, sum(p.numel() for p in model.parameters()), adapted


def _free_bytes(cuda: bool) -> int:
    if cuda:
        import torch

        return int(torch.cuda.mem_get_info()[0])
    import psutil

    from services.core.system import memory_limit_bytes

    return int(min(psutil.virtual_memory().available, memory_limit_bytes()))


def _padded_lengths(config: TrainConfig, owner: str | None, batch: int) -> tuple[float, int] | None:
    """A chat job's tokens per row as the trainer pads them (each batch to its longest row, cut at max_length)
    over the first rows, and the longest row: (mean padded length, longest); None where the data is not here."""
    from services.training.chat_data import conversations, encode
    from services.training.mask import job_tokenizer

    data = _train_data(config)
    if data is None or config.task != "chat":
        return None
    try:
        tokenizer = job_tokenizer(config, owner)
        rows, _ = conversations(data.select(range(min(LENGTH_ROWS, data.num_rows))), config)
    except Exception:  # the estimate falls back to max_length; the job itself says what is wrong
        return None
    lengths = [min(len(encode(tokenizer, m, config.loss_on, config.max_length).input_ids), config.max_length)
               for m in rows]  # fmt: skip
    if not lengths:
        return None
    batches = [lengths[i : i + batch] for i in range(0, len(lengths), batch)]
    padded = sum(max(b) * len(b) for b in batches) / len(lengths)
    return padded, max(lengths)


def _train_data(config: TrainConfig):
    """The training split, where the data is here to read (a bundled sample or a file); else None."""
    from pathlib import Path

    from services.core.errors import PlaygroundError
    from services.data import sources

    source = config.dataset.source
    if not (source.startswith(sources.SAMPLE_PREFIX) or Path(source).expanduser().is_file()):
        return None  # a Hub dataset is not downloaded for an estimate
    try:
        return sources.load(source, config=config.dataset.config, split=config.dataset.split)["train"]
    except (PlaygroundError, OSError, ValueError):
        return None


def _train_rows(config: TrainConfig) -> int | None:
    """Rows the job trains on, where the data is here to count (a bundled sample or a file); else None."""
    data = _train_data(config)
    if data is None:
        return None
    rows = data.num_rows
    split = config.dataset.eval_split
    if isinstance(split, int | float) or str(split).replace(".", "", 1).isdigit():
        rows -= max(1, round(rows * float(split)))
    if config.dataset.max_samples:
        rows = min(rows, int(config.dataset.max_samples))
    return max(rows, 0)


def estimate(config: TrainConfig, owner: str | None = None) -> dict:
    """What a LoRA job will train, need and take, without training (JSON-friendly; None where not knowable)."""
    import torch

    from services.core.system import device_info
    from services.training.lora_config import head_modules, linear_layer_names, peft_config
    from services.training.train import model_location

    if config.lora is None:
        raise TrainingError("The estimate is for a LoRA adapter: add a lora: section to the config.")
    location, _ = model_location(config.model, owner)
    model, base = _meta_model(config, location)
    peft_config(config, model)  # unknown target modules: the trainer's own sentence
    layers = linear_layer_names(model)
    classifier = config.task in ("text-classification", "text-regression", "token-classification")
    heads = head_modules(model) if classifier else []
    trainable, total, adapted = count_trainable(config, model, heads)
    selected = layers if config.lora.target_modules == "all-linear" else list(config.lora.target_modules)

    args = config.training
    batch = int(args.get("per_device_train_batch_size", 8))
    accumulate = int(args.get("gradient_accumulation_steps", 1))
    seq = int(config.max_length)
    shape = _padded_lengths(config, owner, batch)
    # Memory follows the longest batch; time the average one (the trainer pads each batch to its longest row).
    mem_seq, time_seq = (shape[1], shape[0]) if shape else (seq, seq)
    cuda = device_info().device == "cuda"
    checkpointing = bool(
        args.get("activation_checkpointing", args.get("gradient_checkpointing", cuda and not classifier))
    )
    dtype = str(getattr(base, "dtype", None) or "float32").removeprefix("torch.")
    weight_bytes = {"4bit": 0.5, "8bit": 1}.get(config.quantization or "", _DTYPE_BYTES.get(dtype, 4))
    act_bytes = 2 if cuda else _DTYPE_BYTES.get(dtype, 4)
    hidden = int(getattr(base, "hidden_size", 0) or getattr(base, "n_embd", 0) or getattr(base, "d_model", 0))
    n_layers = int(
        getattr(base, "num_hidden_layers", 0) or getattr(base, "n_layer", 0) or getattr(base, "num_layers", 0)
    )
    vocab = int(getattr(base, "vocab_size", 0) or 0)
    per_layer = batch * mem_seq * hidden * act_bytes
    activations = {
        "without_checkpointing": n_layers * per_layer * ACTIVATION_FACTOR,
        "with_checkpointing": n_layers * per_layer + per_layer * ACTIVATION_FACTOR,
    }
    if config.task in ("chat", "causal-lm", "summarization"):
        out_len = config.max_target_length if config.task == "summarization" else mem_seq
        logits = batch * out_len * vocab * 4
    else:
        logits = batch * (seq if config.task == "token-classification" else 1) * int(base.num_labels) * 4
    memory = {
        "weights": int(total * weight_bytes),
        "adapter_and_optimizer": trainable * ADAM_BYTES,
        "activations": activations["with_checkpointing" if checkpointing else "without_checkpointing"],
        "logits": logits,
    }
    # The process itself on a CPU: Python, torch, transformers, trl and the tokenizer (measured ~1 GB resident
    # before the model loads); on CUDA the allocator's peak excludes it.
    memory["runtime"] = 0 if cuda else RUNTIME_BYTES
    memory["total"] = sum(memory.values())
    free = _free_bytes(cuda)
    fits = memory["total"] <= free
    if fits:
        sentence = f"fits: about {_gb(memory['total'])} of the {_gb(free)} free"
    else:
        hint = "" if checkpointing else ", turn on activation_checkpointing"
        sentence = (
            f"does not fit: about {_gb(memory['total'])} is needed and {_gb(free)} is free: lower the batch size "
            f"(per_device_train_batch_size {batch}) or max_length ({seq}){hint}"
        )

    tokens = round(batch * time_seq * accumulate)
    flops = tokens * (4 * total + 6 * trainable)
    speed = GPU_FLOPS * max(device_info().gpu_count, 1) if cuda else CPU_FLOPS_PER_CORE * torch.get_num_threads()
    seconds = flops / speed
    rows = _train_rows(config)
    steps = None
    if args.get("max_steps") and int(args["max_steps"]) > 0:
        steps = int(args["max_steps"])
    elif rows is not None:
        epochs = float(args.get("num_train_epochs", 3))
        steps = math.ceil(math.ceil(rows / batch) / accumulate * epochs) if rows else 0
    return {
        "model": config.model,
        "task": config.task,
        "linear_layers": [*layers, "all-linear"],
        "selected_modules": selected,
        "modules_to_save": heads,
        "adapted_layers": adapted,
        "trainable_parameters": trainable,
        "total_parameters": total,
        "trainable_percent": round(100 * trainable / max(total + trainable, 1), 4),
        "memory": memory,
        "activations": {**activations, "checkpointing": checkpointing, "factor": ACTIVATION_FACTOR},
        "device": device_info().name,
        "free_bytes": free,
        "fits": fits,
        "sentence": sentence,
        "time": {
            "tokens_per_step": tokens,
            "seconds_per_step": round(seconds, 4),
            "train_rows": rows,
            "total_steps": steps,
            "total_seconds": round(seconds * steps, 1) if steps is not None else None,
            "tokens_per_row": round(time_seq, 1),
            "note": "rough: ~6 FLOPs per trainable and ~4 per frozen parameter per token, each batch padded to its "
            "longest row (measured on the first rows where the data is here, else max_length)",
        },
    }


def corrected(before: dict, measured: dict, steps_done: int | None = None) -> dict:
    """The estimate made before launch set against what the job measured in its first steps: the time left and in
    all at the measured speed, and the peak memory, each beside its estimate, with one sentence."""
    per_step = measured.get("seconds_per_step")
    time_ = before.get("time") or {}
    total_steps = time_.get("total_steps")
    if not isinstance(per_step, int | float) or per_step <= 0:
        return {"sentence": "Measuring: the first steps' speed corrects the estimate in a moment."}
    done = steps_done if steps_done is not None else int(measured.get("step") or 0)
    left = per_step * max((total_steps or done) - done, 0)
    out = {
        "seconds_per_step": round(per_step, 3),
        "estimated_seconds_per_step": time_.get("seconds_per_step"),
        "total_seconds": round(per_step * total_steps, 1) if total_steps else None,
        "estimated_total_seconds": time_.get("total_seconds"),
        "seconds_left": round(left, 1),
        "peak_bytes": int(measured["peak_mb"] * 2**20) if measured.get("peak_mb") else None,
        "estimated_bytes": (before.get("memory") or {}).get("total"),
    }
    sentence = f"Measured: {_duration(per_step)} a step"
    if time_.get("seconds_per_step"):
        sentence += f" (estimated {_duration(time_['seconds_per_step'])})"
    if total_steps:
        sentence += f", so about {_duration(per_step * total_steps)} for all {total_steps:,} steps"
        sentence += f", {_duration(left)} left" if left else ""
    if out["peak_bytes"]:
        sentence += f"; peak memory {_gb(out['peak_bytes'])}"
        if out["estimated_bytes"]:
            sentence += f" (estimated {_gb(out['estimated_bytes'])})"
    out["sentence"] = sentence + "."
    return out


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 90:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
