"""/clear_jobs through gradio_client (issue 14, item 14): the caller's finished jobs go, with their files; a job
still running stays, and another session's jobs are never touched."""

from __future__ import annotations

import threading

import pytest

from tests.api.conftest import wait_job

pytestmark = pytest.mark.api


def test_clear_jobs_removes_only_your_finished_jobs(client, other_client, live_app, tiny_models):
    manager = live_app["manager"]
    mine = client.predict(str(tiny_models["bert-ner"]), api_name="/prepare_model")
    theirs = other_client.predict(str(tiny_models["bert-ner"]), api_name="/prepare_model")
    assert wait_job(client, mine)["status"] == "succeeded"
    assert wait_job(other_client, theirs)["status"] == "succeeded"
    release = threading.Event()
    running = manager.submit("demo", manager.store.get(mine).owner, lambda ctx: release.wait(60) and None,
                             title="Still running")  # fmt: skip
    try:
        result = client.predict(api_name="/clear_jobs")
        assert result == {"cleared": 1, "ids": [mine]}
        assert [j["id"] for j in client.predict(api_name="/jobs")] == [running]
    finally:
        release.set()
    assert not (manager.jobs_dir / mine).exists()
    assert theirs in {j["id"] for j in other_client.predict(api_name="/jobs")}
    with pytest.raises(Exception, match="no job"):
        client.predict(mine, api_name="/job")


def test_clear_jobs_is_listed(client):
    assert "/clear_jobs" in client.view_api(print_info=False, return_format="dict")["named_endpoints"]
