"""The model catalog and the resolver: which models exist, which are usable now, and where their files are.

A model id typed anywhere in the app (or the CLI) is one of, in this order:
1. a packaged offline model: ``all-minilm-l6-v2``, ``smollm2-135m-instruct``, or one of the adapters shipped on
   them (``minilm-sentiment``, ``minilm-ner``, ``grounded-answers``: `services.models.packaged_adapters`);
2. a model trained in this app by the caller: ``trained:<name>``;
3. a folder on the server (when PLAYGROUND_ALLOW_LOCAL_PATHS allows it);
(a trained model or a folder may be a PEFT adapter: `services.models.adapters` resolves it with its base;)
4. a Hub repo id such as ``distilbert/distilbert-base-uncased-finetuned-sst-2-english``.
Loading lives in `services.models.loading`; this module only decides and explains.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import AccessDenied, ModelNotFound, ModelUnavailable, NotAModel, PlaygroundError
from services.core.limits import check_id
from services.core.owners import safe_name
from services.hub import push as hub
from services.models import adapters, fast_cpu, onnx_runtime, packaged_adapters, packs
from services.models.entries import (
    EMBEDDING_TASKS,
    TASK_ALIASES,
    TASKS,
    TRAINED_PREFIX,
    ModelEntry,
    ResolvedModel,
    canonical_task,
    describe_tasks,
    tasks_for_config,
    trained_root,
)

__all__ = ["EMBEDDING_TASKS", "TASKS", "TASK_ALIASES", "TRAINED_PREFIX", "ModelEntry", "ResolvedModel",
           "canonical_task", "catalog", "describe_tasks", "resolve", "tasks_for_config", "trained_models",
           "trained_root"]  # fmt: skip

logger = logging.getLogger(__name__)

# Recommended Hub models per task, offered when the Hub is reachable (or the model is in the local HF cache).
RECOMMENDED: dict[str, tuple[tuple[str, ...], str]] = {
    "distilbert/distilbert-base-uncased-finetuned-sst-2-english": (
        ("text-classification",),
        "DistilBERT fine-tuned on SST-2: positive / negative sentiment of English text.",
    ),
    "cardiffnlp/twitter-roberta-base-sentiment-latest": (
        ("text-classification",),
        "RoBERTa trained on tweets: negative / neutral / positive.",
    ),
    "dslim/bert-base-NER": (("token-classification",), "BERT fine-tuned on CoNLL-2003: persons, places, orgs."),
    "distilbert/distilbert-base-cased-distilled-squad": (
        ("question-answering",),
        "DistilBERT fine-tuned on SQuAD: finds the answer span in a context.",
    ),
    "deepset/roberta-base-squad2": (
        ("question-answering",),
        "RoBERTa on SQuAD 2.0: also says when the context holds no answer.",
    ),
    "sshleifer/distilbart-cnn-12-6": (("summarization",), "DistilBART trained on CNN/DailyMail news summaries."),
    "google-t5/t5-small": (("summarization", "translation"), "T5-small: summarization and EN->DE/FR/RO translation."),
    "Helsinki-NLP/opus-mt-en-fr": (("translation",), "Marian: English to French translation."),
    "HuggingFaceTB/SmolLM2-360M-Instruct": (("text-generation",), "SmolLM2-360M-Instruct: a small chat model."),
    "openai-community/gpt2": (("text-generation",), "GPT-2 (124M): the classic text continuation model."),
    "facebook/bart-large-mnli": (
        ("zero-shot-classification",),
        "BART trained on MNLI: labels you choose, no training.",
    ),
    "distilbert/distilroberta-base": (("fill-mask",), "DistilRoBERTa: guesses the word behind <mask>."),
    "sentence-transformers/all-MiniLM-L6-v2": (
        EMBEDDING_TASKS,
        "The Hub copy of the packaged MiniLM sentence-embedding model.",
    ),
}


def trained_models(owner: str | None) -> list[ModelEntry]:
    """Models the owner trained here (newest first). Nobody sees another owner's models."""
    if not owner:
        return []
    root = trained_root(owner)
    if not root.is_dir():
        return []
    entries = []
    for folder in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if adapters.is_adapter(folder):
            entries.append(adapters.entry(folder.name, folder, owner, resolve, _trained_description(folder, _ADAPTER)))
            continue
        config = _read_config(folder)
        if config is None:
            continue
        entries.append(
            ModelEntry(
                id=TRAINED_PREFIX + folder.name,
                tasks=tasks_for_config(config, folder),
                source="trained",
                available=True,
                description=_trained_description(folder, config),
            )
        )
    return entries


