"""Training tokenizers from scratch with the `tokenizers` library: BPE, WordPiece or Unigram.

A `TokenizerTrainConfig` (YAML in, YAML out) says what to train on and how; `train()` reads and checks the corpus
(empty, binary and too-small corpora are explained), trains, and saves a folder that `AutoTokenizer` loads, under
the owner's ``PLAYGROUND_HOME/tokenizers``. In the app it runs as a child-process job
(``python -m services train-tokenizer CONFIG.yaml``) so a big corpus never slows the UI and Cancel always works.

`ensure_demo_unigram()` trains the packaged ``unigram-demo`` tokenizer on the bundled corpus at first use.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

from services.core.config import get_settings
from services.core.errors import PlaygroundError
from services.tokenizers.config import (  # noqa: F401  (their home before; callers import them here)
    DEFAULT_SPECIALS,
    MODELS,
    NORMALIZATIONS,
    PRE_TOKENIZERS,
    USUAL,
    Progress,
    TokenizerTrainConfig,
)
from services.tokenizers.corpus import (  # noqa: F401  (re-exported for the tab and tests)
    CORPUS_DIR,
    TABLE_SUFFIXES,
    TEXT_SUFFIXES,
    CorpusError,
    CorpusStats,
    check_text_file,
    corpus_files,
    iter_corpus,
)

logger = logging.getLogger(__name__)

# ---- building and training -----------------------------------------------------------------------------------


def build_tokenizer(config: TokenizerTrainConfig):
    """An untrained `tokenizers.Tokenizer` and its trainer, as the config says."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, trainers
    from tokenizers import models as tk_models

    unk = config.unk_token
    byte_level = config.pre_tokenizer == "byte-level"
    # Without byte-level or metaspace markers, BPE marks word ends ("</w>") so that decoding can restore spaces.
    word_suffix = "</w>" if config.pre_tokenizer in ("whitespace", "bert") else None
    if config.model == "bpe":
        extra = {"end_of_word_suffix": word_suffix} if word_suffix else {}
        model = tk_models.BPE(unk_token=None if byte_level else unk, byte_fallback=config.byte_fallback, **extra)
        trainer = trainers.BpeTrainer
    elif config.model == "wordpiece":
        model = tk_models.WordPiece(unk_token=unk or "[UNK]")
        trainer = trainers.WordPieceTrainer
    else:
        model = tk_models.Unigram(byte_fallback=config.byte_fallback)
        trainer = trainers.UnigramTrainer
    tokenizer = Tokenizer(model)
    tokenizer.normalizer = {
        "none": None,
        "nfc": normalizers.NFC(),
        "nfkc": normalizers.NFKC(),
        "lowercase": normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()]),
        "bert": normalizers.BertNormalizer(lowercase=True, strip_accents=True, clean_text=True),
    }[config.normalization]
    tokenizer.pre_tokenizer = {
        "byte-level": pre_tokenizers.ByteLevel(add_prefix_space=False),
        "whitespace": pre_tokenizers.Whitespace(),
        "metaspace": pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always"),
        "bert": pre_tokenizers.BertPreTokenizer(),
    }[config.pre_tokenizer]
    if byte_level:
        tokenizer.decoder = decoders.ByteLevel()
    elif config.pre_tokenizer == "metaspace":
        tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    elif config.model == "wordpiece":
        tokenizer.decoder = decoders.WordPiece()
    elif config.model == "bpe":
        tokenizer.decoder = decoders.BPEDecoder(suffix="</w>")
    if config.byte_fallback and config.pre_tokenizer == "metaspace":
        tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), tokenizer.decoder])
    # Byte fallback needs the 256 <0xNN> pieces in the vocabulary; `_add_byte_pieces` adds them after training.
    fallback = config.byte_fallback and not byte_level
    options: dict = {
        "vocab_size": max(50, config.vocab_size - 256) if fallback else config.vocab_size,
        "special_tokens": config.special_tokens,
        "show_progress": False,
    }
    if config.model == "unigram":
        options["unk_token"] = unk
        if byte_level:
            options["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    else:
        options["min_frequency"] = config.min_frequency
        if word_suffix and config.model == "bpe":
            options["end_of_word_suffix"] = word_suffix
        if byte_level:
            options["initial_alphabet"] = pre_tokenizers.ByteLevel.alphabet()
    return tokenizer, trainer(**options)


def _add_byte_pieces(tokenizer, config: TokenizerTrainConfig):
    """Add the <0x00>..<0xFF> pieces that byte fallback turns unknown characters into (as SentencePiece does)."""
    from tokenizers import Tokenizer

    if not config.byte_fallback or config.pre_tokenizer == "byte-level" or config.model == "wordpiece":
        return tokenizer
    spec = json.loads(tokenizer.to_str())
    model = spec["model"]
    pieces = [f"<0x{b:02X}>" for b in range(256)]
    if config.model == "unigram":
        have = {p for p, _ in model["vocab"]}
        low = min((score for _, score in model["vocab"]), default=0.0) - 1.0
        model["vocab"] += [[p, low] for p in pieces if p not in have]
    else:
        vocab = model["vocab"]
        for p in pieces:
            vocab.setdefault(p, len(vocab))
    model["byte_fallback"] = True
    return Tokenizer.from_str(json.dumps(spec))


def _add_post_processor(tokenizer, config: TokenizerTrainConfig) -> None:
    """BERT-style [CLS] ... [SEP] or sentence-end </s> when those special tokens exist."""
    from tokenizers import processors

    def ids(*tokens: str) -> list[tuple[str, int]] | None:
        found = [(t, tokenizer.token_to_id(t)) for t in tokens]
        return found if all(i is not None for _, i in found) else None

    if pair := ids("[CLS]", "[SEP]"):
        tokenizer.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=pair
        )
    elif end := ids("</s>"):
        tokenizer.post_processor = processors.TemplateProcessing(
            single="$A </s>", pair="$A </s> $B:1 </s>:1", special_tokens=end
        )


