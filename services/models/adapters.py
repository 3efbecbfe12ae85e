"""PEFT adapter folders (LoRA and the like) as models: found, resolved with their base, loaded onto it.

An adapter folder holds ``adapter_config.json`` and ``adapter_model.safetensors`` (what `PeftModel.save_pretrained`
writes), never the base weights: ``base_model_name_or_path`` names the base, which must resolve here like any
model id (a catalog id, a Hub id, a folder or ``trained:<name>``; a packaged model's Hub twin or converted folder
reads as the packaged model, so adapters on SmolLM2 or MiniLM work offline). The adapter's ``task_type`` says what
it does: a ``CAUSAL_LM`` LoRA generates, a ``SEQ_CLS`` one classifies with the head saved beside it
(``modules_to_save``). Loading (`services.models.loading`) loads a fresh copy of the base, lets `prepare_base` set
its head, and `attach` puts the adapter on it with peft (imported lazily). The label names of a classification
adapter come from a ``config.json`` beside it when there is one (the model config with ``id2label``), else the base's.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from services.core.errors import ModelUnavailable, NotAModel, PlaygroundError, TaskMismatch
from services.models import packs
from services.models.entries import TRAINED_PREFIX, ModelEntry, ResolvedModel, describe_tasks, trained_root

logger = logging.getLogger(__name__)

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")

# peft task types: the Auto class their base loads as, and the tasks the adapted model does here.
TASK_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "CAUSAL_LM": ("AutoModelForCausalLM", ("text-generation", "summarization", "translation")),
    "SEQ_CLS": ("AutoModelForSequenceClassification", ("text-classification",)),
    "TOKEN_CLS": ("AutoModelForTokenClassification", ("token-classification",)),
    "QUESTION_ANS": ("AutoModelForQuestionAnswering", ("question-answering",)),
    "SEQ_2_SEQ_LM": ("AutoModelForSeq2SeqLM", ("summarization", "translation", "text-generation")),
    "FEATURE_EXTRACTION": ("AutoModel", ("feature-extraction", "sentence-similarity")),
}
_HEADED = ("SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS")  # their head is new: it must be saved with the adapter

Resolver = Callable[[str, "str | None"], ResolvedModel]


def is_adapter(folder: Path) -> bool:
    """Whether a folder is a PEFT adapter (decided before config.json: a folder may hold both)."""
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def read_config(folder: Path) -> dict:
    """The adapter's config as saved; a sentence when it cannot be read."""
    path = Path(folder) / ADAPTER_CONFIG
    try:
        data = _parsed(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError) as err:
        raise NotAModel(f"The adapter '{Path(folder).name}' has an {ADAPTER_CONFIG} that cannot be read.") from err
    if not isinstance(data, dict) or not data.get("peft_type"):
        raise NotAModel(f"The {ADAPTER_CONFIG} of '{Path(folder).name}' does not say which PEFT method it uses.")
    return data


@functools.lru_cache(maxsize=256)
def _parsed(path: str, mtime_ns: int) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def base_reference(config: dict, folder: Path, owner: str | None) -> str:
    """The model id the adapter's base means here: a packaged model for its Hub twin or converted folder,
    ``trained:<name>`` for a folder among the owner's trained models, ``org/name`` for a Hub cache snapshot."""
    raw = str(config.get("base_model_name_or_path") or "").strip()
    for pack in packs.PACKS.values():
        if raw == pack.hub_id and pack.installed:
            return pack.id
    if not raw or not (raw.startswith(("/", ".", "~")) or "\\" in raw):
        return raw
    path = Path(raw).expanduser()
    if not path.is_absolute() and (folder / path).exists():
        path = folder / path
    path = path.resolve()
    for pack in packs.PACKS.values():
        if path == packs.converted_dir(pack).resolve() or path == _pack_folder(pack):
            return pack.id
    if owner and path.parent == trained_root(owner).resolve():
        return TRAINED_PREFIX + path.name
    if path.parent.name == "snapshots" and path.parent.parent.name.startswith("models--"):
        return path.parent.parent.name.removeprefix("models--").replace("--", "/", 1)
    return str(path)


def _pack_folder(pack: packs.Pack) -> Path | None:
    source = pack.source()
    return (source / (pack.folder or "")).resolve() if source is not None and pack.gguf is None else None


def shown_name(reference: str) -> str:
    """A base model as a sentence shows it: never a server path, only its folder name."""
    return Path(reference).name if reference.startswith(("/", ".", "~")) or "\\" in reference else reference


