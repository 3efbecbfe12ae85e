"""The Fine-tune tab: data, settings, a training job, live curves and results. `tab` builds it; `data` (the
data preview) and `view` (charts and reports) beside it. Exports `build`.
"""

from tabs.finetune.tab import build

__all__ = ["build"]