_ADAPTER = {"model_type": "LoRA adapter"}  # what an adapter's catalog line calls its kind
# The metric that sums a training up, best first, and whether it reads as a percentage.
_HEADLINE = (("accuracy", True), ("f1", True), ("f1_micro", True), ("rougeL", True), ("pearson", False),
             ("mse", False), ("perplexity", False), ("loss", False))  # fmt: skip


def _trained_description(folder: Path, config: dict) -> str:
    """A catalog line such as 'Trained here on 03 May 2025: text-classification from distilbert (bert); accuracy
    96.7 % on the test split', from the run's record next to the model (playground-model.json) where there is one."""
    import time

    if onnx_runtime.is_export(folder):
        return _export_description(folder)
    record_path = folder / "playground-model.json"
    try:
        record = _parsed_config(str(record_path), record_path.stat().st_mtime_ns)
        when = record_path.stat().st_mtime
    except (OSError, ValueError):
        record, when = {}, folder.stat().st_mtime
    record = record if isinstance(record, dict) else {}
    kind = config.get("model_type", "model")
    text = f"Trained here on {time.strftime('%d %b %Y', time.localtime(when))}"
    base = str(record.get("model") or "")
    if base.startswith(("/", ".", "~")) or "\\" in base:  # a folder it started from: its name, never a path
        base = Path(base).name
    if record.get("task"):
        text += f": {record['task']}" + (f" from {base}" if base else "")
    text += f" ({kind})"
    for split, metrics in (("test split", record.get("test_metrics")), ("held-out split", record.get("metrics"))):
        for name, percent in _HEADLINE:
            value = metrics.get(name) if isinstance(metrics, dict) else None
            if isinstance(value, int | float) and not isinstance(value, bool):
                shown = f"{value:.1%}".replace("%", " %") if percent else f"{value:.3g}"
                return f"{text}; {name} {shown} on the {split}."
    return text + "."


def _export_description(folder: Path) -> str:
    """'ONNX int8 export of minilm-sentiment (text-classification), made here on 02 Dec 2026; 3.7x PyTorch at
    batch 1.' The source is named by its folder's name only, never its path."""
    import time

    try:
        report = onnx_runtime.report(folder)
    except PlaygroundError:
        return "An ONNX export that could not be read."
    precision = onnx_runtime.graph_path(folder)[1]
    when = time.strftime("%d %b %Y", time.localtime((folder / onnx_runtime.REPORT).stat().st_mtime))
    source = Path(str(report.get("source") or "a model")).name
    text = f"ONNX {precision} export of {source} ({report['task']}), made here on {when}; runs in ONNX Runtime"
    speedup = (report.get("speed") or {}).get("int8_speedup_vs_pytorch_batch1")
    return text + (f", {speedup:.1f}x PyTorch at batch 1." if isinstance(speedup, int | float) else ".")


def _packaged_entries(offline: bool) -> list[ModelEntry]:
    entries = []
    for pack in packs.PACKS.values():
        # Without its package, a packaged model still works online: it loads from its Hub repo.
        available = pack.installed or not offline
        entries.append(
            ModelEntry(
                id=pack.id,
                tasks=pack.tasks,
                source="packaged",
                available=available,
                description=pack.description,
                reason="" if available else f"the package {pack.pip_name} is not installed",
            )
        )
    entries.append(fast_cpu.entry())
    for adapter in packaged_adapters.ADAPTERS.values():  # after the packs: first for their tasks all the same
        try:
            tasks, available, reason = resolve(adapter.id).tasks, True, ""
        except PlaygroundError as err:  # its base is missing: listed (with why) only where unusable ones are
            tasks, available, reason = adapter.tasks, False, str(err)
        entries.append(ModelEntry(adapter.id, tasks, "packaged", available, adapter.description, reason))
    return entries