def resolve(model_id: str, folder: Path, owner: str | None, resolve_base: Resolver) -> ResolvedModel:
    """The adapter folder as a model, its base resolved and checked (an adapter whose base is gone says so)."""
    folder = Path(folder)
    config = read_config(folder)
    name = shown_name(model_id)
    weights = folder / ADAPTER_WEIGHTS
    if not weights.is_file():
        raise NotAModel(
            f"The adapter '{name}' has its {ADAPTER_CONFIG} but no {ADAPTER_WEIGHTS}: save it again with "
            "`save_pretrained` (only safetensors adapter weights are loaded here)."
        )
    reference = base_reference(config, folder, owner)
    if not reference:
        raise NotAModel(f"The adapter '{name}' does not say which base model it adapts (base_model_name_or_path).")
    try:
        base = resolve_base(reference, owner)
    except PlaygroundError as err:
        raise ModelUnavailable(
            f"The adapter '{name}' was made for the base model '{shown_name(reference)}', which cannot be used "
            f"here: {str(err).replace(reference, shown_name(reference))}"
        ) from err
    if base.source == "adapter":
        raise NotAModel(
            f"The adapter '{name}' adapts another adapter ('{shown_name(reference)}'): merge that one into its base "
            "first (`python -m services lora merge`), then use the merged folder as the base."
        )
    return ResolvedModel(
        model_id, "adapter", str(folder), tasks_of(config, base.tasks), base, str(weights.stat().st_mtime_ns)
    )


def tasks_of(config: dict, base_tasks: tuple[str, ...]) -> tuple[str, ...]:
    """What the adapted model does: its task type's tasks (a generating type only on a base that generates)."""
    task_type = str(config.get("task_type") or "")
    if task_type not in TASK_TYPES:
        return base_tasks
    tasks = TASK_TYPES[task_type][1]
    # A Hub base not in the catalog has no known tasks (the Hub is not asked): the adapter's own type decides.
    if task_type in ("CAUSAL_LM", "SEQ_2_SEQ_LM") and base_tasks and "text-generation" not in base_tasks:
        return ()
    return tasks


def entry(name: str, folder: Path, owner: str, resolve_base: Resolver, description: str) -> ModelEntry:
    """The catalog row of an adapter among the owner's trained models (unavailable, with why, if its base is gone)."""
    model_id = TRAINED_PREFIX + name
    try:
        resolved = resolve(model_id, folder, owner, resolve_base)
    except PlaygroundError as err:
        config = _config_or_empty(folder)
        tasks = TASK_TYPES.get(str(config.get("task_type")), ("", ()))[1]
        return ModelEntry(model_id, tasks, "trained", False, description, str(err))
    base = shown_name(resolved.base.id) if resolved.base else "?"
    return ModelEntry(model_id, resolved.tasks, "trained", True, f"{description} Base model: {base}.")


def _config_or_empty(folder: Path) -> dict:
    try:
        return read_config(folder)
    except PlaygroundError:
        return {}


def prepare_base(resolved: ResolvedModel, task: str, config: Any) -> str:
    """Check that the adapter can do `task`, give the base config the adapter's head (labels), and return the
    Auto class the base loads as ("" for the task's usual class)."""
    adapter = read_config(Path(resolved.location))
    task_type = str(adapter.get("task_type") or "")
    if task not in resolved.tasks and task not in ("feature-extraction", "sentence-similarity"):
        base = shown_name(resolved.base.id) if resolved.base else "its base"
        raise TaskMismatch(
            f"'{shown_name(resolved.id)}' is a {adapter.get('peft_type')} adapter ({task_type or 'no task type'}) on "
            f"{base}: it cannot do {task}. It can do: {describe_tasks(resolved.tasks)}."
        )
    if task_type in _HEADED:
        set_head_of(Path(resolved.location), task_type, config, resolved.id)
    if task_type in TASK_TYPES and task in TASK_TYPES[task_type][1]:
        return TASK_TYPES[task_type][0]
    return ""  # no task type (or embeddings of a headed one): the class the task asks for


def set_head_of(folder: Path, task_type: str, config: Any, model_id: str = "") -> None:
    """Give `config` the adapter's head: its size from the saved weights, its label names from the folder's
    config.json or the base's (a head that was never saved is refused: it would answer at random)."""
    from safetensors import safe_open

    heads = list(read_config(folder).get("modules_to_save") or [])
    with safe_open(str(folder / ADAPTER_WEIGHTS), framework="pt") as weights:
        shapes = {key: weights.get_slice(key).get_shape() for key in weights.keys()}  # noqa: SIM118
    head = [shape for key, shape in shapes.items() if any(key.endswith(f".{m}.weight") for m in heads)]
    base_heads = {"SEQ_CLS": "ForSequenceClassification", "TOKEN_CLS": "ForTokenClassification"}
    base_has_head = any(a.endswith(base_heads.get(task_type, "ForQuestionAnswering"))
                        for a in getattr(config, "architectures", None) or [])  # fmt: skip
    if not head and not base_has_head:
        raise NotAModel(
            f"The adapter '{shown_name(model_id or folder.name)}' was trained with a new classifier head, but the "
            "head was not saved with it (modules_to_save), so its answers would be random. Train it again with the "
            "head saved."
        )
    if task_type == "QUESTION_ANS" or not head:
        return
    count = int(head[0][0])
    names = _label_names(folder, count) or _label_names_of(getattr(config, "id2label", None), count)
    config.num_labels = count
    config.id2label = {i: names[i] if names else f"LABEL_{i}" for i in range(count)}
    config.label2id = {label: i for i, label in config.id2label.items()}


