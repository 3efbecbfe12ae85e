"""What a tokenizer training is asked to do: `TokenizerTrainConfig` (model, vocabulary, normalisation,
pre-tokenizer, corpus) and the choices it checks against."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from services.core.limits import check_count, check_id
from services.core.owners import safe_name

MODELS = ("bpe", "wordpiece", "unigram")
NORMALIZATIONS = ("none", "nfc", "nfkc", "lowercase", "bert")
PRE_TOKENIZERS = ("byte-level", "whitespace", "metaspace", "bert")
# The pre-tokenizer and normalisation each model usually comes with (GPT-2, BERT, T5/SentencePiece).
USUAL = {"bpe": ("byte-level", "nfc"), "wordpiece": ("bert", "bert"), "unigram": ("metaspace", "nfkc")}
DEFAULT_SPECIALS = {
    "bpe": ["<|endoftext|>", "<pad>"],
    "wordpiece": ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    "unigram": ["<pad>", "<unk>", "<s>", "</s>"],
}

Progress = Callable[[float, str], None]


@dataclass
class TokenizerTrainConfig:
    name: str = field(metadata={"help": "name of the new tokenizer; it becomes tokenizer:<name>"})
    model: str = field(default="bpe", metadata={"help": "bpe | wordpiece | unigram"})
    vocab_size: int = field(default=8000, metadata={"help": "how many tokens the vocabulary should hold"})
    min_frequency: int = field(default=2, metadata={"help": "a merge or piece must occur this often (BPE/WordPiece)"})
    special_tokens: list[str] = field(default_factory=list, metadata={"help": "added first; default per model"})
    normalization: str = field(
        default="auto", metadata={"help": "none | nfc | nfkc | lowercase | bert (auto: the usual one for the model)"}
    )
    pre_tokenizer: str = field(
        default="auto", metadata={"help": "byte-level | whitespace | metaspace | bert (auto: the usual one)"}
    )
    byte_fallback: bool = field(default=False, metadata={"help": "unknown characters become <0xNN> byte tokens"})
    corpus: str = field(default="bundled", metadata={"help": "bundled | files | dataset"})
    files: list[str] = field(default_factory=list, metadata={"help": "text, CSV/TSV, JSON(L) or Parquet files"})
    text_column: str = field(default="text", metadata={"help": "the column to read from tables and datasets"})
    dataset: str = field(default="", metadata={"help": "a Hub dataset id (online only)"})
    dataset_split: str = field(default="train", metadata={"help": "the split of the Hub dataset"})

    def __post_init__(self) -> None:
        self._check_caps()
        self.name = (self.name or "").strip()
        if not self.name or safe_name(self.name) != self.name:
            raise ValueError(
                f"'{self.name}' cannot be a tokenizer name: use letters, digits, '.', '-' or '_' (no spaces)."
            )
        self.model = self.model.lower()
        if self.model not in MODELS:
            raise ValueError(f"The tokenizer model must be one of {', '.join(MODELS)}, not '{self.model}'.")
        usual_pre, usual_norm = USUAL[self.model]
        self.normalization = usual_norm if self.normalization in ("", "auto", None) else self.normalization
        self.pre_tokenizer = usual_pre if self.pre_tokenizer in ("", "auto", None) else self.pre_tokenizer
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"Normalisation must be one of {', '.join(NORMALIZATIONS)}.")
        if self.pre_tokenizer not in PRE_TOKENIZERS:
            raise ValueError(f"The pre-tokenizer must be one of {', '.join(PRE_TOKENIZERS)}.")
        if not 50 <= int(self.vocab_size) <= 500_000:
            raise ValueError("The vocabulary size must be between 50 and 500,000.")
        self.vocab_size = int(self.vocab_size)
        self.min_frequency = max(1, int(self.min_frequency))
        self.special_tokens = [t.strip() for t in self.special_tokens if t and t.strip()] or list(
            DEFAULT_SPECIALS[self.model]
        )
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError("A special token is listed twice.")
        if self.corpus not in ("bundled", "files", "dataset"):
            raise ValueError("The corpus must be 'bundled', 'files' or 'dataset'.")
        if self.corpus == "files" and not self.files:
            raise ValueError("Add at least one text file to train on.")
        if self.corpus == "dataset" and not self.dataset.strip():
            raise ValueError("Type the Hub dataset id to train on.")

    def _check_caps(self) -> None:
        """Names and lists a visitor typed stay within the caps of `services.core.limits` (short ids, `list_items`)."""
        check_id(self.name or "", "The tokenizer name")
        for what, value in (("The text column", self.text_column), ("The dataset id", self.dataset),
                            ("The dataset split", self.dataset_split)):  # fmt: skip
            check_id(value or "", what)
        for what, items in (("special tokens", self.special_tokens), ("files", self.files)):
            if not isinstance(items, list):
                raise ValueError(f"The {what} must be a list.")
            check_count(items, what)
        for token in self.special_tokens:
            check_id(token or "", "A special token")

    @classmethod
    def from_dict(cls, data: dict) -> TokenizerTrainConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"Unknown setting(s) in the tokenizer config: {', '.join(unknown)}.")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def unk_token(self) -> str | None:
        for candidate in ("[UNK]", "<unk>"):
            if candidate in self.special_tokens:
                return candidate
        return None
