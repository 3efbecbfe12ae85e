"""Fine-tuning as a job of the app: the config checked and written as YAML, then `python -m services train
CONFIG.yaml` as a supervised child process (the exact command the UI previews), and what a job left behind read back:
curves from its metric events, the report and the model card from its output folder.

A model trained from the app goes to the owner's own folder (`trained:<name>`); data files must be the owner's own
uploads, a bundled sample or a Hub dataset: nobody trains on files of the server or of another owner. On a Space a
visitor's config may set the training hyperparameters only (`services.training.policy`), never a model's own code.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import AccessDenied, PlaygroundError
from services.core.limits import check_id
from services.core.owners import owner_dir, safe_name
from services.core.redact import scrub
from services.core.safety import check_remote_code
from services.core.uploads import NOT_YOURS, uploads_root
from services.data import sources as data_sources
from services.hub.cards import write_model_card
from services.jobs.child import launcher_command
from services.models.catalog import TRAINED_PREFIX, trained_root
from services.training.common import is_trained
from services.training.config import TrainConfig
from services.training.curves import one_per_step
from services.training.policy import check_for_visitors

__all__ = ["check_source", "measured", "outputs", "resume", "retry", "start", "trained_root", "uploads_root"]
# Logged values that are not curves of the Fine-tune charts: the child's own measures, the token counter.
_NOT_CURVES = ("measured_", "num_input_tokens_seen")


def check_source(source: str, owner: str) -> None:
    """A file source must be the owner's own upload (or, where folders are allowed, a file outside the app's
    storage); samples and Hub ids pass. Anything that names a file or folder on the server counts as a file, so a
    "Hub id" like `tests/data` never reads the server's own folders."""
    source = check_id(source or "", "The dataset name")
    if source.startswith(data_sources.SAMPLE_PREFIX) or not data_sources.looks_like_path(source):
        return
    path = Path(source).expanduser().resolve()
    settings = get_settings()
    if path.is_relative_to(uploads_root(owner).resolve()):
        return
    if path.is_relative_to(settings.home.resolve()) or not settings.allow_local_paths:
        raise AccessDenied(NOT_YOURS.format(name=Path(source).name))


def config_path(owner: str, name: str) -> Path:
    folder = owner_dir(get_settings().home / "configs", owner)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{safe_name(name, 'model')}-{uuid.uuid4().hex[:6]}.yaml"


def prepare_config(config: TrainConfig | dict, owner: str, name: str, resume: bool = False) -> TrainConfig:
    """The config as the job will run it: output into the owner's trained models under `name`."""
    config = TrainConfig.from_dict(dict(config)) if isinstance(config, dict) else config
    check_remote_code(config.trust_remote_code)
    check_for_visitors(config)
    from services.training.lora_config import check_quantization

    check_quantization(config)  # QLoRA where it cannot run: a sentence now, not a failed child
    clean = safe_name(name or "", "")
    if not clean or clean != (name or "").strip():
        raise PlaygroundError("Name the model with letters, digits, '-', '_' or '.' (for example sentiment-minilm).")
    check_source(config.dataset.source, owner)
    if config.push_to_hub:  # offline, the push at the end could only fail
        from services.hub.check import check_online

        check_online()
    from services.models import fast_cpu
    from services.models.catalog import check_size, resolve
    from services.models.onnx_runtime import check_trainable

    resolved = resolve(config.model, owner)
    check_size(resolved)  # a clear sentence now, not a child that fills the disk
    check_trainable(resolved.location, config.model)
    fast_cpu.check_trainable(resolved, config.model)
    out = trained_root(owner) / clean
    if not resume and is_trained(out):
        raise PlaygroundError(
            f"You already have a model called '{clean}': pick another name (nothing was overwritten)."
        )
    if not resume and out.exists() and any(out.iterdir()):
        raise PlaygroundError(
            f"'{clean}' holds an unfinished training: resume it, or pick another name (its checkpoints are kept)."
        )
    data = config.to_dict()
    data.update(output_dir=str(out), resume=resume)
    return TrainConfig.from_dict(data)


