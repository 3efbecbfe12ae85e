"""Test set-up shared by every layer: offline, a private PLAYGROUND_HOME, tiny models, a job manager.

The environment is fixed before any service reads its settings, so no test touches the Hub or the user's
real playground folder.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="playground-tests-"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PLAYGROUND_HOME"] = str(_SESSION_HOME / "home")
os.environ.setdefault("PLAYGROUND_PACKS_DIR", str(Path(__file__).resolve().parent.parent / ".playground" / "packs"))
os.environ["PLAYGROUND_CANCEL_GRACE_S"] = "5"
os.environ.pop("SPACE_ID", None)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def tiny_models() -> dict[str, Path]:
    from tests.tiny import build_tiny_models

    return build_tiny_models(_SESSION_HOME / "tiny-models")


@pytest.fixture
def settings(tmp_path, monkeypatch):
    """Fresh settings with PLAYGROUND_HOME in this test's own folder."""
    from services.config import get_settings

    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture
def manager(settings):
    from services.jobs import JobManager

    m = JobManager.from_settings()
    yield m
    m.shutdown(timeout=10)


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def live_app():
    """The real app, launched once on a free loopback port for the API and browser layers; yields its URL."""
    import app as app_module
    from services.config import get_settings
    from services.jobs import JobManager

    get_settings.cache_clear()
    manager = JobManager.from_settings()
    demo = app_module.build_app(manager)
    demo.queue(default_concurrency_limit=8)
    port = _free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **app_module.launch_kwargs()
    )
    yield {"url": f"http://127.0.0.1:{port}/", "manager": manager}
    manager.shutdown(timeout=10)
    demo.close()
