"""Training as the app runs it: a child-process job with live metrics, Cancel that keeps a checkpoint, Resume
that continues from it, and the same command in two processes (torch.distributed on CPU with gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.unit.test_training import write_csv

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path, model, source, epochs, **extra) -> Path:
    cfg = {
        "task": "text-classification",
        "model": str(model),
        "dataset": {"source": str(source), "text_column": "text", "label_column": "label", "eval_split": 0.2},
        "max_length": 16,
        "training": {"num_train_epochs": epochs, "per_device_train_batch_size": 4, "logging_steps": 2},
        "early_stopping_patience": None,
        "output_dir": str(tmp_path / "out"),
        **extra,
    }
    path = tmp_path / f"job-{len(list(tmp_path.glob('job-*')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture
def reviews(tmp_path) -> Path:
    rows = [[f"good thing number {i}", "positive"] for i in range(200)] + [
        [f"bad thing {i}", "negative"] for i in range(200)
    ]
    return write_csv(tmp_path / "reviews.csv", ["text", "label"], rows)


def test_cancel_keeps_a_checkpoint_and_resume_finishes(tmp_path, tiny_models, reviews, manager):
    owner = "anon:trainer"
    path = write_config(tmp_path, tiny_models["bert-encoder"], reviews, epochs=30)
    job = manager.submit_command("train", owner, ["train", "--owner", owner, str(path)], title="Train")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        checkpoints = [a for a in manager.get(job, owner).artifacts if a.get("kind") == "checkpoint"]
        if checkpoints:
            break
        time.sleep(0.3)
    assert checkpoints, manager.logs(job, owner)
    manager.cancel(job, owner)
    record = manager.wait(job, timeout=120)
    assert record.status == "cancelled"
    kept = sorted((tmp_path / "out" / "checkpoints").glob("checkpoint-*"))
    assert kept and not (tmp_path / "out" / "config.json").exists()
    metrics = [e for e in manager.events(job, owner) if e.get("type") == "metrics"]
    assert any("loss" in e["values"] for e in metrics)  # the curve the UI draws

    resumed = write_config(tmp_path, tiny_models["bert-encoder"], reviews, epochs=2, resume=True)
    # Fewer epochs than already done: the resumed run only finishes up and saves.
    job2 = manager.submit_command("train", owner, ["train", "--owner", owner, str(resumed)], title="Resume")
    record = manager.wait(job2, timeout=180)
    assert record.status == "succeeded", (record.error, manager.logs(job2, owner))
    assert (tmp_path / "out" / "config.json").exists() and record.result["steps"] >= int(kept[-1].name.split("-")[1])


def test_resume_without_a_checkpoint_is_a_sentence(tmp_path, tiny_models, reviews, manager):
    owner = "anon:trainer"
    path = write_config(tmp_path, tiny_models["bert-encoder"], reviews, epochs=1, resume=True)
    job = manager.submit_command("train", owner, ["train", "--owner", owner, str(path)], title="Resume")
    record = manager.wait(job, timeout=120)
    assert record.status == "failed" and "no checkpoint" in record.error


def test_two_processes_train_one_model_with_gloo(tmp_path, tiny_models, reviews):
    path = write_config(tmp_path, tiny_models["bert-encoder"], reviews, epochs=1)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = subprocess.Popen(
        [*command, "-m", "services", "train", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so a hang can be stopped with every worker
    )
    try:
        output, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output[-3000:]
    out = tmp_path / "out"
    assert (out / "config.json").exists() and (out / "model.safetensors").exists()
    summary = json.loads((out / "playground-model.json").read_text())
    # Each process trained on half of every batch: the 320 training rows took half the single-process steps.
    assert summary["steps"] == 320 // (4 * 2)
    # The loss of two processes is on the one-process scale (transformers 5 doubled it, and so the gradients):
    # a random two-class head starts near ln 2 = 0.69, not 1.39.
    assert summary["metrics"]["loss"] < 1.0
