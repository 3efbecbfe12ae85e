"""Whether a push to the Hub can start now. While the playground is offline a push is refused up front, with one
sentence, so it never starts as a job that can only fail."""

from __future__ import annotations

from services.core.config import get_settings
from services.hub.push import PushError

OFFLINE = (
    "Pushing is off: the playground is offline (it cannot reach the Hugging Face Hub). Everything you made is kept "
    "here; push it once the playground is online again."
)


def offline_reason() -> str | None:
    """The sentence that says why nothing can be pushed now, or None when the Hub can be reached."""
    return OFFLINE if get_settings().offline else None


def check_online() -> None:
    """Raise `PushError` with the offline sentence when a push could not reach the Hub."""
    if get_settings().offline:
        raise PushError(OFFLINE)
