"""What a visitor's request may make the server do: run a model's own code, read pickles, touch the process.

On a public Space every visitor is untrusted. `trust_remote_code` (the Python files a Hub repo ships) and pickled
weights (which can hold code) are refused for everyone there unless the Space's operator turns them on
(PLAYGROUND_ALLOW_REMOTE_CODE, PLAYGROUND_ALLOW_PICKLE; see `services.core.config`); locally both stay opt-in per load.
Every loader calls `check_remote_code` / `check_pickle` with what the caller asked for, so the policy holds for
the UI, the API, the CLI and the job processes alike.

`harden_process()` makes the app's own process unreadable to the processes it starts (a job cannot read the
app's environment, and with it the Space's token, from ``/proc/<pid>/environ``).
"""

from __future__ import annotations

import logging
import sys

from services.core.config import get_settings
from services.core.errors import AccessDenied

logger = logging.getLogger(__name__)

REMOTE_CODE_REFUSED = (
    "Running code that comes with a model (trust_remote_code) is turned off on this Space, for everyone: "
    "pick a model that works with transformers as it is."
)
PICKLE_REFUSED = (
    "Loading pickled weights (*.bin), which can hide code, is turned off on this Space: pick a model that has "
    "safetensors weights."
)


def check_remote_code(requested: bool) -> None:
    """Refuse `trust_remote_code=True` where the operator has not allowed it."""
    if requested and not get_settings().allow_remote_code:
        raise AccessDenied(REMOTE_CODE_REFUSED)


def check_pickle(requested: bool) -> None:
    """Refuse `allow_pickle=True` where the operator has not allowed it."""
    if requested and not get_settings().allow_pickle:
        raise AccessDenied(PICKLE_REFUSED)


def harden_process() -> bool:
    """Linux: mark this process non-dumpable, so that its children (job processes, which run library code on a
    visitor's data) cannot read its memory or environment through /proc. Returns whether it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_dumpable = 4
        if libc.prctl(pr_set_dumpable, 0, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE) failed")
    except (OSError, AttributeError) as err:
        logger.warning("Could not make the app process unreadable to its children: %s", err)
        return False
    return True


def load_yaml(text: str):
    """YAML a visitor wrote, read with the safe loader and without aliases (``*name``): an alias bomb (the
    "billion laughs") would otherwise grow into gigabytes the moment the config is copied or stored."""
    import yaml

    class _NoAliases(yaml.SafeLoader):
        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                raise yaml.YAMLError("aliases such as *name are not accepted here; write the value out")
            return super().compose_node(parent, index)

    return yaml.load(text, Loader=_NoAliases)
