"""Which tokenizers exist and loading them: the catalog, the resolver and a small cache.

A tokenizer id is one of, in this order:
1. a packaged one: ``all-minilm-l6-v2`` (WordPiece), ``smollm2-135m-instruct`` (byte-level BPE, read from the
   GGUF file once), ``unigram-demo`` (a SentencePiece-style Unigram trained on the bundled corpus at first use);
2. ``tokenizer:<name>``, one the caller trained in this app; ``trained:<name>``, the tokenizer of a model they
   fine-tuned here; a packaged task adapter (``minilm-sentiment``, ``minilm-ner``): its base's, as for any adapter
   saved without tokenizer files;
3. a folder on the server holding tokenizer files (when PLAYGROUND_ALLOW_LOCAL_PATHS allows it);
4. a Hub repo id (online, or in the local Hugging Face cache).
"""

from __future__ import annotations

import functools
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.core.config import get_settings
from services.core.errors import AccessDenied, ModelNotFound, ModelUnavailable, NotAModel, PlaygroundError
from services.core.limits import check_id
from services.core.owners import owner_dir, safe_name
from services.hub import push as hub
from services.models import adapters, packaged_adapters, packs
from services.models import catalog as models
from services.tokenizers.bytes import byte_decoder, readable

logger = logging.getLogger(__name__)

TOKENIZER_PREFIX = "tokenizer:"
DEMO_UNIGRAM = "unigram-demo"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json", "spiece.model")

# Tokenizers worth comparing when the Hub is reachable (or cached on this machine).
HUB_TOKENIZERS: dict[str, str] = {
    "openai-community/gpt2": "GPT-2: byte-level BPE, 50k tokens.",
    "google-bert/bert-base-uncased": "BERT uncased: WordPiece, lowercases and strips accents.",
    "google-bert/bert-base-cased": "BERT cased: WordPiece, keeps case.",
    "google-t5/t5-small": "T5: SentencePiece Unigram, 32k tokens.",
    "FacebookAI/xlm-roberta-base": "XLM-RoBERTa: SentencePiece Unigram for 100 languages, 250k tokens.",
    "Qwen/Qwen2.5-0.5B-Instruct": "Qwen2.5: byte-level BPE, 151k tokens, with a chat template.",
    "Xenova/gpt-4o": "GPT-4o's o200k tokenizer in transformers format.",
}


class TokenizerError(PlaygroundError):
    """A tokenizer request that cannot be served, said in words."""


@dataclass(frozen=True)
class TokenizerEntry:
    id: str
    kind: str  # WordPiece, BPE, Unigram, ... ("" when not known without loading it)
    source: str  # packaged | trained | model | hub
    available: bool
    description: str

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("id", "kind", "source", "available", "description")}


@dataclass
class LoadedTokenizer:
    """A loaded tokenizer: the transformers object, and a private copy of its Rust backend for the explorer."""

    id: str
    hf: Any  # transformers tokenizer (what AutoTokenizer returns)
    backend: Any  # tokenizers.Tokenizer with no padding or truncation, safe to share between threads
    spec: dict  # the tokenizer.json document
    location: str
    lock: threading.Lock = field(default_factory=threading.Lock)  # `hf.__call__` mutates its backend

    @functools.cached_property
    def kind(self) -> str:
        return self.spec.get("model", {}).get("type") or type(self.hf).__name__

    @functools.cached_property
    def byte_level(self) -> bool:
        return "ByteLevel" in json.dumps([self.spec.get("pre_tokenizer"), self.spec.get("decoder")])

    @functools.cached_property
    def special_ids(self) -> frozenset[int]:
        ids = {t["id"] for t in self.spec.get("added_tokens", []) if t.get("special")}
        ids.update(i for i in (self.hf.all_special_ids or []) if i is not None)
        return frozenset(ids)

    @functools.cached_property
    def unk_id(self) -> int | None:
        return self.hf.unk_token_id

    @functools.cached_property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size(with_added_tokens=True)

    @functools.cached_property
    def subword_prefix(self) -> str:
        return self.spec.get("model", {}).get("continuing_subword_prefix") or ""

    @functools.cached_property
    def readable_vocab(self) -> list[tuple[int, str, str]]:
        """(id, vocabulary string, the text it stands for), by id; built once per tokenizer for the browser."""
        vocab = sorted((i, t) for t, i in self.backend.get_vocab(with_added_tokens=True).items())
        return [(i, t, t if i in self.special_ids else readable(self.token_bytes(t))) for i, t in vocab]

    def token_bytes(self, token: str) -> bytes:
        """The raw text bytes a vocabulary string stands for (byte-level, SentencePiece and WordPiece aware)."""
        if self.byte_level:
            decoder = byte_decoder()
            if all(c in decoder for c in token):
                return bytes(decoder[c] for c in token)
        if len(token) == 6 and token.startswith("<0x") and token.endswith(">"):
            try:
                return bytes([int(token[3:5], 16)])
            except ValueError:
                pass
        if self.subword_prefix and token.startswith(self.subword_prefix):
            token = token[len(self.subword_prefix) :]
        return token.replace("\u2581", " ").encode("utf-8")