def start(
    manager, owner: str, config: TrainConfig | dict, name: str, resume: bool = False, token: str | None = None
) -> str:
    """Start (or resume) a fine-tuning job; returns its id. A push token travels in the child's environment only."""
    config = prepare_config(config, owner, name, resume)
    path = config_path(owner, name)
    path.write_text(config.to_yaml(), encoding="utf-8")
    return manager.submit_command(
        "train",
        owner,
        ["train", "--owner", owner, str(path)],
        title=f"{'Resume' if resume else 'Fine-tune'} {name} ({config.task}, {config.model})",
        config={"name": name, "task": config.task, "model": config.model, "output_dir": config.output_dir},
        needs_gpu=True,
        env={"PLAYGROUND_PUSH_TOKEN": token} if token else None,
    )


def preview_command(path: str = "job.yaml") -> str:
    """The command a job runs, as a person would type it (python -m services train job.yaml)."""
    command = launcher_command("services", ["train", path])
    return " ".join(["python", *command[1:]])


def metric_events(manager, job_id: str, owner: str) -> list[dict]:
    """A job's metric events, read once for `curves` and `measured` together (a tab polls both every few seconds)."""
    return manager.events(job_id, owner, types=("metrics",))


def curves(manager, job_id: str, owner: str, events: list[dict] | None = None) -> list[dict]:
    """The logged values of a job as rows {step, epoch, series, value}, for line plots: one per series and step
    (the last logged), in step order. `events`: the job's metric events when the caller has read them already."""
    rows = []
    for event in metric_events(manager, job_id, owner) if events is None else events:
        values, step = event.get("values") or {}, event.get("step")
        for key, value in values.items():
            if (
                key in ("epoch", "total_flos")
                or key.startswith(("final_", "train_"))
                or not isinstance(value, int | float)
            ):
                continue
            if key.endswith(("runtime", "per_second", "grad_norm", "num_tokens")) or key.startswith(_NOT_CURVES):
                continue
            rows.append({"step": step or 0, "epoch": values.get("epoch") or 0, "series": key, "value": float(value)})
    return one_per_step(rows)


def measured(manager, job_id: str, owner: str, events: list[dict] | None = None) -> dict:
    """The training child's own measures: the latest seconds per step and peak memory (MiB) since step 1, and
    tokens per second as rows {step, series: "tokens_per_second", value} for a curve."""
    latest: dict = {}
    speed = []
    for event in metric_events(manager, job_id, owner) if events is None else events:
        values, step = event.get("values") or {}, event.get("step") or 0
        if "measured_seconds_per_step" not in values:
            continue
        latest = {"step": step, "seconds_per_step": values["measured_seconds_per_step"],
                  "peak_mb": values.get("measured_peak_mb")}  # fmt: skip
        if isinstance(values.get("measured_tokens_per_second"), int | float):
            speed.append({"step": step, "epoch": 0, "series": "tokens_per_second",
                          "value": float(values["measured_tokens_per_second"])})  # fmt: skip
    return {**latest, "tokens_per_second": one_per_step(speed)}


def resume(manager, job_id: str, owner: str) -> str:
    """Start a stopped training again from its last checkpoint, with the job.yaml it ran; returns the new job id."""
    name = outputs(manager, job_id, owner)["name"]
    config = TrainConfig.from_yaml(trained_root(owner) / safe_name(name or "", "model") / "job.yaml")
    return start(manager, owner, config, name, resume=True)


def has_checkpoint(out: Path) -> bool:
    """Whether a training folder holds a checkpoint the Trainer can resume from (not just an empty folder)."""
    folder = out / "checkpoints"
    return folder.is_dir() and any((c / "trainer_state.json").is_file() for c in folder.glob("checkpoint-*"))


