"""Fine-tuning with the Trainer: the config, the data, the run, the job, the metrics.

`config` (`TrainConfig`, the YAML a job runs), `policy` (what a visitor on a Space may set), `data` (the dataset
turned into model inputs), `train` (one training from a config), `run` (the Trainer, its callbacks and what it
writes), `jobs` (a training as a background child job: start, outputs, resume), `metrics` (accuracy, F1, ROUGE,
BLEU, ...). Exports `TrainConfig` and `TrainingError`.
"""

from services.training.common import TrainingError
from services.training.config import TrainConfig

__all__ = ["TrainConfig", "TrainingError"]
