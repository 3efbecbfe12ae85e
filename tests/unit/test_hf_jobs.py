"""Training on Hugging Face Jobs, end to end with no network: the real `HfApi` client against the local Hub
emulator, whose Jobs endpoints run each job's command as local processes (tests/hub_emulator_jobs.py). Two
"nodes" are two processes training one model over gloo with a rendezvous on localhost; the result is pushed to the
emulator and listed in the owner's catalog."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import yaml
from huggingface_hub import HfApi

from tests.hub_emulator import Emulator, start_emulator
from tests.unit.test_training import write_csv

ROOT = Path(__file__).resolve().parents[2]
ALICE = "hf_write_alice_token"
ROWS = 64  # 51 training rows after the 0.2 evaluation split, batch 4: 13 steps on one node, 7 on each of two


@pytest.fixture(scope="module")
def emu(tiny_models) -> Iterator[Emulator]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        mp.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
        with start_emulator() as emulator:
            mp.setattr(hf_constants, "ENDPOINT", emulator.url)
            mp.setattr(hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE",
                       emulator.url + "/{repo_id}/resolve/{revision}/{filename}")  # fmt: skip
            api = HfApi(endpoint=emulator.url, token=ALICE)
            api.create_repo("alice/tiny-bert")  # the base model the jobs download, as from the Hub
            api.upload_folder(folder_path=str(tiny_models["bert-encoder"]), repo_id="alice/tiny-bert")
            yield emulator


@pytest.fixture
def online(emu, settings, monkeypatch):
    """This process as the app runs online: the emulator is the Hub, the image is the app's own."""
    from services.core.config import get_settings
    from services.hub.push import model_exists

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", emu.url)
    monkeypatch.setenv("PLAYGROUND_JOBS_IMAGE", "hf.co/spaces/alice/hf-playground")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    get_settings.cache_clear()
    model_exists.cache_clear()
    emu.state.jobs_state.faults.clear()
    yield emu
    get_settings.cache_clear()


