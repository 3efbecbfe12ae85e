"""The job engine: lifecycle, cancel, failure, restart recovery, ownership, GPU-slot queueing, child processes."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from services.core.errors import JobNotFound, PlaygroundError
from services.jobs.manager import JobCancelled, JobManager, redact
from services.jobs.store import JobRecord

ALICE, BOB = "anon:alice", "anon:bob"


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def counting_work(steps=5, sleep=0.01):
    def work(ctx):
        for i in range(steps):
            ctx.check_cancelled()
            time.sleep(sleep)
            ctx.log(f"step {i}")
            ctx.metrics({"loss": 1 / (i + 1)}, step=i)
            ctx.progress((i + 1) / steps, f"step {i + 1}")
        ctx.artifact(ctx.workdir / "out.txt", kind="file")
        return {"answer": 42}

    return work


def test_in_process_job_succeeds_with_progress_logs_metrics(manager):
    job_id = manager.submit("demo", ALICE, counting_work(), title="Count")
    record = manager.wait(job_id, timeout=20)
    assert record.status == "succeeded" and record.progress == 1.0
    assert record.result == {"answer": 42}
    assert record.metrics == {"loss": 0.2}
    assert record.artifacts[0]["kind"] == "file"
    assert manager.logs(job_id, ALICE) == [f"step {i}" for i in range(5)]
    curve = manager.events(job_id, ALICE, types=("metrics",))
    assert [e["values"]["loss"] for e in curve] == [1, 0.5, 1 / 3, 0.25, 0.2]
    assert record.started_at <= record.finished_at


def test_failure_is_recorded_and_the_manager_keeps_working(manager):
    def boom(ctx):
        ctx.log("about to fail")
        raise RuntimeError("disk on fire")

    failed = manager.wait(manager.submit("demo", ALICE, boom, title="Boom"), timeout=20)
    assert failed.status == "failed" and "disk on fire" in failed.error
    assert any("RuntimeError" in line for line in manager.logs(failed.id, ALICE))
    ok = manager.wait(manager.submit("demo", ALICE, counting_work(2), title="After"), timeout=20)
    assert ok.status == "succeeded"


def test_user_error_keeps_its_plain_sentence(manager):
    def bad(ctx):
        raise PlaygroundError("The file has no column called 'text'.")

    record = manager.wait(manager.submit("demo", ALICE, bad, title="Bad"), timeout=20)
    assert record.status == "failed" and record.error == "The file has no column called 'text'."


def test_cancel_is_graceful(manager):
    saved = threading.Event()

    def long_work(ctx):
        while not ctx.cancelled:
            time.sleep(0.02)
        saved.set()  # the work gets to save before it ends
        return {"saved": True}

    job_id = manager.submit("demo", ALICE, long_work, title="Long")
    wait_for(lambda: manager.get(job_id, ALICE).status == "running")
    manager.cancel(job_id, ALICE)
    record = manager.wait(job_id, timeout=20)
    assert record.status == "cancelled" and saved.is_set() and record.result == {"saved": True}


def test_check_cancelled_ends_as_cancelled(manager):
    def work(ctx):
        while True:
            ctx.check_cancelled()
            time.sleep(0.02)

    job_id = manager.submit("demo", ALICE, work, title="Loop")
    wait_for(lambda: manager.get(job_id, ALICE).status == "running")
    manager.cancel(job_id, ALICE)
    assert manager.wait(job_id, timeout=20).status == "cancelled"
    with pytest.raises(JobCancelled):
        raise JobCancelled()


def test_cancelling_a_finished_job_changes_nothing(manager):
    job_id = manager.submit("demo", ALICE, counting_work(1), title="Quick")
    manager.wait(job_id, timeout=20)
    assert manager.cancel(job_id, ALICE).status == "succeeded"


def test_owners_never_see_each_others_jobs(manager):
    job_id = manager.submit("demo", ALICE, counting_work(1), title="Private")
    manager.wait(job_id, timeout=20)
    assert [r.id for r in manager.list(ALICE)] == [job_id]
    assert manager.list(BOB) == []
    for call in (manager.get, manager.logs, manager.events, manager.cancel):
        with pytest.raises(JobNotFound):
            call(job_id, BOB)
    assert manager.get(job_id, ALICE).status == "succeeded"


def test_gpu_jobs_queue_for_the_single_slot(manager):
    gate = threading.Event()
    order = []

    def gpu_work(name):
        def work(ctx):
            order.append(name)
            if name == "first":
                gate.wait(10)
            return None

        return work

    first = manager.submit("train", ALICE, gpu_work("first"), title="first", needs_gpu=True)
    wait_for(lambda: manager.get(first, ALICE).status == "running")
    second = manager.submit("train", ALICE, gpu_work("second"), title="second", needs_gpu=True)
    third = manager.submit("train", BOB, gpu_work("third"), title="third", needs_gpu=True)
    cpu = manager.submit("demo", ALICE, counting_work(1), title="cpu job")
    assert manager.wait(cpu, timeout=20).status == "succeeded", "CPU jobs do not wait for the GPU"
    time.sleep(0.3)
    assert manager.get(second, ALICE).status == "queued"
    assert "Waiting for the GPU" in manager.get(second, ALICE).message
    manager.cancel(third, BOB)  # a queued job can leave the line
    assert manager.wait(third, timeout=20).status == "cancelled"
    gate.set()
    assert manager.wait(second, timeout=20).status == "succeeded"
    assert order == ["first", "second"]


def test_two_gpu_slots_run_two_jobs_at_once(settings):
    manager = JobManager(settings.db_path, settings.jobs_dir, gpu_slots=2)
    running = []
    barrier = threading.Barrier(2, timeout=10)

    def work(ctx):
        running.append(ctx.job_id)
        barrier.wait()  # only passes when both run at the same time

    ids = [manager.submit("train", ALICE, work, title=f"t{i}", needs_gpu=True) for i in range(2)]
    assert [manager.wait(i, timeout=20).status for i in ids] == ["succeeded", "succeeded"]


def test_many_concurrent_jobs_all_finish(manager):
    ids = [manager.submit("demo", ALICE if i % 2 else BOB, counting_work(3, 0.005), title=f"j{i}") for i in range(20)]
    statuses = [manager.wait(i, timeout=30).status for i in ids]
    assert statuses == ["succeeded"] * 20
    assert len(manager.list(ALICE)) == 10 and len(manager.list(BOB)) == 10


def test_restart_marks_orphaned_jobs_interrupted(settings):
    manager = JobManager.from_settings()
    dead = JobRecord(
        id="deadjob00001",
        kind="train",
        owner=ALICE,
        title="Was running",
        config={},
        status="running",
        manager="999999:1.00",
    )
    queued = JobRecord(
        id="deadjob00002",
        kind="train",
        owner=ALICE,
        title="Was queued",
        config={},
        status="queued",
        manager="999999:1.00",
    )
    live = JobRecord(
        id="livejob00001",
        kind="train",
        owner=ALICE,
        title="Ours",
        config={},
        status="running",
        manager=manager.identity,
    )
    for record in (dead, queued, live):
        manager.store.create(record)
    restarted = JobManager.from_settings()
    assert set(restarted.recovered) == {"deadjob00001", "deadjob00002"}
    after = restarted.get("deadjob00001", ALICE)
    assert after.status == "interrupted" and "restarted" in after.error
    assert restarted.get("livejob00001", ALICE).status == "running", "a live manager's jobs are left alone"


def test_records_survive_a_restart(settings):
    first = JobManager.from_settings()
    job_id = first.submit("demo", ALICE, counting_work(2), title="Durable")
    first.wait(job_id, timeout=20)
    again = JobManager.from_settings()
    record = again.get(job_id, ALICE)
    assert record.status == "succeeded" and again.logs(job_id, ALICE) == ["step 0", "step 1"]


def test_secrets_never_reach_the_records(manager, settings):
    token = "hf_abcdefghijklmnopqrstuvwxyz123456"

    def work(ctx):
        ctx.log(f"using {token}")
        return {"token": token}

    job_id = manager.submit("demo", ALICE, work, title="Secret", config={"hf_token": token, "note": token})
    manager.wait(job_id, timeout=20)
    with sqlite3.connect(settings.db_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert token not in dump
    assert redact({"a": [token], "password": "x"}) == {"a": ["hf_***"], "password": "***"}


# ---- child-process jobs --------------------------------------------------------------------------------------


def child(manager, owner=ALICE, **flags):
    args = []
    for key, value in flags.items():
        args += [f"--{key.replace('_', '-')}"] + ([] if value is True else [str(value)])
    return manager.submit_command(
        "demo",
        owner,
        args,
        title="child",
        module="tests.child_worker",
        env={"HF_TOKEN": "hf_childsecretchildsecret1234"},
    )


def test_child_job_events_become_progress_metrics_and_logs(manager, settings):
    job_id = child(manager, steps=4, sleep=0.02)
    record = manager.wait(job_id, timeout=60)
    assert record.status == "succeeded", record.error
    assert record.progress == 1.0 and record.result == {"steps": 4} and record.metrics == {"loss": 0.25}
    logs = manager.logs(job_id, ALICE)
    assert "plain output from a library" in logs
    assert not any("hf_childsecret" in line for line in logs), "a token printed by the child is masked"
    output = (settings.jobs_dir / job_id / "output.log").read_text()
    assert "plain output" in output and "hf_childsecret" not in output
    assert record.command[1:3] == ["-m", "tests.child_worker"]
    assert len(manager.events(job_id, ALICE, types=("metrics",))) == 4


def test_child_failure_reports_its_error_event(manager):
    record = manager.wait(child(manager, steps=5, fail_at=2), timeout=60)
    assert record.status == "failed" and record.error == "step 2 went wrong on purpose"


def test_a_child_killed_from_outside_is_not_blamed_on_memory(manager):
    """SIGKILL with no out-of-memory kill counted by the kernel: someone stopped it (issue 13, item 7)."""
    record = manager.wait(child(manager, steps=5, die_at=2), timeout=60)
    assert record.status == "failed" and "stopped from outside" in record.error
    assert "memory" not in record.error


def test_a_child_killed_by_the_oom_killer_is_explained(manager, monkeypatch):
    from services.core import system

    counts = iter([3, 4])  # the kernel's oom_kill counter, before and after the job
    monkeypatch.setattr(system, "oom_kills", lambda: next(counts))
    record = manager.wait(child(manager, steps=5, die_at=2), timeout=60)
    assert record.status == "failed" and "ran out of memory" in record.error


def test_child_cancel_lets_it_save_a_checkpoint(manager):
    job_id = child(manager, steps=1000, sleep=0.05)
    wait_for(lambda: manager.get(job_id, ALICE).progress > 0)
    manager.cancel(job_id, ALICE)
    record = manager.wait(job_id, timeout=60)
    assert record.status == "cancelled"
    assert record.artifacts and record.artifacts[0]["kind"] == "checkpoint"
    assert "cancel received: checkpoint saved" in manager.logs(job_id, ALICE)


def test_child_that_ignores_sigterm_is_killed_after_the_grace_period(settings):
    manager = JobManager(settings.db_path, settings.jobs_dir, cancel_grace_s=1.0)
    job_id = child(manager, steps=1000, sleep=0.05, ignore_term=True)
    wait_for(lambda: manager.get(job_id, ALICE).progress > 0)
    started = time.monotonic()
    manager.cancel(job_id, ALICE)
    record = manager.wait(job_id, timeout=60)
    assert record.status == "cancelled" and time.monotonic() - started < 30


# ---- hardening (found in review) ------------------------------------------------------------------------------


def test_settings_that_mention_tokens_are_not_secrets(manager):
    seen = {}

    def work(ctx):
        seen.update(ctx.config)
        return {"tokens_per_s": 10.5}

    config = {"max_new_tokens": 128, "tokenizer": "bert", "pad_token_id": 0, "hf_token": "hf_abcdefghijklmnop"}
    job_id = manager.submit("demo", ALICE, work, title="Settings", config=config)
    record = manager.wait(job_id, timeout=20)
    assert seen == config, "the work gets the config as given"
    assert record.config == {"max_new_tokens": 128, "tokenizer": "bert", "pad_token_id": 0, "hf_token": "***"}
    assert record.result == {"tokens_per_s": 10.5}


def test_space_oauth_tokens_are_masked_too():
    from services.jobs.manager import mask

    assert mask("Bearer hf_oauth_AbCdEfGhIjKlMnOpQrSt") == "Bearer hf_***"


def test_malformed_child_events_become_log_lines(manager):
    record = manager.wait(child(manager, steps=2, bad_events=True), timeout=60)
    assert record.status == "succeeded", record.error
    logs = "\n".join(manager.logs(record.id, ALICE))
    assert "ignored malformed progress event" in logs and "ignored event" in logs


def test_a_grandchild_holding_the_output_pipe_does_not_hang_the_job(manager):
    record = manager.wait(child(manager, orphan=True), timeout=60)
    assert record.status == "succeeded" and record.result == {"orphaned": True}


def test_a_finished_status_is_never_overwritten(manager):
    gate = threading.Event()
    job_id = manager.submit("demo", ALICE, lambda ctx: gate.wait(10), title="Slow")
    wait_for(lambda: manager.get(job_id, ALICE).status == "running")
    manager.store.update(job_id, status="interrupted")  # another manager decided first
    gate.set()
    assert manager.wait(job_id, timeout=20).status == "interrupted"


def test_the_latest_progress_message_is_kept(manager):
    def work(ctx):
        ctx.progress(0.05, "Reading the configuration")
        ctx.progress(0.15, "Loading the tokenizer")
        ctx.progress(0.35, "Loading the weights")
        gate.wait(10)

    gate = threading.Event()
    job_id = manager.submit("demo", ALICE, work, title="Messages")
    wait_for(lambda: manager.get(job_id, ALICE).message == "Loading the weights")
    gate.set()
    manager.wait(job_id, timeout=20)


def test_read_only_managers_leave_running_jobs_alone(settings):
    first = JobManager.from_settings()
    orphan = JobRecord(
        id="deadjob00009", kind="x", owner=ALICE, title="t", config={}, status="running", manager="999999:1.00"
    )
    first.store.create(orphan)
    assert JobManager.from_settings(recover=False).get("deadjob00009", ALICE).status == "running"
