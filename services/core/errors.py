"""User-facing errors: each carries one sentence a non-coder understands.

The tabs turn a `PlaygroundError` into `gr.Error(str(err))`; the CLI prints it and exits with status 2.
Anything that is not a `PlaygroundError` is a bug: it is logged with its traceback and the user sees a
generic sentence.
"""


class PlaygroundError(Exception):
    """Base class for errors whose message is written for the person using the app."""


class ModelNotFound(PlaygroundError):
    """The id names no catalog entry, trained model, folder or Hub repository."""


class ModelUnavailable(PlaygroundError):
    """The model exists but cannot be used now (offline, not downloaded, package missing)."""


class NotAModel(PlaygroundError):
    """A folder or repository that holds no loadable model."""


class UnsafeWeights(PlaygroundError):
    """Only pickled weights are present and the user has not allowed them."""


class CorruptWeights(PlaygroundError):
    """A weights file exists but cannot be read."""


class TaskMismatch(PlaygroundError):
    """The model cannot do the task asked of it."""


class JobNotFound(PlaygroundError):
    """No job with this id belongs to the caller (it may belong to someone else)."""


class AccessDenied(PlaygroundError):
    """The caller asked for something that belongs to someone else."""