def _hub_entries(offline: bool) -> list[ModelEntry]:
    entries = []
    for repo_id, (tasks, description) in RECOMMENDED.items():
        cached = hub.cached_snapshot(repo_id) is not None
        available = cached or not offline
        entries.append(
            ModelEntry(
                id=repo_id,
                tasks=tasks,
                source="hub",
                available=available,
                description=description,
                reason="" if available else "offline, and not downloaded on this machine",
            )
        )
    return entries


def catalog(task: str | None = None, owner: str | None = None, available_only: bool | None = None) -> list[ModelEntry]:
    """Packaged, trained (here or on Hugging Face Jobs) and recommended Hub models, optionally for one task.

    Offline, only entries usable now are listed unless `available_only=False` is passed.
    """
    settings = get_settings()
    if available_only is None:
        available_only = settings.offline
    wanted = canonical_task(task) if task else None
    from services.models import remote_results

    entries = _packaged_entries(settings.offline) + trained_models(owner) + remote_results.entries(owner)
    shown = {e.id for e in entries}
    entries += [e for e in _hub_entries(settings.offline) if e.id not in shown]
    return [e for e in entries if (wanted is None or wanted in e.tasks) and (e.available or not available_only)]


def _read_config(folder: Path) -> dict | None:
    path = folder / "config.json"
    try:
        return _parsed_config(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=512)
def _parsed_config(path: str, mtime_ns: int) -> dict:
    # Keyed by modification time: every request resolves its model id, and re-parsing JSON each time shows up.
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _path_syntax(model_id: str) -> bool:
    """Whether an id is written as a path (decided from the text alone, never from what exists on disk)."""
    return model_id.startswith(("/", "./", "../", "~", ".\\")) or "\\" in model_id or ".." in model_id.split("/")


def _exists_here(model_id: str) -> bool:
    """Whether an id names a folder relative to where the app or its jobs run: `from_pretrained` would read that
    folder instead of the Hub repo of the same name."""
    from services.core.config import PROJECT_ROOT

    return any((base / model_id).expanduser().exists() for base in (Path.cwd(), PROJECT_ROOT))


def _looks_like_path(model_id: str) -> bool:
    """Where folders may be loaded: an id written as a path, or one that names an existing folder."""
    return _path_syntax(model_id) or (get_settings().allow_local_paths and _exists_here(model_id))


