"""The Trainer for one job: model with the right head, `TrainingArguments`, metrics per task, a callback that turns
the Trainer's progress into job events (and honours Cancel), and the end of a run: save, evaluate, report, card.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from pathlib import Path

import numpy as np

from services.jobs.events import EventWriter, cancel_requested
from services.training import metrics as M
from services.training.common import _AUTO, _KIND, TrainingError, _is_main, peak_mb, perplexity
from services.training.config import TrainConfig
from services.training.data import Prepared, prepare

logger = logging.getLogger(__name__)
SAMPLE_PREDICTIONS = 12


def step_progress(step: int, max_steps: int) -> float:
    """The job's progress at a training step: training runs from 5% to 90% (loading before, saving after), and a
    Cancel reports the same scale, so the bar never moves back."""
    return 0.05 + 0.85 * min(1.0, step / max(max_steps, 1))


def _callback(events: EventWriter, causal: bool):
    from transformers import TrainerCallback

    class JobEvents(TrainerCallback):
        """Progress with ETA, logged losses and eval metrics as events; Cancel saves a checkpoint and stops."""

        def __init__(self):
            self.started = time.time()
            self.last = 0.0
            self.trainer = None
            self.causal = causal
            self.mark: tuple[int, float, int] | None = None  # (step, time, tokens seen) the measure starts from
            self.measured = 0.0

        def on_step_end(self, args, state, control, **kwargs):
            if cancel_requested():
                control.should_save = True
                control.should_training_stop = True
                events.progress(step_progress(state.global_step, state.max_steps), "Cancelling: saving a checkpoint")
                return control
            now = time.time()
            self._measure(state, now)
            if now - self.last >= 1.0 or state.global_step == state.max_steps:
                self.last = now
                done = state.global_step / max(state.max_steps, 1)
                left = (now - self.started) / done * (1 - done) if done else 0
                eta = f"{int(left // 60)} min {int(left % 60):02d} s" if left >= 60 else f"{int(left)} s"
                events.progress(
                    step_progress(state.global_step, state.max_steps),
                    f"Step {state.global_step}/{state.max_steps} · epoch {state.epoch or 0:.2f} · about {eta} left",
                )
            return control

        def _measure(self, state, now: float) -> None:
            """The measured speed and peak memory from step 1 on (loading and the first step left out), every
            few seconds: what corrects the estimate made before launch (`services.training.estimate.corrected`)."""
            step, tokens = state.global_step, int(getattr(state, "num_input_tokens_seen", 0) or 0)
            if self.mark is None:
                self.mark = (step, now, tokens)
                return
            first, then, seen = self.mark
            if step <= first or (now - self.measured < 5.0 and step != state.max_steps):
                return
            self.measured = now
            values = {"measured_seconds_per_step": (now - then) / (step - first), "measured_peak_mb": peak_mb()}
            if tokens > seen:
                values["measured_tokens_per_second"] = (tokens - seen) / max(now - then, 1e-9)
            events.metrics(values, step)

        def on_log(self, args, state, control, logs=None, **kwargs):
            values = {k: v for k, v in (logs or {}).items() if isinstance(v, int | float)}
            loss = values.get("loss", values.get("eval_loss"))
            if loss is not None and not math.isfinite(loss):
                if self.trainer is not None:
                    self.trainer.diverged = True
                control.should_training_stop = True
            if "eval_loss" in values and self.causal:
                values["eval_perplexity"] = perplexity(values["eval_loss"])
            if values:
                events.metrics({**values, "epoch": state.epoch}, state.global_step)
            return control

        def on_save(self, args, state, control, **kwargs):
            events.artifact(f"{args.output_dir}/checkpoint-{state.global_step}", kind="checkpoint")
            return control

    return JobEvents()


def compute_metrics_for(config: TrainConfig, labels: list[str], tokenizer):
    task = config.task
    if task in ("causal-lm", "chat"):
        return None

    def classification(pred):
        logits, gold = pred.predictions, pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        if config.dataset.multi_label:
            result = M.multi_label(gold, 1 / (1 + np.exp(-logits)) > 0.5, labels)
        else:
            result = M.classification(gold, logits.argmax(-1), labels)
        return {k: v for k, v in result.items() if isinstance(v, float)}

    def regression(pred):
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        return M.regression(pred.label_ids, logits.reshape(-1))

    def tokens(pred):
        logits = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        gold, guess = _tag_sequences(pred.label_ids, logits.argmax(-1), labels)
        return {k: v for k, v in M.entities(gold, guess).items() if isinstance(v, float)}

    def summaries(pred):
        predicted, references = _decode_pairs(pred, tokenizer)
        return {**M.rouge(predicted, references), "bleu": M.bleu(predicted, references)}

    return {
        "text-classification": classification,
        "text-regression": regression,
        "token-classification": tokens,
        "summarization": summaries,
    }[task]


def _tag_sequences(label_ids, predicted, labels):
    gold, guess = [], []
    for row_gold, row_pred in zip(label_ids, predicted, strict=True):
        keep = row_gold != -100
        gold.append([labels[i] for i in row_gold[keep]])
        guess.append([labels[i] for i in row_pred[keep]])
    return gold, guess


def _decode_pairs(pred, tokenizer):
    ids = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
    ids = np.where(ids < 0, tokenizer.pad_token_id, ids)
    gold = np.where(pred.label_ids < 0, tokenizer.pad_token_id, pred.label_ids)
    return (
        tokenizer.batch_decode(ids, skip_special_tokens=True),
        tokenizer.batch_decode(gold, skip_special_tokens=True),
    )


def build_model(config: TrainConfig, base, location: str, labels: list[str]):
    import transformers

    overrides = dict(config.model_config or {})
    if config.task == "text-classification":
        overrides.update(
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={n: i for i, n in enumerate(labels)},
            problem_type="multi_label_classification" if config.dataset.multi_label else "single_label_classification",
        )
    elif config.task == "text-regression":
        overrides.update(num_labels=1, problem_type="regression", id2label={0: "score"}, label2id={"score": 0})
    elif config.task == "token-classification":
        overrides.update(
            num_labels=len(labels), id2label=dict(enumerate(labels)), label2id={n: i for i, n in enumerate(labels)}
        )
    for key, value in overrides.items():
        setattr(base, key, value)
    if base.pad_token_id is None and getattr(base, "eos_token_id", None) is not None:
        base.pad_token_id = base.eos_token_id if isinstance(base.eos_token_id, int) else base.eos_token_id[0]
    from services.core.config import get_settings

    auto = getattr(transformers, _AUTO[config.task])
    try:
        # A model that already has a head of another size (other labels) gets a fresh one. Where pickles are not
        # allowed (a Space), only safetensors weights are read: a pickled checkpoint can run code as it loads.
        return auto.from_pretrained(
            location,
            config=base,
            trust_remote_code=config.trust_remote_code,
            ignore_mismatched_sizes=True,
            use_safetensors=None if get_settings().allow_pickle else True,
        )
    except OSError as err:
        if "safetensors" in str(err).lower():
            raise TrainingError(
                f"'{config.model}' has no safetensors weights, only pickled ones, which are not loaded here: pick a "
                "model that has a model.safetensors file."
            ) from err
        raise
    except ValueError as err:
        if "Unrecognized configuration class" in str(err) or "not supported" in str(err):
            need = _KIND.get(config.task, "a model with a matching head")
            raise TrainingError(
                f"'{config.model}' ({base.model_type}) cannot be trained for {config.task}: that needs {need}."
            ) from err
        raise


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


_MEAN_LOSS_TASKS = ("text-classification", "text-regression", "token-classification")


def base_arguments(config: TrainConfig, out: Path) -> dict:
    """The Trainer settings every job shares (Fine-tune and LoRA): the playground's defaults, the config's own
    settings, the managed ones (outputs, best model) and mixed precision where the GPU has it."""
    metric, greater = config.best_metric
    values = {
        "eval_strategy": "epoch",
        "save_strategy": "epoch",
        "logging_strategy": "steps",
        "logging_steps": 5,
        "save_total_limit": 2,
        "report_to": "none",
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "dataloader_pin_memory": _cuda(),
        **config.training,
        "output_dir": str(out / "checkpoints"),
        "load_best_model_at_end": True,
        "metric_for_best_model": "loss" if metric == "perplexity" else metric,
        "greater_is_better": greater,
    }
    if values.get("eval_strategy") != values.get("save_strategy"):
        values["save_strategy"] = values["eval_strategy"]  # the best model needs a checkpoint at each evaluation
    if values.get("eval_strategy") == "steps":
        values.setdefault("eval_steps", values.get("save_steps") or 50)
        values["save_steps"] = values["eval_steps"]
    if not _cuda() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # Several processes without a GPU (torchrun / accelerate on CPU): data parallel over gloo.
        values.setdefault("use_cpu", True)
        values.setdefault("ddp_backend", "gloo")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and config.task in _MEAN_LOSS_TASKS:
        # These heads average their loss themselves; transformers 5 still multiplies it by the number of processes
        # when it counts tokens across devices: with two processes the logged loss and the gradients came out 2x.
        values.setdefault("average_tokens_across_devices", False)
    if _cuda() and "bf16" not in values and "fp16" not in values:
        import torch

        # Mixed precision where the GPU has it: bf16 on Ampere and newer, else fp16.
        values["bf16" if torch.cuda.is_bf16_supported() else "fp16"] = True
    return values


def build_trainer(config, out: Path, tokenizer, base, location, train_rows, eval_rows, test_rows, events):
    import transformers
    from transformers import EarlyStoppingCallback, Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer

    seq2seq = config.task == "summarization"
    values = base_arguments(config, out)
    if seq2seq:
        values.setdefault("predict_with_generate", True)
        values.setdefault("generation_max_length", config.max_target_length)
    args_cls = Seq2SeqTrainingArguments if seq2seq else transformers.TrainingArguments
    try:
        args = args_cls(**values)
    except (TypeError, ValueError) as err:
        raise TrainingError(f"These training settings do not work together: {str(err).splitlines()[0]}") from err
    prepared = prepare(config, train_rows, eval_rows, test_rows, tokenizer, base.model_type, args)
    model = build_model(config, base, location, prepared.labels)
    if config.lora is not None:
        from services.training.lora_config import wrap

        model = wrap(config, model)
    callback = _callback(events, config.task == "causal-lm")
    callbacks = [callback]
    if config.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=int(config.early_stopping_patience)))
    trainer_cls = Seq2SeqTrainer if seq2seq else Trainer
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=prepared.train,
        eval_dataset=prepared.eval,
        data_collator=prepared.collator,
        processing_class=tokenizer,
        compute_metrics=compute_metrics_for(config, prepared.labels, tokenizer),
        callbacks=callbacks,
    )
    trainer.diverged = False
    callback.trainer = trainer
    return trainer, prepared


def finish(config, trainer, prepared: Prepared, out: Path, tokenizer, events, started: float, source: str) -> dict:
    """Save the best model, evaluate it, and write metrics.json, report.json and the model card."""
    from transformers import EarlyStoppingCallback

    from services.hub.cards import write_model_card

    events.progress(0.92, "Saving the model")
    trainer.remove_callback(EarlyStoppingCallback)  # the final evaluations are not part of training
    # ... nor of its curves: evaluating the best model again at the last step would draw a jump there.
    for callback in [c for c in trainer.callback_handler.callbacks if type(c).__name__ == "JobEvents"]:
        trainer.remove_callback(callback)
    trainer.save_model(str(out))
    final = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items() if isinstance(v, int | float)}
    causal = config.task in ("causal-lm", "chat")
    if causal:
        final["perplexity"] = perplexity(final.get("loss"))
    report = evaluation_report(config, trainer, prepared, tokenizer)
    if prepared.test is not None and prepared.test.num_rows:
        events.progress(0.96, "Evaluating on the held-back test split")
        test = trainer.evaluate(prepared.test, metric_key_prefix="test")
        report["test"] = {k.removeprefix("test_"): v for k, v in test.items() if isinstance(v, int | float)}
        if causal:
            report["test"]["perplexity"] = perplexity(report["test"].get("loss"))
    history = [h for h in trainer.state.log_history if isinstance(h, dict)]
    summary = {
        "output_dir": str(out),
        "task": config.task,
        "model": config.model,
        "metrics": final,
        "test_metrics": report.get("test"),
        "labels": prepared.labels,
        "train_rows": prepared.train.num_rows,
        "eval_rows": prepared.eval.num_rows,
        "dropped_rows": prepared.dropped,
        "epochs": trainer.state.epoch,
        "steps": trainer.state.global_step,
        "seconds": round(time.time() - started, 1),
        "best_checkpoint": trainer.state.best_model_checkpoint,
    }
    if _is_main():
        (out / "metrics.json").write_text(json.dumps(final, indent=2), encoding="utf-8")
        (out / "report.json").write_text(json.dumps({**report, "history": history}, indent=2, default=str))
        (out / "playground-model.json").write_text(json.dumps({**summary, "base_source": source}, indent=2))
        if config.lora is not None:
            from services.training.lora_card import make_portable, write_adapter_card

            make_portable(out, config)
            write_adapter_card(out, config, summary, report, tokenizer)
        else:
            write_model_card(out, config, summary, report, history)
    events.metrics({f"final_{k}": v for k, v in final.items() if v is not None}, trainer.state.global_step)
    events.result(summary)
    return summary


def evaluation_report(config: TrainConfig, trainer, prepared: Prepared, tokenizer) -> dict:
    """Per-class metrics and the confusion matrix (classification) and sample predictions, on the eval split."""
    task = config.task
    report: dict = {"task": task, "labels": prepared.labels}
    if task == "chat":
        from services.training.lora_card import sample_answers

        report["samples"] = sample_answers(config, trainer.model, tokenizer, prepared)
        return report
    if task == "causal-lm":
        return report
    output = trainer.predict(prepared.eval, metric_key_prefix="eval")
    raw = prepared.raw_eval
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    text, target = config.dataset.text_column, config.dataset.target(task)
    n = min(SAMPLE_PREDICTIONS, raw.num_rows)
    if task == "text-classification" and not config.dataset.multi_label:
        full = M.classification(output.label_ids, logits.argmax(-1), prepared.labels)
        report.update(per_class=full["per_class"], confusion_matrix=full["confusion_matrix"])
        predicted = [prepared.labels[i] for i in logits.argmax(-1)[:n]]
    elif task == "text-classification":
        full = M.multi_label(output.label_ids, 1 / (1 + np.exp(-logits)) > 0.5, prepared.labels)
        report["per_class"] = full["per_class"]
        chosen = 1 / (1 + np.exp(-logits[:n])) > 0.5
        predicted = [", ".join(p for p, on in zip(prepared.labels, row, strict=True) if on) for row in chosen]
    elif task == "text-regression":
        predicted = [round(float(v), 4) for v in logits.reshape(-1)[:n]]
    elif task == "token-classification":
        gold, guess = _tag_sequences(output.label_ids, logits.argmax(-1), prepared.labels)
        report["per_class"] = M.entities(gold, guess)["per_class"]
        predicted = [" ".join(tags) for tags in guess[:n]]
    else:
        predicted, _ = _decode_pairs(output, tokenizer)
        predicted = predicted[:n]
    report["samples"] = [
        {
            "text": " ".join(map(str, row[text])) if isinstance(row[text], list) else str(row[text]),
            "expected": " ".join(map(str, row[target])) if isinstance(row[target], list) else row[target],
            "predicted": p,
        }
        for row, p in zip(raw.select(range(n)), predicted, strict=False)
    ]
    return report
