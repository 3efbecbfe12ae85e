"""Shared by the API tests: two gradio_client sessions (two owners) and waiting for a job to finish."""

from __future__ import annotations

import time

import pytest
from gradio_client import Client


@pytest.fixture(scope="module")
def client(live_app):
    return Client(live_app["url"], verbose=False)


@pytest.fixture(scope="module")
def other_client(live_app):
    """A second session, hence a different owner."""
    return Client(live_app["url"], verbose=False)


def wait_job(client, job_id, timeout=120):
    """Poll /job until the job ends; fail the test if it does not end in time."""
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        job = client.predict(job_id, api_name="/job")
        if job["status"] in ("succeeded", "failed", "cancelled", "interrupted"):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")
