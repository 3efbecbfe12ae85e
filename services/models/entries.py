"""The catalog's vocabulary: task names, what a model's head can do, and the rows and answers of the resolver.

Kept apart from `catalog` so that `catalog` and `adapters` both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.core.owners import owner_dir
from services.models import onnx_runtime

TRAINED_PREFIX = "trained:"

# transformers 4.x task names and their aliases, mapped to the canonical name the catalog uses.
TASK_ALIASES = {"sentiment-analysis": "text-classification", "ner": "token-classification"}
TASKS = (
    "text-classification",
    "token-classification",
    "question-answering",
    "summarization",
    "translation",
    "text-generation",
    "zero-shot-classification",
    "fill-mask",
    "feature-extraction",
    "sentence-similarity",
)

# What a sentence-embedding model does here (zero-shot by similarity to each label).
EMBEDDING_TASKS = ("feature-extraction", "sentence-similarity", "zero-shot-classification")

# Architecture name suffixes and the tasks a model with that head can do.
HEAD_TASKS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ForSequenceClassification", ("text-classification", "zero-shot-classification")),
    ("ForTokenClassification", ("token-classification",)),
    ("ForQuestionAnswering", ("question-answering",)),
    ("ForCausalLM", ("text-generation", "summarization", "translation")),
    ("LMHeadModel", ("text-generation", "summarization", "translation")),
    ("ForConditionalGeneration", ("summarization", "translation", "text-generation")),
    ("ForMaskedLM", ("fill-mask",)),
    ("MTModel", ("translation",)),  # Marian (Helsinki-NLP/opus-mt-*)
    ("Model", ("feature-extraction", "sentence-similarity")),
)


def canonical_task(task: str) -> str:
    """Map a 4.x task name or alias to the catalog's name; raise ValueError for unknown tasks."""
    task = TASK_ALIASES.get(task, task)
    if task not in TASKS:
        raise ValueError(f"Unknown task '{task}'. Known tasks: {', '.join(TASKS)}.")
    return task


def tasks_for_config(config: dict, folder: Path | None = None) -> tuple[str, ...]:
    """The tasks a model can do, judged from its config's architectures (and sentence-transformers files)."""
    if folder is not None and onnx_runtime.is_export(folder):  # an ONNX export does what it was exported for
        try:
            return onnx_runtime.SERVES[onnx_runtime.report(folder)["task"]]
        except PlaygroundError:
            return ()
    found: list[str] = []
    for arch in config.get("architectures") or []:
        for suffix, tasks in HEAD_TASKS:
            if arch.endswith(suffix):
                found.extend(t for t in tasks if t not in found)
                break
    if folder is not None and (folder / "modules.json").exists():  # sentence-transformers: embeddings-based zero-shot
        found.extend(t for t in EMBEDDING_TASKS if t not in found)
    return tuple(found)


def describe_tasks(tasks: Iterable[str]) -> str:
    tasks = list(tasks)
    return ", ".join(tasks) if tasks else "no task this playground can run"


def trained_root(owner: str) -> Path:
    """The caller's own folder of models trained in this app."""
    return owner_dir(get_settings().models_dir, owner)


@dataclass(frozen=True)
class ModelEntry:
    """One row of the catalog."""

    id: str
    tasks: tuple[str, ...]
    source: str  # "hub" | "packaged" | "local" | "trained"
    available: bool
    description: str = ""
    reason: str = ""  # why it is not available, in plain words

    def to_dict(self) -> dict:
        data = asdict(self)
        data["tasks"] = list(self.tasks)
        return data


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model id points. `location` is a folder, or a Hub repo id when `source == "hub"`.

    A PEFT adapter folder has `source == "adapter"`, its folder as `location` and its base model, resolved and
    checked, as `base`; `version` changes when its weights are saved again (the model cache reloads it then).
    """

    id: str
    source: str
    location: str
    tasks: tuple[str, ...] = ()
    base: ResolvedModel | None = None
    version: str = ""

    @property
    def is_local(self) -> bool:
        return self.source != "hub"
