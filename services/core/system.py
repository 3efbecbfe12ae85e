"""What this machine offers: the device models run on, its dtype, and a one-line description for the header.

torch is imported inside the functions: the app shell must build without it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from services.core.config import get_settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # "cuda", "mps" or "cpu"
    dtype_name: str  # "bfloat16", "float16" or "float32"
    name: str  # human name, e.g. "NVIDIA H100 80GB HBM3" or "CPU (2 cores)"
    gpu_count: int

    @property
    def dtype(self):
        import torch

        return getattr(torch, self.dtype_name)


@functools.cache
def device_info() -> DeviceInfo:
    """Pick the device once: PLAYGROUND_DEVICE if set, else CUDA (bf16 where supported, else fp16), MPS, CPU fp32."""
    import os

    import torch

    wanted = get_settings().device
    gpu_count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if wanted in ("auto", "cuda") and gpu_count:
        dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return DeviceInfo("cuda", dtype, torch.cuda.get_device_name(0), gpu_count)
    mps = getattr(torch.backends, "mps", None)
    if wanted in ("auto", "mps") and mps is not None and mps.is_available():
        return DeviceInfo("mps", "float32", "Apple GPU (MPS)", 0)
    if wanted not in ("auto", "cpu"):
        logger.warning("PLAYGROUND_DEVICE=%s is not available here; using the CPU", wanted)
    return DeviceInfo("cpu", "float32", f"CPU ({os.cpu_count()} cores)", 0)


def describe() -> dict:
    """A JSON-friendly summary for the header and `python -m services info`."""
    settings = get_settings()
    info = device_info()
    return {
        "device": info.device,
        "device_name": info.name,
        "dtype": info.dtype_name,
        "gpu_count": info.gpu_count,
        "offline": settings.offline,
        "home": str(settings.home),
        "space_id": settings.space_id,
    }


# Where the kernel counts the processes it killed for lack of memory in this container (cgroup v2, then v1).
_OOM_FILES = ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control")
_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def oom_kills() -> int | None:
    """How many processes the out-of-memory killer has stopped in this container so far (None: not knowable)."""
    for path in _OOM_FILES:
        try:
            with open(path, encoding="ascii") as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def memory_limit_bytes() -> int:
    """The memory this container may use: its cgroup limit when it has one, else the machine's RAM."""
    import psutil

    total = int(psutil.virtual_memory().total)
    for path in _LIMIT_FILES:
        try:
            with open(path, encoding="ascii") as handle:
                text = handle.read().strip()
        except OSError:
            continue
        if text.isdigit():
            return min(total, int(text))
    return total
