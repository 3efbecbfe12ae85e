"""`python -m services ...`: JSON out, one plain sentence and status 2 for user mistakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def cli(*args, env_home=None):
    import os

    env = {**os.environ}
    if env_home:
        env["PLAYGROUND_HOME"] = str(env_home)
    return subprocess.run(
        [sys.executable, "-m", "services", *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )


def test_models_prints_the_catalog_as_json(tmp_path):
    done = cli("models", env_home=tmp_path)
    assert done.returncode == 0, done.stderr
    entries = json.loads(done.stdout)
    assert {e["id"] for e in entries} >= {"all-minilm-l6-v2", "smollm2-135m-instruct"}
    for entry in entries:
        assert set(entry) >= {"id", "tasks", "source", "available"}
        assert entry["source"] in {"hub", "packaged", "local", "trained"}


def test_models_filters_by_task_and_can_show_unavailable(tmp_path):
    generation = json.loads(cli("models", "--task", "text-generation", env_home=tmp_path).stdout)
    assert [e["id"] for e in generation] == [
        "smollm2-135m-instruct",
        "smollm2-135m-instruct-fast-cpu",
        "grounded-answers",
    ]
    everything = json.loads(cli("models", "--all", env_home=tmp_path).stdout)
    assert any(e["source"] == "hub" and not e["available"] for e in everything)


@pytest.mark.parametrize(
    ("args", "sentence"),
    [
        (("models", "--task", "teleport"), "Unknown task"),
        (("prepare", "openai-community/gpt2"), "offline"),
        (("prepare", "/no/such/folder"), "no folder"),
        (("job", "abc123"), "no job"),
    ],
)
def test_mistakes_print_one_sentence_and_exit_2(tmp_path, args, sentence):
    done = cli(*args, env_home=tmp_path)
    assert done.returncode == 2
    assert sentence in done.stderr and "Traceback" not in done.stderr


def test_prepare_a_local_model_and_info(tmp_path, tiny_models):
    done = cli("prepare", str(tiny_models["t5"]), "--task", "summarization", env_home=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    info = json.loads(cli("info", env_home=tmp_path).stdout)
    assert summary["task"] == "summarization" and summary["device"] == info["device"]
    assert info["offline"] is True and info["home"] == str(tmp_path.resolve())
    assert info["device"] in ("cpu", "cuda", "mps") and info["device_name"]
