"""The HTTP guard in front of Gradio (issue 13, items 4 and 5): oversized bodies and over-rate visitors are answered
before Gradio reads anything; a visitor whose requests the app refuses for caps or quotas spends their allowance
faster; quick runs and long generations share the CPU (`services.core.limits.courtesy`)."""

from __future__ import annotations

import threading
import time

import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from services.core.limits import courtesy, get_limits
from tabs import guard

COOKIE = {"cookie": f"{guard.OWNER_COOKIE}={'a' * 43}"}


@pytest.fixture
def client(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_REQUESTS_PER_S", "2")  # bursts of 10
    monkeypatch.setenv("PLAYGROUND_MAX_REQUEST_MB", "1")
    get_limits.cache_clear()
    guard.buckets.cache_clear()
    seen = []

    async def endpoint(request):
        seen.append(len(await request.body()))
        return JSONResponse({"event_id": "x"})

    app = Starlette(routes=[Route("/gradio_api/queue/join", endpoint, methods=["POST"]),
                            Route("/gradio_api/upload", endpoint, methods=["POST"]),
                            Route("/", lambda r: JSONResponse({}), methods=["GET"])])  # fmt: skip
    with TestClient(guard.RequestGuard(app)) as test_client:
        test_client.seen = seen
        yield test_client
    get_limits.cache_clear()
    guard.buckets.cache_clear()


def test_a_body_over_the_cap_is_refused_unread(client):
    response = client.post("/gradio_api/queue/join", content=b"x" * (2 * 2**20), headers=COOKIE)
    assert response.status_code == 413 and "up to 1 MB" in response.json()["error"]
    assert client.seen == []
    assert client.post("/gradio_api/queue/join", content=b"{}", headers=COOKIE).status_code == 200


def test_a_visitor_over_the_rate_gets_429_and_others_do_not(client):
    codes = [client.post("/gradio_api/queue/join", content=b"{}", headers=COOKIE).status_code for _ in range(14)]
    assert codes[:10] == [200] * 10 and 429 in codes[10:]
    other = {"cookie": f"{guard.OWNER_COOKIE}={'b' * 43}"}
    assert client.post("/gradio_api/queue/join", content=b"{}", headers=other).status_code == 200
    assert all(client.get("/").status_code == 200 for _ in range(20)), "pages and assets are not counted"


def test_uploads_over_the_hourly_allowance_get_429(client, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_UPLOAD_MB_PER_HOUR", "1")
    get_limits.cache_clear()
    body = b"x" * (600 * 2**10)
    assert client.post("/gradio_api/upload", content=body, headers=COOKIE).status_code == 200
    second = client.post("/gradio_api/upload", content=body, headers=COOKIE)
    assert second.status_code == 429 and "wait" in second.json()["error"]
    other = {"cookie": f"{guard.OWNER_COOKIE}={'b' * 43}"}
    assert client.post("/gradio_api/upload", content=body, headers=other).status_code == 200


def test_refusals_spend_the_allowance_faster(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_REQUESTS_PER_S", "4")  # bursts of 20: two refusals spend them
    get_limits.cache_clear()
    guard.buckets.cache_clear()
    scope = {"headers": [(b"cookie", COOKIE["cookie"].encode())], "client": ("10.0.0.1", 1)}
    key = guard.visitor_key(scope)

    class Request:
        request = type("Inner", (), {"scope": scope})()

    for _ in range(get_limits().requests_burst // guard.REFUSAL_COST):
        assert guard.buckets().request(key)
        guard.penalize(Request())
    assert not guard.buckets().request(key)
    guard.buckets.cache_clear()
    get_limits.cache_clear()


def test_without_a_cookie_a_visitor_is_their_address_and_on_a_space_the_proxys_last_hop(monkeypatch):
    from services.core.config import get_settings

    scope = {"headers": [(b"x-forwarded-for", b"6.6.6.6, 1.2.3.4")], "client": ("10.0.0.9", 5)}
    assert guard.visitor_key(scope) == "ip:10.0.0.9"
    monkeypatch.setenv("SPACE_ID", "someone/playground")
    get_settings.cache_clear()
    try:
        assert guard.visitor_key(scope) == "ip:1.2.3.4"  # the first entry is whatever the client wrote
    finally:
        get_settings.cache_clear()


def test_a_generation_steps_aside_while_a_quick_run_is_in_progress():
    gate = courtesy()
    with gate.quick():
        started = time.monotonic()
        gate.step_aside()
        assert time.monotonic() - started >= gate.max_pause * 0.9
    started = time.monotonic()
    gate.step_aside()
    assert time.monotonic() - started < gate.max_pause / 2, "nothing quick running: no pause"


def test_quick_runs_and_generations_split_the_cores(monkeypatch):
    import os

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    gate = type(courtesy())()
    with gate.quick() as alone:
        assert alone == 4
    assert gate.threads() == 2, "just after a quick run, a generation keeps to half"
    done = threading.Event()

    def generation():
        with gate.long():
            done.wait(5)

    worker = threading.Thread(target=generation)
    worker.start()
    time.sleep(0.05)
    with gate.quick() as shared:
        assert shared == 2
    done.set()
    worker.join()