def resolve(model_id: str, owner: str | None = None) -> ResolvedModel:
    """Decide what a model id means; raise a `PlaygroundError` that explains when it means nothing usable.

    Which sentence comes back depends on the id as written, never on what the server holds: another owner's
    folder reads like a missing one, and where folders are off no path is even looked at.
    Packaged GGUF models are not converted here (that is slow): `services.models.loading` does it with progress.
    """
    model_id = check_id(model_id or "", "The model name")
    if not model_id:
        raise ModelNotFound("Please choose a model first.")
    settings = get_settings()

    if model_id in packs.PACKS:
        pack = packs.PACKS[model_id]
        if not pack.installed and not settings.offline:
            return ResolvedModel(model_id, "hub", pack.hub_id, pack.tasks)
        if not pack.installed:
            raise ModelUnavailable(
                f"The packaged model '{model_id}' is missing: install the package {pack.pip_name} "
                "(`make run` does it)."
            )
        return ResolvedModel(model_id, "packaged", model_id, pack.tasks)
    if model_id == fast_cpu.FAST_ID:
        return fast_cpu.resolve()
    if model_id in packaged_adapters.ADAPTERS:
        adapter = packaged_adapters.ADAPTERS[model_id]
        base = packs.PACKS[adapter.base]
        if not base.installed and settings.offline:  # its config names the Hub twin: say which package is missing
            raise ModelUnavailable(
                f"The packaged adapter '{model_id}' runs on the packaged model '{base.id}', which is missing: "
                f"install the package {base.pip_name} (`make run` does it)."
            )
        return adapters.resolve(model_id, adapter.folder, owner, resolve)

    if model_id.startswith(TRAINED_PREFIX):
        name = model_id[len(TRAINED_PREFIX) :]
        folder = trained_root(owner).joinpath(safe_name(name)) if owner else None
        if folder is not None and safe_name(name) == name and adapters.is_adapter(folder):
            return adapters.resolve(model_id, folder, owner, resolve)
        if folder is None or safe_name(name) != name or _read_config(folder) is None:
            raise ModelNotFound(f"You have no trained model called '{name}'. Train one in the Fine-tune tab first.")
        return ResolvedModel(model_id, "trained", str(folder), tasks_for_config(_read_config(folder), folder))

    if _looks_like_path(model_id):
        return _resolve_folder(model_id, owner)

    if not hub.is_valid_repo_id(model_id):
        raise ModelNotFound(
            f"'{model_id}' is not a model name this playground knows. Use a catalog model, a Hub id like "
            "'distilbert/distilbert-base-uncased-finetuned-sst-2-english', or a trained model."
        )
    from services.models import remote_results

    mine = remote_results.folder(owner, model_id)  # trained on Hugging Face Jobs: the owner's own copy
    if mine is not None:
        if adapters.is_adapter(mine):
            return adapters.resolve(model_id, mine, owner, resolve)
        return ResolvedModel(model_id, "hub", str(mine), _tasks_of_folder(mine))
    shadowed = _exists_here(model_id)  # a Hub id that is also a folder here: never read from the disk
    snapshot = None if shadowed else hub.cached_snapshot(model_id)
    if settings.offline:
        if snapshot is None:
            raise ModelUnavailable(
                f"'{model_id}' is a Hub model, and the playground is offline with no copy of it on this machine. "
                "Pick one of the packaged models, or run the playground where it can reach the Hub."
            )
        return ResolvedModel(model_id, "hub", str(snapshot), _tasks_of_folder(snapshot))
    if shadowed or not hub.model_exists(model_id):
        raise ModelNotFound(f"There is no model called '{model_id}' on the Hugging Face Hub (or it is private).")
    return ResolvedModel(model_id, "hub", model_id, RECOMMENDED.get(model_id, ((), ""))[0])


def check_size(resolved: ResolvedModel) -> None:
    """Refuse a Hub model too big for this machine before it is downloaded: larger than the model memory budget
    (PLAYGROUND_MODEL_MEMORY_MB), it could not stay loaded and would only fill the disk."""
    if resolved.source != "hub" or Path(resolved.location).is_dir():
        return
    size = hub.weights_bytes(resolved.location)
    budget = get_settings().model_memory_bytes
    if size is not None and size > budget:
        raise ModelUnavailable(
            f"'{resolved.id}' has {size / 2**30:.1f} GB of weights; this playground loads models of up to "
            f"{budget / 2**30:.1f} GB. Pick a smaller model."
        )


def _tasks_of_folder(folder: Path) -> tuple[str, ...]:
    config = _read_config(folder)
    return tasks_for_config(config, folder) if config else ()


def _resolve_folder(model_id: str, owner: str | None) -> ResolvedModel:
    settings = get_settings()
    if not settings.allow_local_paths:
        raise AccessDenied("Loading models from folders on the server is turned off here. Use a model id instead.")
    folder = Path(model_id).expanduser().resolve()
    # Everything under PLAYGROUND_HOME belongs to some owner: only your own trained models, by their trained: id.
    # Another owner's folder gets the same sentence as a folder that is not there.
    theirs = folder.is_relative_to(settings.home) and not (owner and folder.is_relative_to(trained_root(owner)))
    if theirs or not folder.is_dir():
        raise ModelNotFound(f"There is no folder '{model_id}' on this machine.")
    if adapters.is_adapter(folder):
        return adapters.resolve(str(folder), folder, owner, resolve)
    config = _read_config(folder)
    if config is None:
        raise NotAModel(
            f"The folder '{folder.name}' is not a model: it has no config.json. "
            "A model folder is what `save_pretrained` writes (config.json, weights, tokenizer files)."
        )
    return ResolvedModel(str(folder), "local", str(folder), tasks_for_config(config, folder))
