"""Settings from the environment, the lazy Hub probe, owners, and how child jobs are launched."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.core import config
from services.core.owners import owner_dir, owner_key, safe_name
from services.jobs import child as jobs_child
from services.jobs import manager as jobs


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("PLAYGROUND_MODEL_MEMORY_MB", "512")
    monkeypatch.setenv("PLAYGROUND_MAX_UPLOAD_MB", "5")
    monkeypatch.setenv("PLAYGROUND_GPU_SLOTS", "2")
    monkeypatch.setenv("PLAYGROUND_DEVICE", "CPU")
    monkeypatch.setenv("SPACE_ID", "someone/playground")
    config.get_settings.cache_clear()
    try:
        s = config.get_settings()
        assert s.home == (tmp_path / "h").resolve() and s.home.is_dir()
        assert s.model_memory_bytes == 512 * 2**20 and s.max_upload_bytes == 5 * 2**20
        assert s.gpu_slots == 2 and s.device == "cpu"
        assert s.on_space and not s.allow_local_paths, "a public Space never loads arbitrary server folders"
        assert s.db_path.parent == s.home
    finally:
        config.get_settings.cache_clear()


def test_a_bad_number_falls_back_to_the_default(monkeypatch, settings):
    monkeypatch.setenv("PLAYGROUND_MAX_UPLOAD_MB", "lots")
    config.get_settings.cache_clear()
    assert config.get_settings().max_upload_bytes == 50 * 2**20


def test_offline_probe_runs_once_and_only_when_asked(monkeypatch, settings):
    calls = []
    monkeypatch.setattr(config, "_hub_reachable", lambda endpoint, timeout=2.0: calls.append(endpoint) or False)
    s = config.Settings(**{**settings.__dict__, "hub_offline_env": False, "_probe": None})
    assert calls == [], "building settings never touches the network"
    assert s.offline and s.offline
    assert len(calls) == 1


def test_owner_keys_are_stable_and_safe(tmp_path):
    assert owner_key("anon:abc") == owner_key("anon:abc") != owner_key("anon:abd")
    assert owner_dir(tmp_path, "hf:../../etc").parent == tmp_path
    assert safe_name("../../etc/passwd") == "etc_passwd"
    assert safe_name("Ünïcode résumé.txt") == "Unicode-resume.txt"
    assert safe_name("...") == "item"
    with pytest.raises(ValueError):
        owner_key("")


@pytest.mark.parametrize(("gpus", "accelerate"), [(0, False), (1, False), (4, True)])
def test_child_jobs_use_accelerate_only_with_several_gpus(monkeypatch, gpus, accelerate):
    monkeypatch.setattr(jobs_child, "_gpu_count", lambda: gpus)
    command = jobs.launcher_command("services", ["train", "job.yaml"])
    assert command[-3:] == ["services", "train", "job.yaml"]
    assert ("accelerate.commands.launch" in command) == accelerate
    if accelerate:
        assert command[command.index("--num_processes") + 1] == "4"


def test_owner_of_prefers_account_then_cookie_then_session():
    from tabs.session import OWNER_COOKIE, owner_of

    request = SimpleNamespace(cookies={OWNER_COOKIE: "x" * 43}, session_hash="s1")
    assert owner_of(request, SimpleNamespace(username="alice")) == "hf:alice"
    by_cookie = owner_of(request, None)
    assert by_cookie.startswith("anon:") and "x" * 43 not in by_cookie, "the cookie itself is never the id"
    assert owner_of(SimpleNamespace(cookies={}, session_hash="s1"), None).startswith("session:")
    assert owner_of(SimpleNamespace(cookies={OWNER_COOKIE: "short"}, session_hash="s1"), None).startswith("session:")


@pytest.mark.parametrize("secure", [False, True])
def test_the_page_sets_an_owner_cookie_once(secure):
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from tabs.session import OWNER_COOKIE, OwnerCookieMiddleware

    app = Starlette(
        routes=[Route("/", lambda r: PlainTextResponse("page")), Route("/api", lambda r: PlainTextResponse("x"))],
        middleware=[Middleware(OwnerCookieMiddleware, secure=secure)],
    )
    client = TestClient(app, base_url="https://testserver")
    first = client.get("/")
    assert first.status_code == 200
    header = first.headers["set-cookie"]
    assert header.startswith(f"{OWNER_COOKIE}=") and "HttpOnly" in header
    assert ("Partitioned" in header and "Secure" in header and "SameSite=None" in header) == secure
    assert "set-cookie" not in client.get("/api").headers, "only the page sets it"
    assert "set-cookie" not in client.get("/").headers, "a browser that has one keeps it"