# ---- the catalog --------------------------------------------------------------------------------------------


def tokenizers_root(owner: str) -> Path:
    """The caller's own folder of tokenizers trained in this app."""
    return owner_dir(get_settings().home / "tokenizers", owner)


def trained_tokenizers(owner: str | None) -> list[TokenizerEntry]:
    if not owner or not tokenizers_root(owner).is_dir():
        return []
    entries = []
    folders = sorted(tokenizers_root(owner).iterdir(), key=lambda p: p.stat().st_mtime, reverse=True)
    for folder in folders:
        meta = _read_meta(folder)
        if meta is None:
            continue
        entries.append(
            TokenizerEntry(
                TOKENIZER_PREFIX + folder.name,
                meta.get("kind", ""),
                "trained",
                True,
                f"Trained here: {meta.get('kind', '')}, {meta.get('vocab_size', '?')} tokens.",
            )
        )
    return entries


def _read_meta(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "playground-tokenizer.json").read_text())
    except (OSError, ValueError):
        return None


def catalog(owner: str | None = None) -> list[TokenizerEntry]:
    """Every tokenizer the caller can pick: packaged, their own, then Hub ones (available when online/cached)."""
    settings = get_settings()
    minilm, smol = packs.PACKS["all-minilm-l6-v2"], packs.PACKS["smollm2-135m-instruct"]
    entries = [
        TokenizerEntry(minilm.id, "WordPiece", "packaged", minilm.installed, "MiniLM / BERT uncased WordPiece."),
        TokenizerEntry(smol.id, "BPE", "packaged", smol.installed, "SmolLM2: byte-level BPE (GPT-2 style), 49k."),
        TokenizerEntry(
            DEMO_UNIGRAM,
            "Unigram",
            "packaged",
            True,
            "SentencePiece-style Unigram trained here on the bundled corpus.",
        ),
    ]
    entries += trained_tokenizers(owner)
    entries += [TokenizerEntry(e.id, "", "model", True, e.description) for e in models.trained_models(owner)]
    for repo_id, description in HUB_TOKENIZERS.items():
        available = not settings.offline or hub.cached_snapshot(repo_id) is not None
        entries.append(TokenizerEntry(repo_id, "", "hub", available, description))
    return entries


# ---- resolving and loading ----------------------------------------------------------------------------------


