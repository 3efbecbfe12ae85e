"""The catalog and the resolver: what exists, what is usable offline, and clear sentences for bad ids."""

from __future__ import annotations

import json
import shutil

import pytest

from services.core.errors import AccessDenied, ModelNotFound, ModelUnavailable, NotAModel
from services.models import catalog as models


def test_catalog_offline_lists_only_available_packaged_models(settings):
    entries = models.catalog()
    ids = {e.id for e in entries}
    assert {"all-minilm-l6-v2", "smollm2-135m-instruct"} <= ids
    assert all(e.available for e in entries)
    assert all(e.source != "hub" for e in entries), "offline with an empty HF cache: no Hub entries"


def test_catalog_all_shows_unavailable_hub_models_with_a_reason(settings):
    hub_entries = [e for e in models.catalog(available_only=False) if e.source == "hub"]
    assert hub_entries and not any(e.available for e in hub_entries)
    assert all("offline" in e.reason for e in hub_entries)


def test_catalog_filters_by_task_and_alias(settings):
    generation = models.catalog("text-generation")
    assert [e.id for e in generation] == [
        "smollm2-135m-instruct",
        "smollm2-135m-instruct-fast-cpu",
        "grounded-answers",
    ]
    assert [e.id for e in models.catalog("sentence-similarity")] == ["all-minilm-l6-v2"]
    assert models.catalog("sentiment-analysis", available_only=False) == models.catalog(
        "text-classification", available_only=False
    )
    with pytest.raises(ValueError, match="Unknown task"):
        models.catalog("teleportation")


def test_trained_models_are_listed_for_their_owner_only(settings, tiny_models):
    mine = models.trained_root("anon:alice") / "my-sentiment"
    shutil.copytree(tiny_models["bert-classifier"], mine)
    alice = [e for e in models.catalog("text-classification", owner="anon:alice") if e.source != "packaged"]
    assert [e.id for e in alice] == ["trained:my-sentiment"]
    assert alice[0].source == "trained"
    assert not [e for e in models.catalog("text-classification", owner="anon:bob") if e.source != "packaged"]
    assert models.resolve("trained:my-sentiment", "anon:alice").location == str(mine)
    with pytest.raises(ModelNotFound, match="no trained model"):
        models.resolve("trained:my-sentiment", "anon:bob")
    with pytest.raises(ModelNotFound):
        models.resolve("trained:../my-sentiment", "anon:alice")


def test_resolve_packaged_and_local(settings, tiny_models):
    packaged = models.resolve("smollm2-135m-instruct")
    assert packaged.source == "packaged" and "text-generation" in packaged.tasks
    local = models.resolve(str(tiny_models["bert-ner"]))
    assert local.source == "local" and local.tasks == ("token-classification",)


@pytest.mark.parametrize("bad", ["", "   "])
def test_empty_id_asks_for_a_model(settings, bad):
    with pytest.raises(ModelNotFound, match="choose a model"):
        models.resolve(bad)


def test_unknown_id_is_explained(settings):
    with pytest.raises(ModelNotFound, match="not a model name"):
        models.resolve("not a model!!")


def test_hub_model_offline_is_unavailable_with_advice(settings):
    with pytest.raises(ModelUnavailable, match="offline"):
        models.resolve("openai-community/gpt2")


def test_folder_that_is_not_a_model(settings, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(NotAModel, match=r"no config\.json"):
        models.resolve(str(tmp_path / "notes"))
    with pytest.raises(ModelNotFound, match="no folder"):
        models.resolve(str(tmp_path / "missing"))


def test_folders_inside_playground_home_are_off_limits(settings, tiny_models):
    """Another owner's folder reads exactly like a folder that is not there (no existence oracle, issue 13)."""
    other = models.trained_root("anon:bob") / "secret-model"
    shutil.copytree(tiny_models["bert-classifier"], other)
    with pytest.raises(ModelNotFound) as theirs:
        models.resolve(str(other), owner="anon:alice")
    with pytest.raises(ModelNotFound) as missing:
        models.resolve(str(other.with_name("no-such-model")), owner="anon:alice")
    assert str(theirs.value).replace("secret-model", "X") == str(missing.value).replace("no-such-model", "X")
    assert models.resolve(str(other), owner="anon:bob").source == "local"


def test_local_paths_can_be_turned_off(monkeypatch, settings, tiny_models):
    from services.core.config import get_settings

    monkeypatch.setenv("PLAYGROUND_ALLOW_LOCAL_PATHS", "0")
    get_settings.cache_clear()
    with pytest.raises(AccessDenied, match="turned off"):
        models.resolve(str(tiny_models["gpt2"]))


def test_tasks_for_config_reads_architectures(tiny_models):
    def tasks(name):
        return models.tasks_for_config(json.loads((tiny_models[name] / "config.json").read_text()))

    assert tasks("bert-qa") == ("question-answering",)
    assert tasks("bert-mlm") == ("fill-mask",)
    assert "text-generation" in tasks("gpt2")
    assert "summarization" in tasks("t5")
