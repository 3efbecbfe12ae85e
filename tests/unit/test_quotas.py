"""Per-visitor quotas and fair shares (issue 13, item 5): jobs waiting or running per owner, worker slots handed out
owner by owner, a time limit per job, one model run at a time per visitor, and a job's share of the database."""

from __future__ import annotations

import threading
import time

import pytest

from services.core.limits import LimitExceeded, get_limits, run_gate
from services.jobs.manager import MAX_LOG_LINES, JobManager
from services.jobs.slots import FairSlots
from tests.unit.test_jobs import wait_for

GREEDY, OTHER = "anon:greedy", "anon:other"


def blocking(gate: threading.Event, started: list | None = None):
    def work(ctx):
        if started is not None:
            started.append(ctx.job_id)
        while not gate.is_set():
            ctx.check_cancelled()
            time.sleep(0.02)
        return {"ok": True}

    return work


@pytest.fixture
def quota_manager(settings):
    m = JobManager(settings.db_path, settings.jobs_dir, job_slots=1, jobs_per_owner=3)
    yield m
    m.shutdown(timeout=10)


def test_a_visitor_may_have_three_jobs_waiting_or_running(quota_manager):
    gate = threading.Event()
    ids = [quota_manager.submit("demo", GREEDY, blocking(gate), title=f"j{i}") for i in range(3)]
    with pytest.raises(LimitExceeded, match=r"the most one visitor may have at once \(3\)"):
        quota_manager.submit("demo", GREEDY, blocking(gate), title="one too many")
    other = quota_manager.submit("demo", OTHER, blocking(gate), title="someone else")  # others are not affected
    gate.set()
    assert [quota_manager.wait(i, timeout=20).status for i in [*ids, other]] == ["succeeded"] * 4
    assert quota_manager.submit("demo", GREEDY, blocking(gate), title="after")  # finished jobs free the quota