def _wrap(tokenizer, config: TokenizerTrainConfig):
    """A transformers fast tokenizer around the trained one, with its special tokens named."""
    from transformers import PreTrainedTokenizerFast

    specials = set(config.special_tokens)
    roles = {
        "unk_token": ("[UNK]", "<unk>"),
        "pad_token": ("[PAD]", "<pad>"),
        "cls_token": ("[CLS]",),
        "sep_token": ("[SEP]",),
        "mask_token": ("[MASK]", "<mask>"),
        "bos_token": ("<s>", "<|endoftext|>"),
        "eos_token": ("</s>", "<|endoftext|>"),
    }
    kwargs = {}
    for role, candidates in roles.items():
        for token in candidates:
            if token in specials:
                kwargs[role] = token
                break
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **kwargs)


def train(
    config: TokenizerTrainConfig, dest: Path, progress: Progress | None = None, cancelled: Callable[[], bool] = bool
) -> dict:
    """Train as the config says and save to `dest` (written whole or not at all). Returns a summary."""
    progress = progress or (lambda f, m: None)
    if dest.exists():
        raise PlaygroundError(f"You already have a tokenizer called '{config.name}'. Pick another name.")
    started = time.monotonic()
    tokenizer, trainer = build_tokenizer(config)
    stats = CorpusStats()

    def batches() -> Iterator[list[str]]:
        for batch in iter_corpus(config, stats, progress):
            if cancelled():
                raise PlaygroundError("Training was cancelled.")
            yield batch

    progress(0.0, "Reading the corpus")
    try:
        tokenizer.train_from_iterator(batches(), trainer=trainer)
    except PlaygroundError:
        raise
    except Exception as err:
        if stats.text_lines and "not large enough to contain all chars" in str(err):
            reserved = " (256 of it are kept for byte fallback pieces)" if config.byte_fallback else ""
            raise CorpusError(
                f"A vocabulary of {config.vocab_size:,}{reserved} is too small for this corpus: a Unigram vocabulary "
                "must hold every character the text uses. Choose a larger vocabulary size."
            ) from err
        if stats.text_lines:
            logger.warning("Tokenizer training failed: %s: %s", type(err).__name__, err)
            raise CorpusError(
                f"Training failed on this corpus ({stats.characters:,} characters): it is probably too small for "
                f"a vocabulary of {config.vocab_size:,}. Use more text or a smaller vocabulary."
            ) from err
    if not stats.text_lines:
        raise CorpusError("The training text is empty: there is nothing to learn a vocabulary from.")
    progress(0.9, "Saving the tokenizer")
    tokenizer = _add_byte_pieces(tokenizer, config)
    _add_post_processor(tokenizer, config)
    vocab = tokenizer.get_vocab_size(with_added_tokens=True)
    summary = {
        "id": f"tokenizer:{config.name}",
        "name": config.name,
        "kind": {"bpe": "BPE", "wordpiece": "WordPiece", "unigram": "Unigram"}[config.model],
        "vocab_size": vocab,
        "requested_vocab_size": config.vocab_size,
        "corpus": asdict(stats),
        "seconds": round(time.monotonic() - started, 2),
        "trained_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": config.to_dict(),
    }
    if vocab < config.vocab_size * 0.9:
        summary["note"] = (
            f"The corpus ({stats.characters:,} characters) only had enough material for {vocab:,} tokens of the "
            f"{config.vocab_size:,} you asked for; give it more text for a bigger vocabulary."
        )
    elif vocab > config.vocab_size * 1.1:
        summary["note"] = (
            f"The vocabulary has {vocab:,} tokens, more than the {config.vocab_size:,} you asked for: every character "
            "of the corpus gets a token of its own before any longer piece is learned."
        )
    tmp = dest.with_name(f".{dest.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    _wrap(tokenizer, config).save_pretrained(str(tmp))
    (tmp / "playground-tokenizer.json").write_text(json.dumps(summary, indent=2))
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(dest)
    progress(1.0, f"Trained {summary['kind']} with {vocab:,} tokens")
    return summary


def ensure_demo_unigram() -> Path:
    """The packaged Unigram demo tokenizer, trained on the bundled corpus the first time it is asked for."""
    from services.models.packs import _file_lock

    dest = get_settings().packs_dir / "unigram-demo"
    if (dest / "playground-tokenizer.json").exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(dest.parent / ".unigram-demo.lock"):
        if not (dest / "playground-tokenizer.json").exists():
            config = TokenizerTrainConfig(
                name="unigram-demo",
                model="unigram",
                vocab_size=4000,
                normalization="nfkc",
                pre_tokenizer="metaspace",
                byte_fallback=True,
                special_tokens=["<pad>", "</s>", "<unk>"],
            )
            logger.info("Training the demo Unigram tokenizer on the bundled corpus")
            train(config, dest)
    return dest