def outputs(manager, job_id: str, owner: str) -> dict:
    """What a finished training job left: its summary, report and the model id to use it by (no server paths)."""
    record = manager.get(job_id, owner)
    name = (record.config or {}).get("name")
    out = trained_root(owner) / safe_name(name or "", "model")
    report_path = out / "report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    ready = is_trained(out)
    return {
        "status": record.status,
        "summary": scrub(record.result or {}),  # shown to the visitor: checkpoint paths become their names
        "report": scrub(report),
        "model_id": f"{TRAINED_PREFIX}{name}" if ready and name else None,
        "resumable": has_checkpoint(out) and not ready,
        "name": name,
    }


def retry(manager, record, owner: str, env: dict[str, str]) -> str:
    """Start a training that did not succeed again: from its last checkpoint when it saved one, else from the
    start (a folder holding no checkpoint and no model has nothing worth keeping)."""
    import shutil

    if not record.done or record.status == "succeeded":
        raise PlaygroundError("Only a job that failed, was cancelled or was interrupted can be started again.")
    name = (record.config or {}).get("name") or ""
    try:
        config = TrainConfig.from_yaml_text(Path((record.command or [""])[-1]).read_text(encoding="utf-8"))
    except OSError as err:
        raise PlaygroundError("The settings of that training are gone: start it from the Fine-tune tab.") from err
    out = trained_root(owner) / safe_name(name, "model")
    resume = has_checkpoint(out)
    if not resume and out.is_dir() and not is_trained(out):
        shutil.rmtree(out)
    return start(manager, owner, config, name, resume=resume, token=env.get("PLAYGROUND_PUSH_TOKEN"))


# Base models the form proposes per task: packaged ones work offline; Hub ones when online.
_PACKAGED = {
    "text-classification": ["all-minilm-l6-v2"],
    "text-regression": ["all-minilm-l6-v2"],
    "token-classification": ["all-minilm-l6-v2"],
    "summarization": [],
    "causal-lm": ["smollm2-135m-instruct"],
    "chat": ["smollm2-135m-instruct"],
}
_HUB = {
    "text-classification": ["distilbert/distilbert-base-uncased", "FacebookAI/roberta-base"],
    "text-regression": ["distilbert/distilbert-base-uncased"],
    "token-classification": ["distilbert/distilbert-base-cased", "google-bert/bert-base-cased"],
    "summarization": ["google-t5/t5-small", "facebook/bart-base"],
    "causal-lm": ["openai-community/gpt2", "HuggingFaceTB/SmolLM2-135M"],
    "chat": ["HuggingFaceTB/SmolLM2-360M-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"],
}


def base_models(task: str, owner: str | None) -> list[str]:
    """Model ids to offer for fine-tuning `task`: packaged, your trained models, and Hub models when online."""
    from services.models import catalog as models
    from services.models import packs

    offline = get_settings().offline
    found = [m for m in _PACKAGED.get(task, []) if m in packs.PACKS and packs.PACKS[m].installed]
    trained = models.trained_models(owner)
    if task == "chat":  # a chat adapter trains on a full decoder (an adapter is not stacked on an adapter)
        from services.models.adapters import is_adapter

        root = trained_root(owner)
        trained = [e for e in trained if "text-generation" in e.tasks
                   and not is_adapter(root / e.id.removeprefix(TRAINED_PREFIX))]  # fmt: skip
    from services.models.onnx_runtime import is_export

    root = trained_root(owner) if owner else None  # an ONNX export runs but does not train: not offered as a base
    found += [e.id for e in trained if root is None or not is_export(root / e.id.removeprefix(TRAINED_PREFIX))]
    return found + ([] if offline else _HUB.get(task, []))


def refresh_model_card(folder: str | Path, repo_id: str) -> Path:
    """Rewrite a fine-tuned model's card for the repo it is pushed to (its snippet loads from that repo)."""
    folder = Path(folder)
    summary_path, report_path = folder / "playground-model.json", folder / "report.json"
    if not summary_path.is_file() or not (folder / "job.yaml").is_file():
        return folder / "README.md"  # not a model trained here: leave its card as it is
    config = TrainConfig.from_yaml(folder / "job.yaml")
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    history = report.pop("history", [])
    return write_model_card(folder, config, json.loads(summary_path.read_text()), report, history, repo_id)