def _locate(tokenizer_id: str, owner: str | None) -> tuple[str, dict]:
    """Where a tokenizer's files are, plus `from_pretrained` keyword arguments. Raises a sentence otherwise."""
    tokenizer_id = check_id(tokenizer_id or "", "The tokenizer name")
    if not tokenizer_id:
        raise ModelNotFound("Please choose a tokenizer first.")
    settings = get_settings()
    if tokenizer_id == DEMO_UNIGRAM:
        from services.tokenizers.training import ensure_demo_unigram

        return str(ensure_demo_unigram()), {}
    if tokenizer_id in packs.PACKS:
        pack = packs.PACKS[tokenizer_id]
        if pack.installed:
            return str(_pack_tokenizer_dir(pack)), {}
        if settings.offline:
            raise ModelUnavailable(f"The packaged tokenizer '{tokenizer_id}' is missing: run `make run` to add it.")
        return pack.hub_id, {}
    if tokenizer_id.startswith(TOKENIZER_PREFIX):
        name = tokenizer_id[len(TOKENIZER_PREFIX) :]
        folder = tokenizers_root(owner) / safe_name(name) if owner else None
        if folder is None or safe_name(name) != name or _read_meta(folder) is None:
            raise ModelNotFound(f"You have no tokenizer called '{name}'. Train one in the Train section first.")
        return str(folder), {}
    if tokenizer_id.startswith(models.TRAINED_PREFIX) or tokenizer_id in packaged_adapters.ADAPTERS:
        resolved = models.resolve(tokenizer_id, owner)
        base = resolved.base
        if base is None or adapters.tokenizer_location(resolved, ""):
            return resolved.location, {}
        # An adapter saved without tokenizer files (the packaged task adapters): its base's tokenizer.
        return _locate(base.id, owner) if base.source in ("packaged", "hub") else (base.location, {})
    if models._looks_like_path(tokenizer_id):
        return str(_local_folder(tokenizer_id, owner)), {}
    if not hub.is_valid_repo_id(tokenizer_id):
        raise ModelNotFound(
            f"'{tokenizer_id}' is not a tokenizer this playground knows. Pick one from the list, or type a Hub id "
            "such as 'openai-community/gpt2'."
        )
    shadowed = models._exists_here(tokenizer_id)  # a Hub id that is also a folder here is never read from disk
    if settings.offline:
        snapshot = None if shadowed else hub.cached_snapshot(tokenizer_id)
        if snapshot is None:
            raise ModelUnavailable(
                f"'{tokenizer_id}' is on the Hub, and the playground is offline with no copy of it here. "
                "Pick a packaged tokenizer, or one you trained."
            )
        return str(snapshot), {}
    if shadowed:
        raise ModelNotFound(f"'{tokenizer_id}' has no tokenizer files this playground can read.")
    return tokenizer_id, {"token": False if settings.on_space else None}


def trained_folder(tokenizer_id: str, owner: str | None) -> Path:
    """The folder of a tokenizer the owner trained here (to download or push it); a sentence for anything else."""
    if not (tokenizer_id or "").startswith(TOKENIZER_PREFIX):
        raise PlaygroundError("Only tokenizers trained here (tokenizer:<name>) can be downloaded or pushed; pick one.")
    return Path(_locate(tokenizer_id, owner)[0])


def _local_folder(path: str, owner: str | None) -> Path:
    settings = get_settings()
    if not settings.allow_local_paths:
        raise AccessDenied("Loading tokenizers from folders on the server is turned off here. Use an id instead.")
    folder = Path(path).expanduser().resolve()
    mine = owner and (
        folder.is_relative_to(tokenizers_root(owner)) or folder.is_relative_to(models.trained_root(owner))
    )
    if (folder.is_relative_to(settings.home) and not mine) or not folder.is_dir():  # one sentence for both
        raise ModelNotFound(f"There is no folder '{path}' on this machine.")
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise NotAModel(f"The folder '{folder.name}' holds no tokenizer (no tokenizer.json or vocabulary file).")
    return folder


