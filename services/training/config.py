"""The fine-tuning job's configuration: one dataclass shared by the UI, the CLI (`python -m services train
CONFIG.yaml`) and the tests; YAML in, YAML out, checked in `__post_init__` with sentences a person understands.

Any `TrainingArguments` field may go under `training:`; unknown names are refused with the closest real name.
`suggested()` gives the defaults the UI proposes per task (tuned on the bundled samples on a 2-core CPU).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from services.core.errors import PlaygroundError

TASKS = ("text-classification", "text-regression", "token-classification", "summarization", "causal-lm", "chat")
# The metric early stopping and "best model" watch, per task (True: higher is better).
BEST_METRIC = {
    "text-classification": ("f1", True),
    "text-regression": ("mse", False),
    "token-classification": ("f1", True),
    "summarization": ("rougeL", True),
    "causal-lm": ("loss", False),
    "chat": ("loss", False),
}
LORA_INITS = ("default", "gaussian", "pissa", "olora", "eva", "loftq")
QUANTIZATIONS = ("4bit", "8bit")
SFT_SETTINGS = frozenset({"packing", "packing_strategy", "loss_type"})
# Set by the launcher itself: the user cannot move outputs or turn off the evaluation the job relies on.
_MANAGED = {"output_dir", "logging_dir", "report_to", "push_to_hub", "hub_token", "hub_model_id"}


class ConfigError(PlaygroundError):
    """A training setting that cannot work, said in one sentence."""


@dataclass
class DataConfig:
    source: str = field(metadata={"help": "a bundled sample (samples/sentiment), a file path or a Hub dataset id"})
    config: str | None = field(default=None, metadata={"help": "the Hub dataset's configuration"})
    split: str | None = field(default=None, metadata={"help": "the Hub split to train on (default train)"})
    text_column: str = field(default="text", metadata={"help": "the text (or, for NER, the list of words)"})
    label_column: str | None = field(default=None, metadata={"help": "labels, NER tags, or the regression target"})
    target_column: str | None = field(default=None, metadata={"help": "the number to predict (text-regression)"})
    summary_column: str | None = field(default=None, metadata={"help": "the reference summary (summarization)"})
    eval_split: float | str = field(default=0.2, metadata={"help": "a share held out of train, or a split name"})
    max_samples: int | None = field(default=None, metadata={"help": "train on at most this many rows"})
    multi_label: bool = field(default=False, metadata={"help": "several labels per row (comma or | separated)"})
    messages_column: str | None = field(default=None, metadata={"help": "chat: a list of {role, content} turns"})
    prompt_column: str | None = field(default=None, metadata={"help": "chat: the user's turn (or instruction)"})
    completion_column: str | None = field(default=None, metadata={"help": "chat: the answer (or output)"})
    input_column: str | None = field(default=None, metadata={"help": "chat: an input appended to the prompt"})

    def target(self, task: str) -> str | None:
        """The column the model learns to predict for `task`."""
        if task == "text-regression":
            return self.target_column or self.label_column
        if task == "summarization":
            return self.summary_column or self.label_column
        return None if task in ("causal-lm", "chat") else self.label_column


@dataclass
class LoraSettings:
    """The adapter: peft's `LoraConfig` in the words the UI uses (checked here, built in `services.training.lora`)."""

    r: int = field(default=16, metadata={"help": "the adapter's rank: more is more capacity (and memory)"})
    alpha: float = field(default=32, metadata={"help": "scales the update: alpha / r (or / sqrt(r) with rsLoRA)"})
    dropout: float = field(default=0.05, metadata={"help": "dropout on the adapter's input"})
    target_modules: list[str] | str = field(default="all-linear", metadata={"help": "layer names, or all-linear"})
    use_dora: bool = field(default=False, metadata={"help": "DoRA: a learned magnitude per output"})
    use_rslora: bool = field(default=False, metadata={"help": "rank-stabilised scaling alpha / sqrt(r)"})
    init: str = field(default="default", metadata={"help": ", ".join(LORA_INITS)})

    def __post_init__(self) -> None:
        try:
            self.r, self.alpha, self.dropout = int(self.r), float(self.alpha), float(self.dropout)
        except (TypeError, ValueError) as err:
            raise ConfigError("lora r, alpha and dropout must be numbers, for example r: 16, alpha: 32.") from err
        if self.r < 1:
            raise ConfigError(f"lora r must be at least 1 (it is the adapter's rank; 8 or 16 is usual), not {self.r}.")
        if self.alpha <= 0:
            raise ConfigError(f"lora alpha must be more than 0 (usually twice r), not {self.alpha:g}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"lora dropout must be at least 0 and below 1 (0.05 is usual), not {self.dropout:g}.")
        if isinstance(self.target_modules, str):
            names = [n.strip() for n in self.target_modules.split(",") if n.strip()]
            self.target_modules = "all-linear" if names in ([], ["all-linear"]) else names
        elif not self.target_modules or not all(isinstance(n, str) and n for n in self.target_modules):
            raise ConfigError("lora target_modules is a list of layer names (such as q_proj, v_proj) or all-linear.")
        else:
            self.target_modules = list(self.target_modules)
        self.init = str(self.init or "default").lower()
        if self.init in ("true", "lora"):
            self.init = "default"
        if self.init not in LORA_INITS:
            raise ConfigError(f"lora init must be one of {', '.join(LORA_INITS)}, not '{self.init}'.")


@dataclass
class TrainConfig:
    task: str = field(metadata={"help": ", ".join(TASKS)})
    model: str = field(metadata={"help": "catalog id, Hub id, local folder or trained:<name>"})
    dataset: DataConfig = field(metadata={"help": "where the data comes from and which columns mean what"})
    max_length: int = field(default=128, metadata={"help": "tokens per text; longer texts are cut"})
    max_target_length: int = field(default=64, metadata={"help": "tokens per summary (summarization)"})
    training: dict = field(default_factory=dict, metadata={"help": "any TrainingArguments field"})
    early_stopping_patience: int | None = field(default=2, metadata={"help": "evaluations without progress"})
    metric_for_best_model: str | None = field(default=None, metadata={"help": "default: per task"})
    model_config: dict = field(default_factory=dict, metadata={"help": "AutoConfig overrides, e.g. dropout"})
    output_dir: str = field(default="runs/model", metadata={"help": "where the model and its files go"})
    push_to_hub: dict | None = field(default=None, metadata={"help": "{repo_id: ..., private: true}"})
    resume: bool = field(default=False, metadata={"help": "continue from the last checkpoint in output_dir"})
    keep_checkpoints: bool = field(default=False, metadata={"help": "keep checkpoints after a successful run"})
    trust_remote_code: bool = field(default=False, metadata={"help": "run code shipped with a Hub model"})
    lora: LoraSettings | None = field(default=None, metadata={"help": "train a LoRA adapter instead of all weights"})
    loss_on: str = field(default="completion", metadata={"help": "chat: completion (assistant turns) or all"})
    quantization: str | None = field(default=None, metadata={"help": "4bit or 8bit (QLoRA; needs a CUDA GPU)"})

    def __post_init__(self) -> None:
        if isinstance(self.dataset, dict):
            self.dataset = _build(DataConfig, self.dataset, "dataset")
        if isinstance(self.lora, dict):
            self.lora = _build(LoraSettings, self.lora, "lora")
        elif self.lora is True:
            self.lora = LoraSettings()
        elif self.lora is not None and not isinstance(self.lora, LoraSettings):
            raise ConfigError(
                "lora is a mapping such as {r: 16, alpha: 32, dropout: 0.05, target_modules: all-linear}."
            )
        if self.loss_on not in ("completion", "all"):
            raise ConfigError(f"loss_on must be completion (the assistant's turns) or all, not '{self.loss_on}'.")
        if self.quantization in ("none", "", False):
            self.quantization = None
        if self.quantization is not None:
            self.quantization = str(self.quantization).lower().replace("-", "")
            if self.quantization not in QUANTIZATIONS:
                raise ConfigError(f"quantization must be 4bit or 8bit, not '{self.quantization}'.")
            if self.lora is None:
                raise ConfigError("A quantized model can only be trained through an adapter: add a lora: section.")
        if self.task not in TASKS:
            raise ConfigError(f"The task must be one of {', '.join(TASKS)}, not '{self.task}'.")
        if not str(self.model or "").strip():
            raise ConfigError("Choose a model to fine-tune.")
        if not 8 <= int(self.max_length) <= 8192:
            raise ConfigError("max_length must be between 8 and 8192 tokens.")
        self.training = dict(self.training or {})
        _check_training(self.training, lora=self.lora is not None)
        if self.task not in ("causal-lm", "chat") and not self.dataset.target(self.task):
            column = {"text-regression": "target_column", "summarization": "summary_column"}.get(
                self.task, "label_column"
            )
            raise ConfigError(f"Say which column holds what the model learns: set dataset.{column}.")
        if self.push_to_hub is not None and not (
            isinstance(self.push_to_hub, dict) and self.push_to_hub.get("repo_id")
        ):
            raise ConfigError("push_to_hub needs a repo_id, for example {repo_id: your-name/my-model}.")
        if self.early_stopping_patience is not None and int(self.early_stopping_patience) < 1:
            self.early_stopping_patience = None

    @property
    def best_metric(self) -> tuple[str, bool]:
        if self.metric_for_best_model:
            name = self.metric_for_best_model.removeprefix("eval_")
            return name, name not in ("loss", "mse", "mae", "perplexity")
        return BEST_METRIC[self.task]

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        if not isinstance(data, dict):
            raise ConfigError("A training config is a YAML mapping with task, model, dataset, ... at the top.")
        return _build(cls, data, "config")

    @classmethod
    def from_yaml(cls, text_or_path: str | Path) -> TrainConfig:
        """A config from a YAML file's path or from YAML text (the CLI). What a visitor sends is only ever text:
        `from_yaml_text`, which never reads a file."""
        path = Path(text_or_path)
        text = (
            path.read_text(encoding="utf-8") if "\n" not in str(text_or_path) and path.is_file() else str(text_or_path)
        )
        return cls.from_yaml_text(text)

    @classmethod
    def from_yaml_text(cls, text: str) -> TrainConfig:
        if not isinstance(text, str) or len(text) > 100_000:
            raise ConfigError("A training config is YAML text of at most 100,000 characters.")
        from services.core.safety import load_yaml

        try:
            data = load_yaml(text)
        except yaml.YAMLError as err:
            raise ConfigError(f"The config is not valid YAML: {str(err).splitlines()[0]}") from err
        return cls.from_dict(data)


def _build(cls, data: dict, where: str):
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in names]
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"'{unknown[0]}' is not a {where} setting.{hint}")
    missing = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in data
    ]
    if missing:
        raise ConfigError(f"The {where} needs '{missing[0]}'.")
    try:
        return cls(**data)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"The {where} has a value of the wrong kind: {err}") from err