def test_the_quota_holds_when_many_requests_arrive_at_once(quota_manager):
    gate = threading.Event()
    accepted, refused = [], []

    def submit():
        try:
            accepted.append(quota_manager.submit("demo", GREEDY, blocking(gate), title="burst"))
        except LimitExceeded:
            refused.append(1)

    threads = [threading.Thread(target=submit) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 3 and len(refused) == 9
    gate.set()
    for job_id in accepted:
        quota_manager.wait(job_id, timeout=20)


def test_one_worker_slot_runs_one_job_and_others_wait_saying_so(quota_manager):
    gate, started = threading.Event(), []
    first = quota_manager.submit("demo", GREEDY, blocking(gate, started), title="first")
    wait_for(lambda: quota_manager.get(first, GREEDY).status == "running")
    second = quota_manager.submit("demo", GREEDY, blocking(gate, started), title="second")
    wait_for(lambda: "Waiting for a free worker" in quota_manager.get(second, GREEDY).message)
    assert quota_manager.get(second, GREEDY).status == "queued" and started == [first]
    gate.set()
    assert quota_manager.wait(second, timeout=20).status == "succeeded"


def test_a_free_slot_goes_to_the_visitor_holding_none(quota_manager):
    """The greedy visitor queued two jobs before the other visitor's one; the other still goes next."""
    gate, started = threading.Event(), []
    first = quota_manager.submit("demo", GREEDY, blocking(gate, started), title="g1")
    wait_for(lambda: started == [first])
    g2 = quota_manager.submit("demo", GREEDY, blocking(gate, started), title="g2")
    g3 = quota_manager.submit("demo", GREEDY, blocking(gate, started), title="g3")
    time.sleep(0.2)
    other = quota_manager.submit("demo", OTHER, blocking(gate, started), title="o1")
    gate.set()
    for job_id in (g2, g3, other):
        quota_manager.wait(job_id, timeout=20)
    assert started[1] == other, started


def test_fair_slots_order_by_held_slots_then_arrival():
    slots = FairSlots(1)
    slots.held.update({"a": 1})
    slots.waiting = [("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c")]
    assert slots._order() == ["b1", "c1", "a2", "a3"]


def test_pushes_do_not_wait_for_a_worker(quota_manager):
    gate = threading.Event()
    busy = quota_manager.submit("demo", GREEDY, blocking(gate), title="busy")
    wait_for(lambda: quota_manager.get(busy, GREEDY).status == "running")
    push = quota_manager.submit("push", OTHER, lambda ctx: {"pushed": True}, title="push")
    assert quota_manager.wait(push, timeout=20).status == "succeeded"
    gate.set()


def test_a_job_past_its_time_limit_is_stopped_and_says_why(settings):
    manager = JobManager(settings.db_path, settings.jobs_dir, job_seconds=0.5)
    try:
        job_id = manager.submit("demo", GREEDY, blocking(threading.Event()), title="forever")
        record = manager.wait(job_id, timeout=20)
        assert record.status == "failed" and "the longest a job may run here" in record.error
    finally:
        manager.shutdown(timeout=5)


def test_a_child_job_past_its_time_limit_is_stopped(settings):
    manager = JobManager(settings.db_path, settings.jobs_dir, job_seconds=1.0, cancel_grace_s=2)
    try:
        job_id = manager.submit_command(
            "demo", GREEDY, ["--steps", "1000", "--sleep", "0.05"], title="child", module="tests.child_worker"
        )
        record = manager.wait(job_id, timeout=30)
        assert record.status == "failed" and "the longest a job may run here" in record.error
        assert (manager.jobs_dir / job_id / "checkpoint.txt").exists(), "it got to save, as on Cancel"
    finally:
        manager.shutdown(timeout=5)


def test_from_settings_applies_the_limits(settings, monkeypatch):
    for name, value in {"PLAYGROUND_MAX_JOBS_PER_VISITOR": "2", "PLAYGROUND_JOB_SLOTS": "3",
                        "PLAYGROUND_MAX_JOB_MINUTES": "7"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    get_limits.cache_clear()
    try:
        manager = JobManager.from_settings(recover=False)
        assert (manager.jobs_per_owner, manager._workers.slots, manager.job_seconds) == (2, 3, 420)
    finally:
        get_limits.cache_clear()


def test_a_space_stops_jobs_after_two_hours_by_default(monkeypatch):
    monkeypatch.setenv("SPACE_ID", "someone/playground")
    monkeypatch.delenv("PLAYGROUND_MAX_JOB_MINUTES", raising=False)
    get_limits.cache_clear()
    try:
        assert get_limits().job_minutes == 120
    finally:
        get_limits.cache_clear()


def test_one_model_run_at_a_time_per_visitor(monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MAX_GENERATIONS_PER_VISITOR", "1")
    get_limits.cache_clear()
    try:
        gate = run_gate()
        with gate.hold(GREEDY):
            with pytest.raises(LimitExceeded, match="press Stop"), gate.hold(GREEDY):
                pass
            with gate.hold(OTHER):  # another visitor is not held back
                pass
        with gate.hold(GREEDY):  # released when the first run ended
            pass
    finally:
        get_limits.cache_clear()


def test_a_chatty_job_keeps_a_bounded_share_of_the_database(manager):
    assert manager.max_log_lines == MAX_LOG_LINES
    manager.max_log_lines = 40

    def chatty(ctx):
        for i in range(100):
            ctx.log(f"line {i}")

    job_id = manager.submit("demo", GREEDY, chatty, title="chatty")
    assert manager.wait(job_id, timeout=60).status == "succeeded"
    lines = manager.logs(job_id, GREEDY, tail=1000)
    assert len(lines) == 41 and lines[-2] == "line 39" and "the rest are not shown" in lines[-1]


def test_job_processes_run_below_the_app_in_cpu_priority(manager, monkeypatch):
    """A greedy visitor's jobs yield the CPU to everyone's pages and API calls: SCHED_IDLE by default, or a nice
    value (PLAYGROUND_JOB_PRIORITY)."""
    import os

    def started_with(priority: str) -> list[str]:
        monkeypatch.setenv("PLAYGROUND_JOB_PRIORITY", priority)
        get_limits.cache_clear()
        job_id = manager.submit_command("demo", GREEDY, ["--steps", "1", "--print-nice"], title="nice",
                                        module="tests.child_worker")  # fmt: skip
        manager.wait(job_id, timeout=60)
        return [line for line in manager.logs(job_id, GREEDY) if line.startswith(("niceness", "policy"))]

    try:
        assert started_with("idle") == [f"niceness {os.nice(0)}", f"policy {os.SCHED_IDLE}"]
        assert started_with("12") == [f"niceness {max(12, os.nice(0))}", f"policy {os.SCHED_OTHER}"]
    finally:
        get_limits.cache_clear()