def _label_names(folder: Path, count: int) -> list[str] | None:
    try:
        saved = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _label_names_of(saved.get("id2label") if isinstance(saved, dict) else None, count)


def _label_names_of(id2label: Any, count: int) -> list[str] | None:
    if not isinstance(id2label, dict) or len(id2label) != count:
        return None
    names = [str(id2label.get(i, id2label.get(str(i), ""))) for i in range(count)]
    return names if all(names) else None


def tokenizer_location(resolved: ResolvedModel, base_location: str) -> str:
    """The adapter's own tokenizer (saved with it, chat template included) when there is one, else the base's."""
    folder = Path(resolved.location)
    return str(folder) if any((folder / name).is_file() for name in _TOKENIZER_FILES) else base_location


def peft_config(folder: Path, model_id: str) -> Any:
    """The adapter's config for this peft: keys a newer peft added are dropped (and logged) while they are unset;
    a newer peft's method or a setting this peft cannot honour is refused with both versions named."""
    import peft
    from peft import PeftConfig
    from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING

    raw = dict(read_config(folder))
    saved_by = raw.get("peft_version") or "a newer version"
    config_class = PEFT_TYPE_TO_CONFIG_MAPPING.get(str(raw.get("peft_type")))
    if config_class is None:
        raise ModelUnavailable(
            f"The adapter '{shown_name(model_id)}' uses the PEFT method {raw.get('peft_type')}, saved by peft "
            f"{saved_by}; this playground has peft {peft.__version__}, which does not know it. Upgrade peft."
        )
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(raw) - known)
    used = [key for key in unknown if raw[key] not in (None, False, "", [], {}, 0)]
    if used:
        raise ModelUnavailable(
            f"The adapter '{shown_name(model_id)}' was saved by peft {saved_by} with settings that this "
            f"playground's peft {peft.__version__} does not know ({', '.join(used)}): it would load wrongly. "
            "Upgrade peft (`pip install -U peft`), or train the adapter again here."
        )
    if unknown:
        logger.warning(
            "Adapter %s: dropped the settings %s, unknown to peft %s and unset (saved by peft %s)",
            shown_name(model_id), ", ".join(unknown), peft.__version__, saved_by,
        )  # fmt: skip
    for key in unknown:
        raw.pop(key)
    raw["inference_mode"] = True
    return PeftConfig.from_peft_type(**raw)


def _packaged(folder: Path) -> bool:
    from services.models.packaged_adapters import ADAPTERS_DIR

    return folder.resolve().parent == ADAPTERS_DIR.resolve()


def _quantized(model: Any) -> bool:
    return bool(getattr(model, "is_quantized", False) or getattr(model, "is_loaded_in_4bit", False)
                or getattr(model, "is_loaded_in_8bit", False))  # fmt: skip


def attach(model: Any, resolved: ResolvedModel) -> tuple[Any, Any]:
    """Put the adapter on a freshly loaded base: (the transformers model with the adapter active, the PeftModel).

    The first is what the pipelines run (a plain transformers model, its LoRA layers inside, merged into the base's
    weights for a chat model); the second can switch the adapter off (`with peft_model.disable_adapter():`) to show
    the base on the same weights. A packaged chat adapter is folded into its base for good (the second is None).
    """
    from peft import PeftModel

    folder = Path(resolved.location)
    config = peft_config(folder, resolved.id)
    try:
        peft_model = PeftModel.from_pretrained(model, str(folder), config=config, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as err:
        logger.warning("Attaching adapter %s failed: %s", resolved.id, err)
        base = shown_name(resolved.base.id) if resolved.base else "its base"
        raise NotAModel(
            f"The adapter '{shown_name(resolved.id)}' does not fit the base model {base} (its layers or sizes "
            "differ): it was trained on another model."
        ) from err
    peft_model.eval()
    if str(getattr(config, "task_type", "")) in ("CAUSAL_LM", "TaskType.CAUSAL_LM") and not _quantized(model):
        if _packaged(folder):  # shipped (grounded-answers), not compared here: the LoRA layers folded away, so it
            merged = peft_model.merge_and_unload()  # generates exactly as fast as its base (bench/rag_quality.py)
            merged.config.architectures = [type(merged).__name__]
            return merged, None
        # Merged, a trained adapter skips the LoRA products; switching it off to compare (services.training.compare)
        # unmerges the layers again, so the base is shown exactly.
        peft_model.merge_adapter()
    elif _packaged(folder) and not _quantized(model):  # a shipped classifier: merged, it runs at its base's speed
        peft_model.merge_adapter()  # (RAG chat asks minilm-answerable for every question); switching it off unmerges
    inner = peft_model.get_base_model()
    inner.config.architectures = [type(inner).__name__]
    return inner, peft_model
