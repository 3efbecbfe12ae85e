"""Load a tokenizer and model for a task, once, and keep it in a memory-bounded LRU cache.

- The right Auto class per task; seq2seq configs get `AutoModelForSeq2SeqLM` for summarization/translation.
- Device and dtype from `services.core.system.device_info()` (CUDA bf16/fp16, MPS, CPU fp32).
- `trust_remote_code` stays off unless the caller turns it on; folders or repos with only pickled weights
  (``*.bin``, ``*.pt``) are refused unless the caller allows pickles.
- Ten simultaneous requests for the same model load it once (single flight); others wait for that load.
- A PEFT adapter loads a fresh copy of its base with the adapter on it (`services.models.adapters`); the PeftModel
  is kept in `extras["peft"]` (its `disable_adapter()` shows the base).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.config import get_settings
from services.core.errors import CorruptWeights, NotAModel, PlaygroundError, TaskMismatch, UnsafeWeights
from services.models import adapters, fast_cpu, onnx_runtime, packs
from services.models import catalog as models

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

_AUTO_CLASS = {
    "text-classification": "AutoModelForSequenceClassification",
    "zero-shot-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "text-generation": "AutoModelForCausalLM",
    "summarization": "AutoModelForCausalLM",  # AutoModelForSeq2SeqLM when the config is encoder-decoder
    "translation": "AutoModelForCausalLM",
    "fill-mask": "AutoModelForMaskedLM",
    "feature-extraction": "AutoModel",
    "sentence-similarity": "AutoModel",
}
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


@dataclass
class LoadedModel:
    """A model ready to run: what the pipelines, tokenizer and RAG services get."""

    id: str
    task: str
    model: Any
    tokenizer: Any
    device: str
    dtype: str
    location: str
    nbytes: int
    load_seconds: float
    # Things built once per cached model (pipelines, pooling settings); guarded by `lock`.
    extras: dict = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Held while the model runs: its fast tokenizer fails ("Already borrowed") when two threads use it at once.
    busy: threading.RLock = field(default_factory=threading.RLock, repr=False)


def auto_class_name(task: str, config: Any) -> str:
    task = models.canonical_task(task)
    if task in ("summarization", "translation", "text-generation") and getattr(config, "is_encoder_decoder", False):
        return "AutoModelForSeq2SeqLM"
    return _AUTO_CLASS[task]


def _check_local_weights(folder: Path, allow_pickle: bool) -> None:
    files = [p for p in folder.iterdir() if p.is_file()]
    if any(p.suffix == ".safetensors" for p in files):
        return
    pickled = [p.name for p in files if p.suffix in _PICKLE_SUFFIXES]
    if pickled and not allow_pickle:
        raise UnsafeWeights(
            f"This model only has pickled weights ({', '.join(sorted(pickled)[:3])}); loading a pickle can run "
            "code hidden in it. Allow pickled weights only if you trust where the model came from."
        )
    if not pickled:
        raise NotAModel(f"The folder '{folder.name}' has a config.json but no weights file (*.safetensors).")


def token_limit(config: Any, tokenizer: Any = None) -> int:
    """The longest input, in tokens, the model can read (its position embeddings), or the tokenizer's limit."""
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            # RoBERTa-style models reserve two positions for padding offsets.
            return value - 2 if getattr(config, "model_type", "") in ("roberta", "xlm-roberta", "camembert") else value
    limit = getattr(tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else 512


def _set_tokenizer_limit(tokenizer: Any, config: Any) -> None:
    # Tokenizers saved without model_max_length report 1e30; truncation and windowing need the real limit.
    if getattr(tokenizer, "model_max_length", 0) > 1_000_000 and not getattr(config, "is_encoder_decoder", False):
        tokenizer.model_max_length = token_limit(config)


def _check_head(resolved: models.ResolvedModel, task: str, config: Any, folder: Path | None) -> None:
    """Refuse a model whose head for `task` would be freshly random: its answers would be noise.

    Any model gives embeddings, and configs without `architectures` (some old Hub models) get the benefit
    of the doubt.
    """
    if task in ("feature-extraction", "sentence-similarity") or not getattr(config, "architectures", None):
        return
    can_do = models.tasks_for_config(config.to_dict(), folder)
    if task not in can_do:
        raise TaskMismatch(
            f"'{resolved.id}' cannot do {task}: it was not trained for it. It can do: {models.describe_tasks(can_do)}."
        )


def _model_nbytes(model: Any) -> int:
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    return int(params + buffers)


def _load_uncached(
    resolved: models.ResolvedModel,
    task: str,
    *,
    allow_pickle: bool,
    trust_remote_code: bool,
    progress: Progress,
) -> LoadedModel:
    import transformers
    from transformers import AutoConfig, AutoTokenizer

    from services.core.system import device_info

    started = time.monotonic()
    settings = get_settings()
    common = {
        "trust_remote_code": trust_remote_code,
        "local_files_only": settings.offline or (resolved.base or resolved).is_local,
        # On a public Space the Space's own token must never serve a visitor: no ambient token there.
        "token": False if settings.on_space else None,
    }
    info = device_info()
    if resolved.is_local and resolved.base is None and onnx_runtime.is_export(Path(resolved.location)):
        return _load_onnx(resolved, task, common, progress, started)
    if resolved.source == fast_cpu.SOURCE:
        model, tokenizer = fast_cpu.load(progress)
        return LoadedModel(resolved.id, task, model, tokenizer, "cpu", "4-bit (ONNX Runtime)", resolved.location,
                           fast_cpu.size_bytes(), time.monotonic() - started)  # fmt: skip
    base = resolved.base or resolved  # a PEFT adapter: a fresh copy of its base, then the adapter onto it
    location, extras = base.location, {}
    try:
        if base.source == "packaged":
            location = str(packs.ensure_ready(base.id, progress))
        if base.is_local:
            _check_local_weights(Path(location), allow_pickle)
        progress(0.05, f"Reading the configuration of {resolved.id}")
        config = AutoConfig.from_pretrained(location, **common)
        if resolved.base is None:
            _check_head(resolved, task, config, Path(location) if resolved.is_local else None)
        class_name = (resolved.base and adapters.prepare_base(resolved, task, config)) or auto_class_name(task, config)
        auto_class = getattr(transformers, class_name)
        progress(0.15, f"Loading the tokenizer of {resolved.id}")
        own = adapters.tokenizer_location(resolved, location) if resolved.base else location
        tokenizer = AutoTokenizer.from_pretrained(own, **common)
        progress(0.35, f"Loading the weights of {resolved.id} on {info.device}")
        model = auto_class.from_pretrained(
            location,
            config=config,
            dtype=info.dtype,
            use_safetensors=None if allow_pickle else True,
            **common,
        )
        if resolved.base is not None:
            model, extras["peft"] = adapters.attach(model, resolved)
            location = resolved.location
        model.to(info.device)
        _set_tokenizer_limit(tokenizer, config)
    except PlaygroundError:
        raise
    except ValueError as err:
        if "Unrecognized configuration class" in str(err) or "Unrecognized model" in str(err):
            can_do = models.tasks_for_config(config.to_dict()) if "config" in locals() else ()
            raise TaskMismatch(
                f"'{resolved.id}' cannot do {task}. It can do: {models.describe_tasks(can_do)}."
            ) from err
        raise _explain_load_error(resolved, err) from err
    except Exception as err:
        raise _explain_load_error(resolved, err) from err
    model.eval()
    progress(1.0, f"{resolved.id} is loaded")
    return LoadedModel(
        id=resolved.id,
        task=task,
        model=model,
        tokenizer=tokenizer,
        device=info.device,
        dtype=str(model.dtype).removeprefix("torch."),
        location=location,
        nbytes=_model_nbytes(model),
        load_seconds=time.monotonic() - started,
        extras=extras,
    )


def _load_onnx(resolved: models.ResolvedModel, task: str, common: dict, progress: Progress, started: float):
    """An ONNX export made here: its graph in ONNX Runtime behind a torch module (`services.models.onnx_runtime`)."""
    model, tokenizer = onnx_runtime.load(Path(resolved.location), task, resolved.id, common, progress)
    _set_tokenizer_limit(tokenizer, model.config)
    return LoadedModel(
        id=resolved.id, task=task, model=model, tokenizer=tokenizer, device="cpu", dtype=model.onnx_precision,
        location=resolved.location, nbytes=onnx_runtime.size_bytes(Path(resolved.location)),
        load_seconds=time.monotonic() - started,
    )  # fmt: skip


def _explain_load_error(resolved: models.ResolvedModel, err: Exception) -> PlaygroundError:
    text = str(err)
    logger.warning("Loading %s failed: %s: %s", resolved.id, type(err).__name__, text)
    lowered = text.lower()
    if "out of memory" in lowered or isinstance(err, MemoryError):
        return PlaygroundError(
            f"'{resolved.id}' does not fit in the memory this machine has free. Try a smaller model, or close "
            "other work first."
        )
    if "safetensors" in lowered and ("does not appear to have" in lowered or "no file named" in lowered):
        return UnsafeWeights(
            f"'{resolved.id}' has no safetensors weights, only pickled ones, which can run code when loaded. "
            "Allow pickled weights only if you trust where the model came from."
        )
    if "deserializ" in lowered or "header" in lowered or "unpickl" in lowered or "invalid load key" in lowered:
        return CorruptWeights(
            f"The weights of '{resolved.id}' are damaged or incomplete and cannot be read. "
            "Download or save the model again."
        )
    if "config.json" in lowered or "not a valid model" in lowered or "unrecognized model" in lowered:
        return NotAModel(f"'{resolved.id}' does not look like a transformers model (no usable config.json).")
    if "trust_remote_code" in lowered:
        return TaskMismatch(
            f"'{resolved.id}' needs its own code to run. Turn on 'trust remote code' only if you trust its author."
        )
    return PlaygroundError(f"'{resolved.id}' could not be loaded: {text.splitlines()[0][:300] if text else err!r}")


@dataclass
class _Entry:
    value: LoadedModel
    last_used: float = field(default_factory=time.monotonic)


class ModelCache:
    """An LRU of loaded models within a byte budget; concurrent requests for one key share one load."""

    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self._lock = threading.Lock()
        self._entries: OrderedDict[tuple, _Entry] = OrderedDict()
        self._loading: dict[tuple, Future] = {}
        self.loads = 0  # how many real loads happened (tests and benchmarks read it)

    def get_or_load(self, key: tuple, loader: Callable[[], LoadedModel]) -> LoadedModel:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
                entry.last_used = time.monotonic()
                return entry.value
            future = self._loading.get(key)
            owner = future is None
            if owner:
                future = self._loading[key] = Future()
        if not owner:
            return future.result()
        try:
            value = loader()
        except BaseException as err:
            with self._lock:
                self._loading.pop(key, None)
            future.set_exception(err)
            raise
        with self._lock:
            self.loads += 1
            self._entries[key] = _Entry(value)
            self._loading.pop(key, None)
            evicted = self._evict_locked(keep=key)
        future.set_result(value)
        if evicted:
            _release_memory()
        return value

    def _evict_locked(self, keep: tuple) -> list[str]:
        evicted = []
        while self.used_bytes_locked() > self.budget_bytes and len(self._entries) > 1:
            key = next(k for k in self._entries if k != keep)
            evicted.append(self._entries.pop(key).value.id)
        if evicted:
            logger.info("Model cache over budget: evicted %s", ", ".join(evicted))
        return evicted

    def used_bytes_locked(self) -> int:
        return sum(e.value.nbytes for e in self._entries.values())

    def snapshot(self) -> list[dict]:
        """What is loaded now, most recently used last (for the UI and `python -m services cache`)."""
        with self._lock:
            return [
                {"id": e.value.id, "task": e.value.task, "device": e.value.device, "mb": round(e.value.nbytes / 2**20)}
                for e in self._entries.values()
            ]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
        _release_memory()

    def settle(self, timeout: float = 60.0) -> bool:
        """Wait for the loads in progress to end (True when none is left): the process may then exit without
        killing a thread inside torch's native code, which aborts the interpreter ("terminate called ...")."""
        deadline = time.monotonic() + timeout
        with self._lock:
            pending = list(self._loading.values())
        for future in pending:
            with contextlib.suppress(Exception):
                future.exception(timeout=max(0.0, deadline - time.monotonic()))
        with self._lock:
            return not self._loading


def _release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


_cache_lock = threading.Lock()
_caches: dict[str, ModelCache] = {}


def model_cache() -> ModelCache:
    """The process-wide model cache (one copy of each model in memory, shared by every visitor)."""
    with _cache_lock:
        if "default" not in _caches:
            _caches["default"] = ModelCache(get_settings().model_memory_bytes)
        return _caches["default"]


def load(
    model_id: str,
    task: str,
    *,
    owner: str | None = None,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
    progress: Progress | None = None,
) -> LoadedModel:
    """Resolve `model_id` for `owner` and return the loaded model for `task`, from the cache when possible."""
    from services.core.safety import check_pickle, check_remote_code

    check_remote_code(trust_remote_code)
    check_pickle(allow_pickle)
    task = models.canonical_task(task)
    resolved = models.resolve(model_id, owner)
    models.check_size(resolved)
    # The cache key holds the resolved location, so two owners' "trained:x" never share an entry.
    # allow_pickle is part of the key: one visitor's consent to a pickle never serves another who gave none.
    key = (
        resolved.source,
        resolved.location,
        resolved.version,
        auto_class_family(task),
        trust_remote_code,
        allow_pickle,
    )
    return model_cache().get_or_load(
        key,
        lambda: _load_uncached(
            resolved,
            task,
            allow_pickle=allow_pickle,
            trust_remote_code=trust_remote_code,
            progress=progress or (lambda f, m: None),
        ),
    )


def auto_class_family(task: str) -> str:
    """Tasks that load the same head share a cache entry (summarization and text-generation on a chat model)."""
    return _AUTO_CLASS[models.canonical_task(task)]
