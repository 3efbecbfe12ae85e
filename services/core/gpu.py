"""One GPU lane for interactive inference, shared by the tabs and the REST API.

On a CUDA device a model run (a pipeline call, a generation, an embeddings batch, a forward pass of Inside a model)
holds one of `PLAYGROUND_GPU_INFERENCE` places (default 2, the tabs' "inference" concurrency limit) while it
computes. The REST API does not pass through Gradio's queue, so without this its clients would run beside the
tabs' visitors and fill the GPU's memory; with it they wait for the same places, first come first served. The lane
is re-entrant per thread (a similarity run that embeds inside holds one place), and is taken before a model's own
`busy` lock, always in that order, so two runs never wait on each other crosswise. On a CPU nothing is held: the
CPU shares itself through `services.core.limits.courtesy`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Iterator

_held = threading.local()


@functools.cache
def _places() -> threading.BoundedSemaphore:
    try:
        count = max(1, int(os.environ.get("PLAYGROUND_GPU_INFERENCE", "2")))
    except ValueError:
        count = 2
    return threading.BoundedSemaphore(count)


@contextlib.contextmanager
def lane(device: str) -> Iterator[None]:
    """Hold a place of the GPU lane while the block runs, when `device` is a CUDA device (else hold nothing)."""
    depth = getattr(_held, "depth", 0)
    if not str(device).startswith("cuda") or depth:
        _held.depth = depth + (1 if depth else 0)
        try:
            yield
        finally:
            _held.depth = depth
        return
    places = _places()
    places.acquire()
    _held.depth = 1
    try:
        yield
    finally:
        _held.depth = 0
        places.release()