@functools.cache
def training_argument_names() -> frozenset[str]:
    # From its own module: transformers' lazy top-level attribute can fail ("cannot import name") while another
    # thread is importing transformers (two tabs preview their configs at once on a page load).
    from transformers.training_args_seq2seq import Seq2SeqTrainingArguments

    # trl's SFTConfig settings that a chat job passes on (the rest of SFTConfig is set from the top-level keys).
    return frozenset(f.name for f in dataclasses.fields(Seq2SeqTrainingArguments) if f.init) | SFT_SETTINGS


def _check_training(values: dict[str, Any], lora: bool = False) -> None:
    names = training_argument_names()
    for key in values:
        if key in _MANAGED:
            raise ConfigError(f"'{key}' is set by the launcher (use output_dir / push_to_hub at the top level).")
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConfigError(f"'{key}' is not a TrainingArguments setting.{hint}")
    lr = values.get("learning_rate")
    if lr is not None:
        try:
            lr = float(lr)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"The learning rate must be a number like 5e-5, not '{lr}'.") from err
        if not 0 < lr <= 0.01:
            usual = (
                "a LoRA adapter uses about 1e-4 to 1e-3 (2e-4 is a good start)"
                if lora
                else ("fine-tuning uses about 1e-5 to 5e-4 (5e-5 is a good start)")
            )
            raise ConfigError(f"A learning rate of {lr:g} would wreck the model: {usual}.")
        values["learning_rate"] = lr
    for key in ("num_train_epochs", "per_device_train_batch_size", "per_device_eval_batch_size"):
        if key in values and not float(values[key]) > 0:
            raise ConfigError(f"{key} must be more than 0.")


