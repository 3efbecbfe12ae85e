"""Fault reporting (issue 13, item 7): a retried training continues from its checkpoint, "resumable" means there is
a checkpoint, staged uploads do not pile up."""

from __future__ import annotations

import os
import time

import pytest

from services.core import uploads
from services.training import jobs as training_jobs
from services.training.config import TrainConfig
from tests.unit.test_training import write_csv

OWNER = "anon:retry"


def _wait_for_checkpoint(manager, job_id, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(a.get("kind") == "checkpoint" for a in manager.get(job_id, OWNER).artifacts):
            return
        time.sleep(0.3)
    raise AssertionError(manager.logs(job_id, OWNER))


def test_start_again_continues_a_training_from_its_checkpoint(manager, tiny_models, tmp_path):
    rows = [[f"good thing {i}", "positive"] for i in range(150)] + [[f"bad thing {i}", "negative"] for i in range(150)]
    data = write_csv(tmp_path / "reviews.csv", ["text", "label"], rows)
    config = TrainConfig.from_dict(
        {
            "task": "text-classification",
            "model": str(tiny_models["bert-encoder"]),
            "dataset": {"source": str(data), "label_column": "label"},
            "max_length": 16,
            "training": {"num_train_epochs": 40, "per_device_train_batch_size": 4},
            "early_stopping_patience": None,
        }
    )
    first = training_jobs.start(manager, OWNER, config, "retried")
    _wait_for_checkpoint(manager, first)
    manager.cancel(first, OWNER)
    record = manager.wait(first, timeout=120)
    assert record.status == "cancelled"
    assert training_jobs.outputs(manager, first, OWNER)["resumable"] is True

    again = training_jobs.retry(manager, record, OWNER, {})
    _wait_for_checkpoint(manager, again)
    assert any(line.startswith("Resuming from checkpoint-") for line in manager.logs(again, OWNER))
    manager.cancel(again, OWNER)
    manager.wait(again, timeout=120)


def test_an_empty_checkpoints_folder_is_not_resumable(manager):
    """After an app kill the folder can exist with nothing in it: Resume would fail, so it is not offered."""
    out = training_jobs.trained_root(OWNER) / "half"
    (out / "checkpoints").mkdir(parents=True)
    job_id = manager.submit("train", OWNER, lambda ctx: None, title="t", config={"name": "half"})
    manager.wait(job_id, timeout=20)
    assert training_jobs.outputs(manager, job_id, OWNER)["resumable"] is False
    (out / "checkpoints" / "checkpoint-5").mkdir()
    (out / "checkpoints" / "checkpoint-5" / "trainer_state.json").write_text("{}")
    assert training_jobs.outputs(manager, job_id, OWNER)["resumable"] is True


def _staged(settings, owner: str, age_s: float) -> str:
    source = settings.home.parent / f"upload-{age_s}.txt"
    source.write_text("some text")
    path = uploads.stage([str(source)], owner, "rag", (".txt",), "text")[0]
    old = time.time() - age_s
    folder = uploads.staged_folder(path, owner)
    os.utime(folder, (old, old))
    return path


def test_old_staged_uploads_no_job_needs_are_swept(settings):
    old = _staged(settings, OWNER, 3 * 86400)
    needed = _staged(settings, OWNER, 3 * 86400)
    fresh = _staged(settings, OWNER, 60)
    assert uploads.sweep(in_use=[needed]) == 1
    assert not os.path.exists(old) and os.path.exists(needed) and os.path.exists(fresh)


def test_discard_only_touches_the_owners_staging_folders(settings, tmp_path):
    mine = _staged(settings, OWNER, 0)
    elsewhere = tmp_path / "keep.txt"
    elsewhere.write_text("not staged")
    theirs = _staged(settings, "anon:someone-else", 0)
    uploads.discard([mine, str(elsewhere), theirs], OWNER)
    assert not os.path.exists(mine) and elsewhere.exists() and os.path.exists(theirs)


@pytest.mark.slow
def test_a_finished_ingest_job_leaves_no_staged_copy(manager, settings):
    from services.rag import answer as rag

    source = settings.home.parent / "note.md"
    source.write_text("# Note\n\nThe meeting is on Tuesday at noon in room 4.\n")
    staged = rag.stage([str(source)], OWNER)
    job = manager.submit_command(
        "rag-ingest", OWNER, ["rag", "--owner", OWNER, "ingest", "--collection", "notes", "--", *staged], title="x"
    )
    assert manager.wait(job, timeout=300).status == "succeeded", manager.logs(job, OWNER)
    assert not os.path.exists(staged[0]) and not uploads.staged_folder(staged[0], OWNER).exists()
