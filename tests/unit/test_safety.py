"""Safety policy at the service level (issue 13): no visitor code (remote code, pickles, YAML bombs), no server
files (owner folders keyed with a server secret, staged uploads only, Hub ids that are never local folders), what a
visitor is shown (no paths, owner ids, commands), and the app's own process out of reach of its jobs."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from services.core import owners, uploads
from services.core.config import get_settings
from services.core.errors import AccessDenied, ModelUnavailable
from services.core.redact import scrub, visible_line
from services.models import catalog as models
from services.training.config import ConfigError, TrainConfig


@pytest.fixture
def on_space(settings, monkeypatch):
    """Settings as on a public Space (local folders, remote code and pickles off)."""
    monkeypatch.setenv("SPACE_ID", "someone/playground")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


def _config(**extra) -> dict:
    return {
        "task": "text-classification",
        "model": "all-minilm-l6-v2",
        "dataset": {"source": "samples/sentiment", "label_column": "label"},
        **extra,
    }


# ---- owners' folders ----------------------------------------------------------------------------------------------


def test_owner_folders_are_keyed_with_a_server_secret(settings):
    key = owners.owner_key("hf:alice")
    assert key != hashlib.sha256(b"hf:alice").hexdigest()[:20], "not computable from the user name alone"
    assert key == owners.owner_key("hf:alice") and key != owners.owner_key("hf:bob")
    secret = settings.home / ".owner-secret"
    assert secret.is_file() and oct(secret.stat().st_mode & 0o777) == "0o600"


def test_a_job_process_computes_the_same_folders(settings):
    """Children read the same secret (PLAYGROUND_HOME), so a job writes where the app reads."""
    here = owners.owner_key("anon:someone")
    code = "from services.core.owners import owner_key; print(owner_key('anon:someone'))"
    env = {**os.environ, "PLAYGROUND_HOME": str(settings.home)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


def test_folders_named_the_old_way_move_to_the_keyed_name(settings):
    base = settings.home / "models"
    old = base / owners.legacy_key("hf:carol")
    (old / "my-model").mkdir(parents=True)
    folder = owners.owner_dir(base, "hf:carol")
    assert folder.name == owners.owner_key("hf:carol") and (folder / "my-model").is_dir() and not old.exists()


# ---- no visitor code ---------------------------------------------------------------------------------------------


def test_remote_code_and_pickles_are_refused_on_a_space(on_space):
    from services.models import loading
    from services.tokenizers.analysis import load_tokenizer

    with pytest.raises(AccessDenied, match="turned off on this Space"):
        loading.load("all-minilm-l6-v2", "feature-extraction", trust_remote_code=True)
    with pytest.raises(AccessDenied, match="pickled weights"):
        loading.load("all-minilm-l6-v2", "feature-extraction", allow_pickle=True)
    with pytest.raises(AccessDenied, match="turned off on this Space"):
        load_tokenizer("all-minilm-l6-v2", trust_remote_code=True)


def test_a_training_config_asking_for_remote_code_is_refused_on_a_space(on_space, manager):
    from services.training import jobs as training_jobs

    config = TrainConfig.from_dict(_config(trust_remote_code=True))
    with pytest.raises(AccessDenied, match="trust_remote_code"):
        training_jobs.start(manager, "anon:mallory", config, "evil")
    assert manager.list("anon:mallory") == [], "no job was started"


def test_remote_code_stays_opt_in_locally(settings):
    from services.core.safety import check_remote_code

    assert not settings.on_space and settings.allow_remote_code
    check_remote_code(True)  # the person at their own machine may ask for it


def test_an_operator_can_allow_remote_code_on_a_space(on_space, monkeypatch):
    from services.core.safety import check_remote_code

    monkeypatch.setenv("PLAYGROUND_ALLOW_REMOTE_CODE", "1")
    get_settings.cache_clear()
    check_remote_code(True)


def test_yaml_alias_bombs_are_refused():
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    with pytest.raises(ConfigError, match="aliases"):
        TrainConfig.from_yaml_text("task: text-classification\n" + bomb)


def test_a_visitor_config_is_text_never_a_file_path(tmp_path):
    secret = tmp_path / "secret.yaml"
    secret.write_text("task: text-classification\nmodel: x\ndataset: {source: s, label_column: l}\n")
    with pytest.raises(ConfigError, match="YAML mapping"):
        TrainConfig.from_yaml_text(str(secret))  # read as the text it is, not opened


def test_on_a_space_training_settings_are_hyperparameters_only(on_space, manager):
    from services.training import jobs as training_jobs

    for training in ({"deepspeed": "/etc/ds.json"}, {"resume_from_checkpoint": "/data/x"}, {"torch_compile": True}):
        with pytest.raises(ConfigError, match="cannot be set on this Space"):
            training_jobs.start(manager, "anon:v", TrainConfig.from_dict(_config(training=training)), "m")
    with pytest.raises(ConfigError, match="model_config"):
        config = TrainConfig.from_dict(_config(model_config={"hidden_size": 10**6}))
        training_jobs.start(manager, "anon:v", config, "m")
    with pytest.raises(ConfigError, match="num_train_epochs must be between"):
        config = TrainConfig.from_dict(_config(training={"num_train_epochs": 10**9}))
        training_jobs.start(manager, "anon:v", config, "m")


# ---- no server files ---------------------------------------------------------------------------------------------


def test_staging_refuses_files_of_the_storage_that_are_not_yours(settings, tmp_path):
    theirs = uploads.uploads_root("anon:alice") / "rag-1234" / "notes.txt"
    theirs.parent.mkdir(parents=True)
    theirs.write_text("alice's notes")
    with pytest.raises(AccessDenied, match="not one of your uploads"):
        uploads.stage([str(theirs)], "anon:bob", "rag", (".txt",), "text")
    assert uploads.stage([str(theirs)], "anon:alice", "rag", (".txt",), "text")  # her own: fine
    with pytest.raises(AccessDenied, match="not one of your uploads"):
        uploads.stage([str(settings.home / ".owner-secret")], "anon:bob", "rag", (".txt",), "text")


def test_a_hub_id_that_is_also_a_folder_here_is_never_read_from_disk(on_space):
    """`tests/data` is a valid repo id and a folder of the app: from_pretrained / load_dataset would read it."""
    from services.data import sources as datasets
    from services.tokenizers.analysis import load_tokenizer

    with pytest.raises(ModelUnavailable, match="Hub model"):
        models.resolve("tests/data", owner="anon:v")
    with pytest.raises(ModelUnavailable):
        load_tokenizer("tests/data", owner="anon:v")
    with pytest.raises(datasets.DatasetError, match="neither a bundled sample"):
        datasets._load_hub("tests/data", None, None, {})
    assert datasets.looks_like_path("Makefile") and datasets.looks_like_path("services")
    assert not datasets.looks_like_path("stanfordnlp/imdb")


def test_on_a_space_paths_get_one_sentence_whatever_exists(on_space):
    answers = set()
    for model_id in ("services/../../../etc/ssh", "services/../../../no-such-dir", "/etc", "/nope/nope"):
        with pytest.raises(AccessDenied) as refused:
            models.resolve(model_id, owner="anon:v")
        answers.add(str(refused.value))
    assert len(answers) == 1 and "turned off" in answers.pop()


def test_on_a_space_a_data_file_must_be_your_upload(on_space):
    from services.training.jobs import check_source

    for source in ("/etc/passwd", "Makefile", "requirements.txt", "tests/data", "../x.csv"):
        with pytest.raises(AccessDenied, match="not one of your uploads"):
            check_source(source, "anon:v")
    check_source("samples/sentiment", "anon:v")
    check_source("stanfordnlp/imdb", "anon:v")


# ---- what a visitor is shown -----------------------------------------------------------------------------------


def test_scrub_keeps_file_names_and_urls_but_no_paths_or_owners():
    text = 'File "/usr/lib/python3.11/zipfile.py", line 9 in /data/playground/models/0a1b/m --owner hf:alice'
    assert scrub(text) == 'File "zipfile.py", line 9 in m --owner you'
    assert scrub("see https://huggingface.co/a/b") == "see https://huggingface.co/a/b"
    assert scrub({"out": ["/srv/x/y.json"]}) == {"out": ["y.json"]}
    assert visible_line("\x1b[1m 40%|####  |\r100%|##########|\x1b[0m") == "100%|##########|"


def test_a_job_as_its_visitor_sees_it(manager, settings):
    from services.jobs.manager import public_view

    job_id = manager.submit_command(
        "demo",
        "hf:alice",
        ["--steps", "2", "--sleep", "0.01"],
        title=f"Index {settings.home}/uploads/abc/notes.txt",
        config={"output_dir": str(settings.home / "models" / "k" / "m")},
        module="tests.child_worker",
    )
    record = manager.wait(job_id, timeout=60)
    shown = str(public_view(record))
    assert "command" not in public_view(record) and str(settings.home) not in shown and "hf:alice" not in shown
    assert "notes.txt" in shown


def test_a_crash_in_a_job_shows_one_line_not_a_traceback(manager):
    job_id = manager.submit_command("demo", "anon:v", ["rag", "ingest", "--collection", "c", "/no/such.txt"],
                                    title="crash")  # fmt: skip
    record = manager.wait(job_id, timeout=120)
    lines = manager.logs(job_id, "anon:v")
    assert record.status == "failed"
    assert not [line for line in lines if "Traceback" in line or 'File "/' in line], lines


# ---- the app's process ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_jobs_cannot_read_the_app_environment_once_hardened(tmp_path):
    """A parent (as an ordinary user) hardens itself; its child, the same user, cannot read its environ."""
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, subprocess, sys
            sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
            import ctypes
            from services.core.safety import harden_process
            if os.getuid() == 0:  # as root anything is readable: be an ordinary user, dumpable as users are
                os.setgid(65534); os.setuid(65534)
                ctypes.CDLL(None).prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE: a uid change cleared it
            if sys.argv[1] == "1":
                assert harden_process()
            out = subprocess.run(["cat", f"/proc/{{os.getpid()}}/environ"], capture_output=True)
            print("READ" if b"SPACE_SECRET" in out.stdout else "REFUSED")
            """
        )
    )
    env = {**os.environ, "SPACE_SECRET": "hf_should_stay_hidden_123"}
    results = [
        subprocess.run([sys.executable, str(script), flag], env=env, capture_output=True, text=True, cwd=tmp_path)
        for flag in ("0", "1")
    ]
    if "READ" not in results[0].stdout:
        pytest.skip(f"this machine does not let a child read its parent's environ at all: {results[0].stderr}")
    assert results[1].stdout.strip() == "REFUSED", results[1].stderr