def suggested(task: str) -> dict:
    """The training settings the UI proposes for a task (small models on a CPU; a GPU makes them faster)."""
    common = {"num_train_epochs": 3, "learning_rate": 5e-5, "per_device_train_batch_size": 16, "weight_decay": 0.01}
    per_task = {
        "text-classification": {"num_train_epochs": 4, "learning_rate": 1e-4, "warmup_steps": 0.1},
        "text-regression": {"num_train_epochs": 5, "learning_rate": 1e-4},
        "token-classification": {"num_train_epochs": 5, "learning_rate": 1e-4},
        "summarization": {"num_train_epochs": 3, "learning_rate": 3e-4, "per_device_train_batch_size": 8},
        "causal-lm": {"num_train_epochs": 2, "learning_rate": 3e-4, "per_device_train_batch_size": 8},
        # LoRA moves few weights from a small start: it wants a learning rate ten times a full fine-tune's.
        "chat": {"num_train_epochs": 2, "learning_rate": 3e-4, "per_device_train_batch_size": 8, "weight_decay": 0.0},
    }
    return {**common, **per_task.get(task, {}), "seed": 42}


def command_preview(config_path: str | Path) -> str:
    """The exact command a job runs for a config file (the UI shows it; a terminal can run it as is)."""
    return shlex.join([Path(sys.executable).name, "-m", "services", "train", str(config_path)])
