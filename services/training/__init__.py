"""Fine-tuning with the Trainer: the config, the data, the run, the job, the metrics.

`config` (`TrainConfig`, the YAML a job runs), `policy` (what a visitor on a Space may set), `data` (the dataset
turned into model inputs), `train` (one training from a config), `run` (the Trainer, its callbacks and what it
writes), `jobs` (a training as a background child job: start, outputs, resume), `metrics` (accuracy, F1, ROUGE,
BLEU, ...); for LoRA: `lora_config` (the adapter's peft config, QLoRA's check), `chat_data` (conversations read,
checked and tokenised with the assistant-only loss mask), `lora` (trl's SFTTrainer for `task: chat`), `mask` (the
loss mask shown before training) and `lora_card` (the adapter's card, base vs adapter answers).
Exports `TrainConfig` and `TrainingError`.
"""

from services.training.common import TrainingError
from services.training.config import TrainConfig

__all__ = ["TrainConfig", "TrainingError"]
