"""Pushing, the checks made before anything reaches the Hub: repo names, tokens, empty folders and secrets.

The pushes themselves run against the local Hub emulator in tests/unit/test_hub_push_emulated.py.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.core.errors import PlaygroundError
from services.hub.push import check_folder, push, resolve_token


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "bert"}')
    return tmp_path / "model"


@pytest.mark.parametrize("repo_id", ["", "alone", "a/b/c", "alice/bad name", "alice/-x-", "alice/" + "x" * 200])
def test_bad_repo_names_are_refused_in_words(folder, repo_id):
    with pytest.raises(PlaygroundError, match="is not a repo name"):
        push(folder, repo_id, token="hf_dummy_token_value")


def test_a_bad_repo_type_is_refused(folder):
    with pytest.raises(PlaygroundError, match="repo type"):
        push(folder, "alice/x", repo_type="bucket", token="hf_dummy_token_value")


def test_no_token_is_a_sentence(folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    with pytest.raises(PlaygroundError, match="needs a Hugging Face token"):
        push(folder, "alice/x")


def test_the_environment_token_is_used_locally_but_never_on_a_space(monkeypatch, settings):
    monkeypatch.setenv("HF_TOKEN", "hf_from_the_environment")
    assert resolve_token(None) == "hf_from_the_environment"
    assert resolve_token("hf_typed_by_the_user") == "hf_typed_by_the_user"
    monkeypatch.setenv("SPACE_ID", "owner/space")
    from services.core.config import get_settings

    get_settings.cache_clear()
    try:
        with pytest.raises(PlaygroundError, match="needs a Hugging Face token"):
            resolve_token(None)  # the Space's own token never pushes for a visitor
    finally:
        monkeypatch.delenv("SPACE_ID")
        get_settings.cache_clear()


def test_missing_and_empty_folders_are_refused(tmp_path):
    with pytest.raises(PlaygroundError, match="nothing at"):
        check_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(PlaygroundError, match="empty"):
        check_folder(tmp_path / "empty")
    (tmp_path / "zero").mkdir()
    (tmp_path / "zero" / "a.txt").write_bytes(b"")
    with pytest.raises(PlaygroundError, match="empty"):
        check_folder(tmp_path / "zero")


@pytest.mark.parametrize("name", ["token", ".env", ".env.local", "credentials.json", "id_rsa", "server.pem", ".netrc"])
def test_a_folder_with_a_secrets_file_is_refused(folder, name):
    (folder / name).write_text("secret")
    with pytest.raises(PlaygroundError, match="secrets"):
        check_folder(folder)


def test_a_file_holding_a_token_is_refused(folder):
    (folder / "notes.md").write_text("my token is hf_AbCdEfGhIjKlMnOpQrStUv, keep it safe")
    with pytest.raises(PlaygroundError, match="looks like a Hugging Face token"):
        check_folder(folder)


def test_a_clean_folder_lists_its_files_but_not_git_internals(folder):
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (folder / "sub").mkdir()
    (folder / "sub" / "weights.bin").write_bytes(b"\0" * 10)
    assert [p.name for p in check_folder(folder)] == ["config.json", "weights.bin"]


def test_the_cli_push_says_what_is_wrong_and_exits_2(folder):
    result = subprocess.run(
        [sys.executable, "-m", "services", "push", str(folder), "--repo-id", "not a repo"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("Error: 'not a repo' is not a repo name")
