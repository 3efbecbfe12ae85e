"""Models trained here, as the catalog lists them and as their owner downloads them (issue 14)."""

from __future__ import annotations

import json
import shutil
import zipfile

import pytest

from services.core.errors import ModelNotFound, PlaygroundError
from services.models import catalog as models
from services.pipelines.codegen import snippet
from services.pipelines.download import trained_zip


@pytest.fixture
def trained(settings, tiny_models):
    """A tiny classifier in alice's trained models, with the record a training run leaves next to it."""
    folder = models.trained_root("anon:alice") / "my-sentiment"
    shutil.copytree(tiny_models["bert-classifier"], folder)
    record = {
        "output_dir": str(folder),
        "task": "text-classification",
        "model": "/srv/somewhere/distilbert-base",
        "metrics": {"loss": 0.31, "accuracy": 0.9},
        "test_metrics": {"loss": 0.35, "accuracy": 0.875, "f1": 0.86},
    }
    (folder / "playground-model.json").write_text(json.dumps(record))
    (folder / "job.yaml").write_text(f"output_dir: {folder}\n")
    (folder / "checkpoints" / "checkpoint-4").mkdir(parents=True)
    (folder / "checkpoints" / "checkpoint-4" / "optimizer.pt").write_bytes(b"0" * 100)
    return folder


def test_a_trained_model_line_says_task_date_and_headline_metric(trained):
    [entry] = [e for e in models.catalog("text-classification", owner="anon:alice") if e.source == "trained"]
    line = entry.description
    assert "text-classification" in line and "(bert)" in line
    assert "87.5 %" in line and "test split" in line, "the test split's accuracy, the headline metric"
    assert "/srv" not in line and "distilbert-base" in line, "the base model by name, never a server path"
    assert any(str(year) in line for year in range(2024, 2100)), "the date it was trained"


def test_a_trained_model_without_a_record_still_has_a_line(settings, tiny_models):
    shutil.copytree(tiny_models["bert-classifier"], models.trained_root("anon:alice") / "bare")
    [entry] = [e for e in models.catalog("text-classification", owner="anon:alice") if e.source == "trained"]
    assert entry.description.startswith("Trained here on") and "(bert)" in entry.description


def test_the_zip_holds_the_model_folder_and_nothing_of_the_server(trained, tmp_path, settings):
    path = trained_zip("trained:my-sentiment", "anon:alice")
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        archive.extractall(tmp_path)
    assert "my-sentiment/config.json" in names and all(n.startswith("my-sentiment/") for n in names)
    assert not {"my-sentiment/job.yaml", "my-sentiment/playground-model.json"} & set(names)
    assert not any("checkpoint" in n for n in names)
    from transformers import AutoModelForSequenceClassification

    AutoModelForSequenceClassification.from_pretrained(tmp_path / "my-sentiment")


def test_another_visitor_cannot_download_it(trained):
    with pytest.raises(ModelNotFound) as theirs:
        trained_zip("trained:my-sentiment", "anon:bob")
    with pytest.raises(ModelNotFound) as missing:
        trained_zip("trained:nothing-here", "anon:bob")
    assert str(theirs.value).replace("my-sentiment", "X") == str(missing.value).replace("nothing-here", "X")
    with pytest.raises(PlaygroundError, match="trained here"):
        trained_zip("all-minilm-l6-v2", "anon:alice")


def test_copy_as_code_loads_the_downloaded_folder_not_a_server_path(trained, settings):
    code = snippet("text-classification", "trained:my-sentiment", "good", {}, "anon:alice")
    assert "model_id = './my-sentiment'" in code
    assert str(settings.home) not in code and str(trained) not in code
    assert "Download model (zip)" in code
