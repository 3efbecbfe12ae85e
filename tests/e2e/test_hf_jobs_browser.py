"""Fine-tune → Run on: Hugging Face Jobs, in headless Chromium, with no network: the app (its own process, the
machine's HF_TOKEN as a local user has it) talks to the local Hub emulator, whose Jobs endpoints run the job's
command as a local process. The hardware list comes from the Jobs API with its prices; the run's curves and report
appear as for a local training; the pushed model is offered under its Hub id. Screenshot:
test-artifacts/screenshots/finetune-hf-jobs.png (also the README's assets/screenshots/finetune-hf-jobs.png).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from huggingface_hub import HfApi

from tests.e2e.conftest import chromium_page
from tests.hub_emulator import start_emulator

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ALICE = "hf_write_alice_token"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_on_emulated_hub(tiny_models, tmp_path_factory):
    import huggingface_hub.constants as hf_constants

    workdir = tmp_path_factory.mktemp("hf-jobs-app")
    with pytest.MonkeyPatch.context() as mp, start_emulator() as emu:
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # this process seeds the emulator; the app is online
        api = HfApi(endpoint=emu.url, token=ALICE)
        api.create_repo("alice/tiny-bert")
        api.upload_folder(folder_path=str(tiny_models["bert-encoder"]), repo_id="alice/tiny-bert")
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "SPACE_ID")}
        env.update(HF_ENDPOINT=emu.url, HF_TOKEN=ALICE, HF_HUB_DISABLE_XET="1", HF_HOME=str(workdir / "hf-home"),
                   PLAYGROUND_HOME=str(workdir / "home"), PLAYGROUND_JOBS_IMAGE="hf.co/spaces/alice/hf-playground",
                   GRADIO_SERVER_PORT=str(port), GRADIO_TEMP_DIR=str(workdir / "gradio"),
                   GRADIO_ANALYTICS_ENABLED="False")  # fmt: skip
        log = workdir / "app.log"
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log.open("w"),
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 300
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        yield {"url": url, "emulator": emu, "log": log}
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def field(page, label):
    return page.get_by_label(label, exact=True).filter(visible=True)


def test_a_training_runs_on_hugging_face_jobs_and_reports_like_a_local_one(app_on_emulated_hub, shots):
    from playwright.sync_api import expect

    with chromium_page(app_on_emulated_hub["url"], height=1200) as page:
        page.get_by_role("tab", name="Fine-tune", exact=True).click()
        model = field(page, "Base model")
        model.fill("alice/tiny-bert")
        model.press("Enter")
        field(page, "Name of the new model").fill("remote-sentiment")
        field(page, "3 · Epochs").fill("0.2")
        page.locator("#ft-run-on").get_by_label("Hugging Face Jobs", exact=True).check()
        flavor = page.locator("#ft-flavor input")
        deadline = time.monotonic() + 60
        while "/h" not in (flavor.input_value() or "") and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "/h" in flavor.input_value(), flavor.input_value()  # the hardware with its price per hour
        expect(page.locator("#ft-remote-command")).to_contain_text("--on hf-jobs", timeout=20_000)
        for _ in range(3):  # a late reply of the model field's change can set a box back once on a busy machine
            if model.input_value() == "alice/tiny-bert" and field(page, "3 · Epochs").input_value() == "0.2":
                break
            model.fill("alice/tiny-bert")
            model.press("Enter")
            field(page, "3 · Epochs").fill("0.2")
            time.sleep(1)
        page.get_by_role("button", name="Start training").click()
        result = page.locator("#ft-result")
        expect(result.locator(".pg-ok").first).to_contain_text("alice/remote-sentiment", timeout=300_000)
        expect(result).to_contain_text("Pushed to")
        expect(page.locator("#ft-status")).to_contain_text("succeeded")
        expect(page.locator("#ft-charts")).to_contain_text("Loss")
        expect(page.get_by_role("button", name="Try it in Pipelines")).to_be_visible()
        page.screenshot(path=str(shots / "finetune-hf-jobs.png"), full_page=True)
        shutil.copy(shots / "finetune-hf-jobs.png", ROOT / "assets" / "screenshots" / "finetune-hf-jobs.png")
    jobs = list(app_on_emulated_hub["emulator"].state.jobs_state.jobs.values())
    assert jobs and all(j.stage == "COMPLETED" for j in jobs)
    assert ALICE not in app_on_emulated_hub["log"].read_text()  # the token is never logged


def test_the_api_lists_the_hardware_and_trains_on_two_nodes(app_on_emulated_hub):
    """/hf_jobs_hardware and /train_on_hf_jobs through gradio_client, followed with /job to the pushed model."""
    from gradio_client import Client

    client = Client(app_on_emulated_hub["url"], verbose=False)
    hardware = client.predict(api_name="/hf_jobs_hardware")
    assert hardware[0]["flavor"] == "cpu-basic" and "$" in hardware[0]["label"]
    config = yaml.safe_dump({
        "task": "text-classification", "model": "alice/tiny-bert",
        "dataset": {"source": "samples/sentiment", "text_column": "text", "label_column": "label",
                    "eval_split": 0.2},
        "max_length": 16, "training": {"num_train_epochs": 0.1, "per_device_train_batch_size": 8},
    })  # fmt: skip
    job_id = client.predict(config, "api-two-nodes", "a10g-small", 2, "30m", api_name="/train_on_hf_jobs")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        job = client.predict(job_id, api_name="/job")
        if job["status"] in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(2)
    assert job["status"] == "succeeded", job
    assert job["result"]["repo_id"] == "alice/api-two-nodes" and job["result"]["stages"] == ["COMPLETED"] * 2
    listed = {m["id"]: m for m in client.predict("text-classification", api_name="/models")}
    assert listed["alice/api-two-nodes"]["source"] == "hub" and listed["alice/api-two-nodes"]["available"]
    try:
        client.predict(config, "x", "a20g-huge", 1, "30m", api_name="/train_on_hf_jobs")
    except Exception as err:
        assert "is not a Hugging Face Jobs hardware flavor" in str(err)
    else:
        raise AssertionError("an unknown flavor was accepted")
