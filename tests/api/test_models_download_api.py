"""`/download_model`: a model trained here comes back as a zip its owner can load with transformers alone; for
anyone else it reads exactly like a model that does not exist (issue 14)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.api


def owner_of_client(client) -> str:
    """The owner id the app gives a gradio_client session (no cookie: its session hash)."""
    from tabs.session import _digest

    return f"session:{_digest(client.session_hash)}"


def test_the_owner_downloads_a_zip_that_loads_and_nobody_else_can(client, other_client, tiny_models, tmp_path):
    from transformers import pipeline

    from services.core.config import get_settings
    from services.models import catalog as models

    folder = models.trained_root(owner_of_client(client)) / "my-sentiment"
    shutil.copytree(tiny_models["bert-classifier"], folder, dirs_exist_ok=True)
    # What a training run leaves next to the model: its record (with a server path) and a checkpoint.
    (folder / "playground-model.json").write_text(
        json.dumps({"output_dir": str(folder), "task": "text-classification"})
    )
    (folder / "checkpoints" / "checkpoint-5").mkdir(parents=True, exist_ok=True)
    (folder / "checkpoints" / "checkpoint-5" / "optimizer.pt").write_bytes(b"x" * 1000)

    path = Path(client.predict("trained:my-sentiment", api_name="/download_model"))
    assert path.suffix == ".zip"
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        assert all(name.startswith("my-sentiment/") for name in names)
        assert not any("checkpoint" in name for name in names), "training checkpoints are not part of the model"
        home = str(get_settings().home)
        assert not any(home in archive.read(n).decode("utf-8", "ignore") for n in names if not n.endswith("/"))
        archive.extractall(tmp_path)
    classify = pipeline("text-classification", model=str(tmp_path / "my-sentiment"))
    assert classify("the movie was good")[0]["label"] in {"NEGATIVE", "POSITIVE"}

    with pytest.raises(Exception) as theirs:
        other_client.predict("trained:my-sentiment", api_name="/download_model")
    with pytest.raises(Exception) as missing:
        other_client.predict("trained:no-such-model", api_name="/download_model")
    assert "no trained model" in str(theirs.value)
    assert str(theirs.value).replace("my-sentiment", "X") == str(missing.value).replace("no-such-model", "X")


def test_only_models_trained_here_can_be_downloaded(client):
    with pytest.raises(Exception, match="trained here"):
        client.predict("all-minilm-l6-v2", api_name="/download_model")
