"""The Pipelines tab: every core NLP task on any model. `tab` builds it; `form` (task, model and settings),
`run` (the callbacks), `view` (results as HTML), `batch` (a CSV as a job) beside it. Exports `build`.
"""

from tabs.pipelines.tab import build

__all__ = ["build"]
