"""Settings, read once from the environment.

- PLAYGROUND_HOME: where models, jobs and uploads are kept (default: /data/playground on a Space with
  persistent storage, else the user's cache dir).
- HF_HUB_OFFLINE: 1 = never reach the Hub (default: unset, and a quick probe of the Hub decides).
- PLAYGROUND_MODEL_MEMORY_MB: budget of the in-memory model cache (default: a third of RAM, at most 16 GiB).
- PLAYGROUND_MAX_UPLOAD_MB: the largest file a visitor may upload (default 50).
- PLAYGROUND_DEVICE: auto | cuda | mps | cpu (default auto: CUDA, then MPS, then CPU).
- PLAYGROUND_GPU_SLOTS: heavy jobs that may hold the GPU at once (default 1).
- PLAYGROUND_GPU_INFERENCE: interactive model runs on the GPU at once, tabs and REST API together (default 2;
  read by `services.core.gpu`).
- PLAYGROUND_ALLOW_LOCAL_PATHS: may visitors load models from any folder (default: yes locally, no on a Space).
- PLAYGROUND_CANCEL_GRACE_S: seconds a cancelled job gets to save before it is killed (default 30).
- PLAYGROUND_PACKS_DIR: where packaged models are converted to (default PLAYGROUND_HOME/packs).
- PLAYGROUND_ALLOW_REMOTE_CODE: may a load run the Python files a Hub repo ships (`trust_remote_code`) when the
  caller asks for it (default: yes locally, where it stays opt-in per load; no on a Space, for every visitor).
- PLAYGROUND_ALLOW_PICKLE: may a load read pickled weights (`*.bin`) when the caller allows them (same defaults).

Caps on inputs, jobs and concurrent work per visitor are in `services.core.limits`.

`get_settings()` caches the result; tests call `get_settings.cache_clear()` after changing the environment.
The Hub probe is lazy (`Settings.offline`), so importing or building the app never touches the network.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the app's own files (job processes start here)
_TRUE = {"1", "true", "yes", "on"}


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None or value.strip() == "" else value.strip().lower() in _TRUE


def _number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        logger.warning("Ignoring %s=%r: not a number; using %s", name, value, default)
        return default


def _default_home(on_space: bool) -> Path:
    # A Space with persistent storage mounts it at /data; anything else is lost on restart.
    if on_space and os.path.isdir("/data") and os.access("/data", os.W_OK):
        return Path("/data/playground")
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("hf-playground"))


def _total_ram_bytes() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except Exception:  # psutil missing or unreadable /proc: assume a small machine
        return 8 * 2**30


@dataclass
class Settings:
    """Process-wide settings. Build with `get_settings()`, not directly (except in tests)."""

    home: Path
    hub_offline_env: bool
    model_memory_bytes: int
    max_upload_bytes: int
    device: str
    gpu_slots: int
    allow_local_paths: bool
    cancel_grace_s: float
    space_id: str | None
    hub_endpoint: str
    packs_root: Path | None = None
    allow_remote_code: bool = True
    allow_pickle: bool = True
    _probe: bool | None = field(default=None, repr=False)
    _probe_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def on_space(self) -> bool:
        return self.space_id is not None

    @property
    def offline(self) -> bool:
        """True when the Hub must not or cannot be reached (HF_HUB_OFFLINE, or a failed probe)."""
        if self.hub_offline_env:
            return True
        with self._probe_lock:
            if self._probe is None:
                self._probe = not _hub_reachable(self.hub_endpoint)
                if self._probe:
                    logger.warning("The Hub at %s is unreachable: running offline", self.hub_endpoint)
            return self._probe

    # Folder layout under home, in one place so services agree on it.
    @property
    def packs_dir(self) -> Path:
        return self.packs_root or self.home / "packs"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def db_path(self) -> Path:
        return self.home / "playground.sqlite3"


def _hub_reachable(endpoint: str, timeout: float = 2.0) -> bool:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/api/whoami-v2", timeout=timeout):
            return True
    except urllib.error.HTTPError:
        return True  # 401 without a token still proves the Hub answered
    except Exception:
        return False


@functools.cache
def get_settings() -> Settings:
    """Read the environment once and return the settings (creating PLAYGROUND_HOME)."""
    space_id = os.environ.get("SPACE_ID") or None
    home_env = os.environ.get("PLAYGROUND_HOME", "").strip()
    home = Path(home_env).expanduser() if home_env else _default_home(space_id is not None)
    home.mkdir(parents=True, exist_ok=True)
    ram = _total_ram_bytes()
    default_budget_mb = min(ram // 3, 16 * 2**30) / 2**20
    settings = Settings(
        home=home.resolve(),
        hub_offline_env=_flag("HF_HUB_OFFLINE", False),
        model_memory_bytes=int(_number("PLAYGROUND_MODEL_MEMORY_MB", default_budget_mb) * 2**20),
        max_upload_bytes=int(_number("PLAYGROUND_MAX_UPLOAD_MB", 50) * 2**20),
        device=os.environ.get("PLAYGROUND_DEVICE", "auto").strip().lower() or "auto",
        gpu_slots=max(1, int(_number("PLAYGROUND_GPU_SLOTS", 1))),
        allow_local_paths=_flag("PLAYGROUND_ALLOW_LOCAL_PATHS", space_id is None),
        cancel_grace_s=_number("PLAYGROUND_CANCEL_GRACE_S", 30.0),
        space_id=space_id,
        hub_endpoint=os.environ.get("HF_ENDPOINT", "https://huggingface.co"),
        packs_root=Path(os.environ["PLAYGROUND_PACKS_DIR"]).expanduser()
        if os.environ.get("PLAYGROUND_PACKS_DIR")
        else None,
        allow_remote_code=_flag("PLAYGROUND_ALLOW_REMOTE_CODE", space_id is None),
        allow_pickle=_flag("PLAYGROUND_ALLOW_PICKLE", space_id is None),
    )
    logger.info("Settings: %s", settings)
    return settings