def config(tmp_path: Path, repo: str, epochs: float = 1, **extra) -> dict:
    rows = [[f"good thing number {i}", "positive"] for i in range(ROWS // 2)]
    rows += [[f"bad thing {i}", "negative"] for i in range(ROWS // 2)]
    return {
        "task": "text-classification",
        "model": "alice/tiny-bert",
        "dataset": {
            "source": str(write_csv(tmp_path / "reviews.csv", ["text", "label"], rows)),
            "text_column": "text",
            "label_column": "label",
            "eval_split": 0.2,
        },
        "max_length": 12,
        "training": {
            "num_train_epochs": epochs,
            "per_device_train_batch_size": 4,
            "logging_steps": 1,
            "learning_rate": 5e-5,
        },
        "early_stopping_patience": None,
        "output_dir": str(tmp_path / "out"),
        "push_to_hub": {"repo_id": repo},
        **extra,
    }


def metric_points(manager, job_id: str, owner: str) -> list[tuple]:
    events = manager.events(job_id, owner, types=("metrics",))
    return [(e.get("step"), tuple(sorted(e["values"]))) for e in events]


# ---- the emulator speaks Jobs as HfApi expects ---------------------------------------------------------------


def test_the_emulator_runs_follows_and_cancels_jobs_through_hfapi(emu):
    api = HfApi(endpoint=emu.url, token=ALICE)
    flavors = {h.name: h for h in api.list_jobs_hardware()}
    assert flavors["a10g-small"].accelerator.model == "A10G" and flavors["cpu-basic"].unit_label == "minute"
    code = (  # still running when the stream breaks, so the client follows again
        "import os, time\nfor i in range(6):\n"
        "    print('line', i, os.environ['MY_SECRET'] == 's3cret', flush=True)\n    time.sleep(0.3)"
    )
    job = api.run_job(image="python:3.11", command=["python", "-c", code], secrets={"MY_SECRET": "s3cret"})
    emu.state.jobs_state.faults["drop_logs_after"] = 3  # the stream breaks once: the client follows again
    lines = list(api.fetch_job_logs(job_id=job.id, follow=True))
    emu.state.jobs_state.faults.clear()
    assert lines == [f"line {i} True" for i in range(6)]  # every line once, the secret reached the job
    info = api.inspect_job(job_id=job.id)
    assert info.status.stage == "COMPLETED" and "s3cret" not in json.dumps(info.secrets)

    emu.state.jobs_state.faults["schedule_s"] = 5.0
    waiting = api.run_job(image="python:3.11", command=["python", "-c", "print('never')"])
    api.cancel_job(job_id=waiting.id)  # during scheduling: it never starts
    emu.state.jobs_state.faults.clear()
    final = api.wait_for_job(waiting.id, timeout=10)
    assert final.status.stage == "CANCELED" and list(api.fetch_job_logs(job_id=waiting.id)) == []


# ---- the CLI contract: two nodes over gloo, result pushed ------------------------------------------------------


def test_cli_trains_on_two_emulated_nodes_and_pushes_the_result(emu, tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path, "alice/two-nodes")))
    env = {**os.environ, "HF_ENDPOINT": emu.url, "HF_TOKEN": ALICE, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
           "PLAYGROUND_JOBS_IMAGE": "hf.co/spaces/alice/hf-playground"}  # fmt: skip
    command = [sys.executable, "-m", "services", "train", str(path), "--on", "hf-jobs", "--flavor", "cpu-upgrade",
               "--nodes", "2", "--timeout", "20m"]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["stages"] == ["COMPLETED", "COMPLETED"] and result["repo_id"] == "alice/two-nodes"
    assert result["steps"] == 7  # each node did half of the 13 single-node steps
    assert result["metrics"]["loss"] < 1.0  # near ln 2 for a random two-class head: not doubled by two processes
    assert "[100%] Done" in done.stderr and "loss=" in done.stderr  # progress and metrics as they came
    assert "Learning rate 5e-05 x 2 nodes = 0.0001" in done.stderr  # the global batch doubled: so did the rate
    uploaded = HfApi(endpoint=emu.url, token=ALICE).hf_hub_download(
        "alice/hf-playground-runs", f"runs/{result['run']}/job.yaml", repo_type="dataset"
    )
    assert yaml.safe_load(Path(uploaded).read_text())["training"]["learning_rate"] == 1e-4
    files = HfApi(endpoint=emu.url, token=ALICE).list_repo_files("alice/two-nodes")
    assert {"model.safetensors", "config.json", "README.md", "metrics.json"} <= set(files)
    card = HfApi(endpoint=emu.url, token=ALICE).hf_hub_download("alice/two-nodes", "README.md")
    assert "alice/two-nodes" in Path(card).read_text()  # the card's snippet loads from the pushed repo
    jobs = emu.state.jobs_state.jobs.values()
    assert sum(j.spec.get("network", {}).get("group", "").startswith("playground-") for j in jobs) >= 2
    assert all(ALICE not in json.dumps(j.to_json("x")) for j in jobs)  # the token is a secret, never shown


def test_cli_refusals_are_sentences(emu, tmp_path):
    env = {**os.environ, "HF_ENDPOINT": emu.url, "HF_TOKEN": ALICE, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
           "PLAYGROUND_JOBS_IMAGE": "hf.co/spaces/alice/hf-playground"}  # fmt: skip
    cases = [
        ({"push_to_hub": None}, [], "push_to_hub.repo_id"),
        ({}, ["--flavor", "a20g-huge"], "is not a Hugging Face Jobs hardware flavor"),
        ({}, ["--nodes", "40"], "from 1 to 8"),
    ]
    for change, flags, expected in cases:
        path = tmp_path / "job.yaml"
        path.write_text(yaml.safe_dump({**config(tmp_path, "alice/refused"), **change}))
        done = subprocess.run([sys.executable, "-m", "services", "train", str(path), "--on", "hf-jobs", *flags],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
    path.write_text(yaml.safe_dump(config(tmp_path, "alice/refused")))
    for token, expected in [("hf_nojobs_alice_token", "'Jobs' permission"), ("hf_write_carol_token", "PRO")]:
        done = subprocess.run([sys.executable, "-m", "services", "train", str(path), "--on", "hf-jobs"], cwd=ROOT,
                              env={**env, "HF_TOKEN": token}, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 2 and expected in done.stderr, done.stderr


# ---- the app: a run followed like a local job ----------------------------------------------------------------


def test_a_run_is_followed_like_a_local_job_and_lands_in_the_catalog(online, manager, tmp_path):
    from services.models.catalog import catalog
    from services.training import jobs as training_jobs
    from services.training import remote_jobs

    owner = "anon:remote"
    online.state.jobs_state.faults["drop_logs_after"] = 12  # the log stream breaks mid-run
    job_id = remote_jobs.start(manager, owner, config(tmp_path, "alice/followed"), "followed", ALICE, "t4-small")
    record = manager.wait(job_id, timeout=300)
    assert record.status == "succeeded", (record.error, manager.logs(job_id, owner))
    assert record.progress == 1.0 and record.kind == "remote-train"
    points = metric_points(manager, job_id, owner)
    assert len(points) == len(set(points)) and any("loss" in keys for _, keys in points)  # no point twice
    assert any(row["series"] == "loss" for row in training_jobs.curves(manager, job_id, owner))
    out = remote_jobs.outputs(manager, job_id, owner)
    assert out["model_id"] == "alice/followed" and out["metrics"]["accuracy"] >= 0
    entries = {e.id: e for e in catalog(owner=owner)}
    assert "alice/followed" in entries, manager.logs(job_id, owner)[-4:]
    assert entries["alice/followed"].source == "hub" and "text-classification" in entries["alice/followed"].tasks
    assert "alice/followed" not in {e.id for e in catalog(owner="anon:someone-else")}
    assert ALICE not in json.dumps(record.config) + json.dumps(record.result)


def test_after_a_restart_the_run_is_followed_again_without_duplicate_points(online, settings, tmp_path):
    from services.jobs.manager import JobManager
    from services.training import remote_jobs

    owner = "anon:restart"
    first = JobManager.from_settings()
    job_id = remote_jobs.start(first, owner, config(tmp_path, "alice/restarted", epochs=3), "restarted", ALICE,
                               "cpu-basic")  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and len(metric_points(first, job_id, owner)) < 3:
        time.sleep(0.3)
    before = metric_points(first, job_id, owner)
    assert before, first.logs(job_id, owner)
    first.shutdown(timeout=2)  # the app stops: the run goes on on Hugging Face
    first.store.update(job_id, manager="1:0")  # as written by a process that is gone
    second = JobManager.from_settings()
    assert second.get(job_id, owner).status == "running"  # not "interrupted": it runs elsewhere
    assert remote_jobs.reattach(second, job_id, owner, ALICE)
    assert not remote_jobs.reattach(second, job_id, owner, ALICE)  # one follower at a time
    record = second.wait(job_id, timeout=300)
    assert record.status == "succeeded", (record.error, second.logs(job_id, owner))
    points = metric_points(second, job_id, owner)
    assert len(points) == len(set(points)) and len(points) > len(before)
    second.shutdown()


def test_cancel_stops_every_node(online, manager, tmp_path):
    from services.training import remote_jobs

    owner = "anon:cancel"
    job_id = remote_jobs.start(manager, owner, config(tmp_path, "alice/cancelled", epochs=100), "cancelled", ALICE,
                               "cpu-basic", nodes=2)  # fmt: skip
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not metric_points(manager, job_id, owner):
        time.sleep(0.3)
    manager.cancel(job_id, owner)
    record = manager.wait(job_id, timeout=120)
    assert record.status == "cancelled", (record.error, manager.logs(job_id, owner))
    run = record.config["remote"]["jobs"]
    stages = [online.state.jobs_state.jobs[j].stage for j in run]
    assert stages == ["CANCELED", "CANCELED"]


def test_a_remote_crash_shows_its_last_lines_and_a_sentence(online, manager, tmp_path):
    from services.training import remote_jobs

    owner = "anon:crash"
    broken = config(tmp_path, "alice/crashed")
    broken["dataset"]["text_column"] = "review"  # no such column: the training fails inside the job
    job_id = remote_jobs.start(manager, owner, broken, "crashed", ALICE, "cpu-basic")
    record = manager.wait(job_id, timeout=200)
    assert record.status == "failed"
    assert record.error.startswith("The run on Hugging Face Jobs failed") and "review" in record.error
    assert "Traceback" not in record.error


def test_the_app_refuses_what_a_job_cannot_run(online, manager, tmp_path, tiny_models):
    from services.core.errors import PlaygroundError
    from services.training import remote_jobs

    owner = "anon:refused"
    local = {**config(tmp_path, "alice/x"), "model": str(tiny_models["bert-encoder"])}
    with pytest.raises(PlaygroundError, match="lives on this machine"):
        remote_jobs.start(manager, owner, local, "local-model", ALICE, "cpu-basic")
    with pytest.raises(PlaygroundError, match="between 1 minute and 24 hours"):
        remote_jobs.start(manager, owner, config(tmp_path, "alice/x"), "x", ALICE, "cpu-basic", timeout="3d")
    with pytest.raises(PlaygroundError, match="Hugging Face token"):
        remote_jobs.start(manager, owner, config(tmp_path, "alice/x"), "x", None, "cpu-basic")
    assert manager.list(owner) == []  # nothing was started, here or there
    assert not [j for j in online.state.jobs_state.jobs.values() if "alice/x" in json.dumps(j.spec)]


def test_the_space_asks_visitors_for_the_jobs_permission():
    meta = yaml.safe_load((ROOT / "README.md").read_text(encoding="utf-8").split("---")[1])
    assert "jobs" in meta["hf_oauth_scopes"]  # a visitor's OAuth token can then start their runs


def test_a_cancel_while_the_run_is_scheduled_stops_it_before_it_starts(online, manager, tmp_path):
    from services.training import remote_jobs

    owner = "anon:early-cancel"
    online.state.jobs_state.faults["schedule_s"] = 30.0  # the Hub is still finding a machine
    job_id = remote_jobs.start(manager, owner, config(tmp_path, "alice/never"), "never", ALICE, "a100-large")
    manager.cancel(job_id, owner)
    record = manager.wait(job_id, timeout=60)
    assert record.status == "cancelled"
    (remote,) = [online.state.jobs_state.jobs[j] for j in record.config["remote"]["jobs"]]
    assert remote.stage == "CANCELED" and remote.started is None  # its command never ran


def test_a_lora_chat_adapter_trained_remotely_runs_here_for_its_owner(online, manager, tmp_path, tiny_chat_model):
    from services import pipelines
    from services.models.catalog import resolve
    from services.training import remote_jobs

    api = HfApi(endpoint=online.url, token=ALICE)
    api.create_repo("alice/tiny-chat", exist_ok=True)
    api.upload_folder(folder_path=str(tiny_chat_model), repo_id="alice/tiny-chat")
    owner = "anon:remote-lora"
    chat = {
        "task": "chat", "model": "alice/tiny-chat",
        "dataset": {"source": "samples/chat-days", "eval_split": 0.1, "max_samples": 24},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}, "max_length": 64,
        "training": {"max_steps": 3, "per_device_train_batch_size": 4, "logging_steps": 1, "seed": 0},
        "output_dir": str(tmp_path / "out"),
    }  # fmt: skip
    job_id = remote_jobs.start(manager, owner, chat, "days-adapter", ALICE, "t4-small")  # pushed to alice/days-adapter
    record = manager.wait(job_id, timeout=300)
    assert record.status == "succeeded", (record.error, "\n".join(manager.logs(job_id, owner)[-30:]))
    files = set(api.list_repo_files("alice/days-adapter"))
    assert {"adapter_config.json", "adapter_model.safetensors"} <= files and "model.safetensors" not in files
    assert resolve("alice/days-adapter", owner).source == "adapter"
    out = pipelines.run("text-generation", "alice/days-adapter", [{"role": "user", "content": "Monday + 1?"}],
                        owner=owner, max_new_tokens=4, do_sample=False)  # fmt: skip
    assert isinstance(out[0]["generated_text"], list | str)
