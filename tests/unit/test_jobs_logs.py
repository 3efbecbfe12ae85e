"""Job logs as a visitor reads them, and clearing finished jobs (issue 14, item 14).

Logs: terminal codes (ESC or its printable stand-in "␛") are gone, and a tqdm-style progress bar, whether redrawn
with carriage returns or printed line after line, shows its last state only, in the stored log and in every view.
Clearing: only the caller's own finished jobs go, with their files; queued and running jobs and other visitors'
jobs stay. This file is also the child process of one test (``python -m tests.unit.test_jobs_logs``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

ALICE, BOB = "anon:alice", "anon:bob"
ROOT = Path(__file__).resolve().parents[2]


def _bar(n: int, total: int = 272) -> str:
    pct = n * 100 // total
    return f"Loading weights: {pct:3d}%|{'█' * (pct // 10):<10}| {n}/{total} [00:00<00:00, 513.06it/s]"


def test_a_log_loses_terminal_codes_and_keeps_a_bar_in_its_last_state():
    from services.core.redact import visible_log

    lines = ["\x1b[1mStarting\x1b[0m", "\u241b[1mBold\u241b[0m too", _bar(0), _bar(136), _bar(272), "done",
             "Map: 5 examples [00:00, 12.3 examples/s]", "Map: 9 examples [00:01, 12.3 examples/s]",
             "Accuracy reached 95%", "a note [12:30] about time"]  # fmt: skip
    assert visible_log(lines) == ["Starting", "Bold too", _bar(272), "done",
                                  "Map: 9 examples [00:01, 12.3 examples/s]", "Accuracy reached 95%",
                                  "a note [12:30] about time"]  # fmt: skip


def test_two_bars_one_after_the_other_are_both_kept():
    from services.core.redact import visible_log

    first, second = _bar(272), _bar(5, 5).replace("Loading weights", "Saving")
    assert visible_log([_bar(0), first, _bar(0, 5).replace("Loading weights", "Saving"), second]) == [first, second]


def test_a_bar_redrawn_in_the_stored_log_takes_one_line(manager):
    def work(ctx):
        ctx.log("before")
        for n in range(0, 273, 8):
            ctx.log(_bar(n))
        ctx.log("after")

    job_id = manager.submit("demo", ALICE, work, title="Bars")
    manager.wait(job_id, timeout=30)
    assert manager.store.tail_logs(job_id, 1000) == ["before", _bar(272), "after"]
    assert manager.logs(job_id, ALICE) == ["before", _bar(272), "after"]


def test_a_child_printing_a_tqdm_bar_shows_its_last_state(manager):
    job_id = manager.submit_command("demo", ALICE, [], title="tqdm", module="tests.unit.test_jobs_logs")
    record = manager.wait(job_id, timeout=60)
    assert record.status == "succeeded", record.error
    logs = manager.logs(job_id, ALICE)
    assert logs == ["Loading the model", "Loading weights: 100%|██████████| 40/40", "done"], logs


def test_old_records_are_cleaned_when_read(manager):
    """Lines stored before the cleaning existed (raw codes, every redraw) are cleaned on the way out."""
    job_id = manager.submit("demo", ALICE, lambda ctx: None, title="Old")
    manager.wait(job_id, timeout=30)
    for line in ["\x1b[1mold\x1b[0m", _bar(0), _bar(272)]:
        manager.store.add_event(job_id, "log", {"line": line})
    assert manager.logs(job_id, ALICE) == ["old", _bar(272)]


def _finished(manager, owner, status="succeeded", title="Done"):
    def work(ctx):
        ctx.log("working")
        if status == "failed":
            raise RuntimeError("on purpose")
        if status == "cancelled":
            while not ctx.cancelled:
                ctx.check_cancelled()
        return {"ok": True}

    job_id = manager.submit("demo", owner, work, title=title)
    if status == "cancelled":
        manager.cancel(job_id, owner)
    assert manager.wait(job_id, timeout=30).status == status
    return job_id


def test_clear_finished_deletes_only_the_callers_finished_jobs_and_their_files(manager, settings):
    from services.core.owners import owner_dir
    from services.jobs.cleanup import clear_finished

    done = [_finished(manager, ALICE, s) for s in ("succeeded", "failed", "cancelled")]
    interrupted = _finished(manager, ALICE)
    manager.store.update(interrupted, status="interrupted")
    config = owner_dir(settings.home / "configs", ALICE) / "job.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("task: x\n")
    with_config = manager.submit_command("train", ALICE, ["info", str(config)], title="Train")
    manager.wait(with_config, timeout=60)
    release = threading.Event()
    running = manager.submit("demo", ALICE, lambda ctx: release.wait(30) and None, title="Running")
    manager.store.update(running, status="running")
    queued = manager.submit("demo", ALICE, lambda ctx: release.wait(30) and None, title="Queued")
    manager.store.update(queued, status="queued")
    theirs = _finished(manager, BOB, title="Bob's")
    try:
        result = clear_finished(manager, ALICE)
        again = clear_finished(manager, ALICE)  # before the running and queued jobs may end
    finally:
        release.set()
    assert sorted(result["ids"]) == sorted([*done, interrupted, with_config]) and result["cleared"] == 5
    assert {r.id for r in manager.list(ALICE)} == {running, queued}
    assert manager.get(theirs, BOB).status == "succeeded" and manager.logs(theirs, BOB) == ["working"]
    for job_id in [*done, with_config]:
        assert not (manager.jobs_dir / job_id).exists()
        assert manager.store.tail_logs(job_id) == []
    assert not config.exists(), "the config a cleared job ran is removed"
    assert (manager.jobs_dir / theirs).exists()
    assert again == {"cleared": 0, "ids": []}


def test_a_config_another_job_still_names_is_kept(manager, settings):
    from services.core.owners import owner_dir
    from services.jobs.cleanup import clear_finished

    config = owner_dir(settings.home / "configs", ALICE) / "shared.yaml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("task: x\n")
    first = manager.submit_command("train", ALICE, ["info", str(config)], title="First")
    manager.wait(first, timeout=60)
    release = threading.Event()
    again = manager.submit("train", ALICE, lambda ctx: release.wait(30) and None, title="Started again")
    manager.store.update(again, command=["python", "-m", "services", "info", str(config)])
    try:
        assert clear_finished(manager, ALICE)["ids"] == [first]
    finally:
        release.set()
    assert config.exists(), "the job started again still needs it"


def test_the_cli_clears_finished_jobs(settings):
    import os

    from services.jobs.manager import JobManager

    manager = JobManager.from_settings()
    job_id = _finished(manager, "cli:tester")
    env = {**os.environ, "PLAYGROUND_HOME": str(settings.home)}
    done = subprocess.run([sys.executable, "-m", "services", "jobs", "clear", "--owner", "cli:tester"], cwd=ROOT,
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"cleared": 1, "ids": [job_id]}
    listed = subprocess.run([sys.executable, "-m", "services", "jobs", "--owner", "cli:tester"], cwd=ROOT,
                            capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert listed.returncode == 0 and json.loads(listed.stdout) == []


if __name__ == "__main__":  # the child of `test_a_child_printing_a_tqdm_bar_shows_its_last_state`
    print("\x1b[1mLoading the model\x1b[0m", flush=True)
    for n in range(41):  # as tqdm draws: carriage returns, a newline at the end
        sys.stdout.write(f"\rLoading weights: {n * 100 // 40:3d}%|{'█' * (n // 4):<10}| {n}/40")
        sys.stdout.flush()
    print("\ndone", flush=True)