def _pack_tokenizer_dir(pack: packs.Pack) -> Path:
    """The pack's tokenizer files. A GGUF pack's tokenizer is read from the GGUF once (~10 s) and saved."""
    if pack.gguf is None:
        return pack.source() / (pack.folder or "")
    if packs.is_ready(pack):
        return packs.converted_dir(pack)
    dest = get_settings().packs_dir / f"{pack.id}-tokenizer"
    if (dest / "tokenizer.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with packs._file_lock(dest.parent / f".{pack.id}-tokenizer.lock"):
        if not (dest / "tokenizer.json").exists():
            from transformers.models.auto.tokenization_auto import AutoTokenizer  # thread-safe: see _load

            logger.info("Reading the tokenizer of %s from its GGUF file", pack.id)
            tokenizer = AutoTokenizer.from_pretrained(str(pack.source()), gguf_file=pack.gguf)
            tmp = dest.with_name(dest.name + ".tmp")
            tokenizer.save_pretrained(str(tmp))
            tmp.rename(dest)
    return dest


class _TokenizerCache:
    """A small LRU of loaded tokenizers with single-flight loading (one load per id at a time)."""

    def __init__(self, size: int = 16):
        self.size = size
        self._items: OrderedDict[tuple, LoadedTokenizer] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, loader) -> LoadedTokenizer:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._loading.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            loaded = loader()
            with self._lock:
                self._items[key] = loaded
                self._loading.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return loaded

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@functools.cache
def tokenizer_cache() -> _TokenizerCache:
    return _TokenizerCache()


def load_tokenizer(tokenizer_id: str, owner: str | None = None, trust_remote_code: bool = False) -> LoadedTokenizer:
    """Load (or fetch from the cache) a tokenizer; every failure is a `PlaygroundError` with a sentence."""
    from services.core.safety import check_remote_code

    check_remote_code(trust_remote_code)
    location, kwargs = _locate(tokenizer_id, owner)
    stamp = _stamp(location)
    key = (location, stamp, trust_remote_code)
    return tokenizer_cache().get(key, lambda: _load(tokenizer_id.strip(), location, kwargs, trust_remote_code))


def _stamp(location: str) -> float:
    """A folder's tokenizer.json time, so a re-trained tokenizer with the same name is not served stale."""
    path = Path(location) / "tokenizer.json"
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _load(tokenizer_id: str, location: str, kwargs: dict, trust_remote_code: bool) -> LoadedTokenizer:
    from tokenizers import Tokenizer

    # Not `from transformers import AutoTokenizer`: transformers' lazy top-level module is not thread-safe on its first
    # import, and two visitors' first tokenizers load at once (page load); a plain submodule import waits its turn.
    from transformers.models.auto.tokenization_auto import AutoTokenizer

    settings = get_settings()
    started = time.monotonic()
    try:
        hf = AutoTokenizer.from_pretrained(
            location,
            trust_remote_code=trust_remote_code,
            local_files_only=settings.offline or Path(location).is_dir(),
            **kwargs,
        )
    except PlaygroundError:
        raise
    except Exception as err:
        logger.warning("Loading tokenizer %s failed: %s: %s", tokenizer_id, type(err).__name__, err)
        text = str(err)
        if "trust_remote_code" in text:
            raise TokenizerError(
                f"'{tokenizer_id}' needs custom code from its repository to build its tokenizer, which is off here."
            ) from err
        if "does not appear to have" in text or "not found" in text.lower() or isinstance(err, OSError):
            raise ModelNotFound(f"'{tokenizer_id}' has no tokenizer files this playground can read.") from err
        raise TokenizerError(f"The tokenizer of '{tokenizer_id}' could not be loaded ({type(err).__name__}).") from err
    backend = getattr(hf, "backend_tokenizer", None)
    if backend is None:
        raise TokenizerError(
            f"'{tokenizer_id}' only has a slow (pure Python) tokenizer, which the explorer cannot look inside."
        )
    spec_text = backend.to_str()
    private = Tokenizer.from_str(spec_text)
    # tokenizer.json may carry padding/truncation (MiniLM pads to 128); a plain `tokenizer(text)` call does neither.
    private.no_padding()
    private.no_truncation()
    logger.info("Loaded tokenizer %s in %.2f s", tokenizer_id, time.monotonic() - started)
    return LoadedTokenizer(tokenizer_id, hf, private, json.loads(spec_text), location)


def warm_up() -> None:
    """Load the packaged tokenizers (preparing them on disk the first time); failures are only logged."""
    for tokenizer_id in ("all-minilm-l6-v2", "smollm2-135m-instruct", DEMO_UNIGRAM):
        try:
            load_tokenizer(tokenizer_id)
        except PlaygroundError as err:
            logger.warning("Tokenizer %s is not available: %s", tokenizer_id, err)
