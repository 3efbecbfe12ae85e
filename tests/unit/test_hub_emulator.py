"""The real ``huggingface_hub`` client, unchanged, against the local hub emulator (``tests/hub_emulator.py``).

How the client is pointed at the emulator without touching huggingface.co:

- ``HfApi(endpoint=emu.url, token=...)`` and ``hf_hub_download`` / ``snapshot_download(endpoint=emu.url)``: every call
  takes the endpoint explicitly, so ``HF_ENDPOINT`` (read once into ``huggingface_hub.constants.ENDPOINT`` at import)
  never matters here.
- ``tests/conftest.py`` sets ``HF_HUB_OFFLINE=1`` for the whole session, and ``huggingface_hub`` has already read it
  into ``constants.HF_HUB_OFFLINE``; ``get_session()`` checks ``constants.is_offline_mode()`` (the module attribute)
  on every request, so patching ``huggingface_hub.constants.HF_HUB_OFFLINE = False`` for this module is enough.
  Only loopback traffic to the emulator follows.
- ``hf_xet`` is installed, and huggingface_hub 2.4 uploads through Xet whenever it is importable, without asking the
  server; ``start_emulator`` sets ``HF_HUB_DISABLE_XET=1`` and ``constants.HF_HUB_DISABLE_XET = True`` (read at call
  time by ``is_xet_available()``) so uploads go through preupload -> LFS batch -> PUT -> commit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, RepositoryNotFoundError

from tests.hub_emulator import Emulator, start_emulator

ALICE = "hf_write_alice_token"
ALICE_READ = "hf_read_alice_token"
BOB = "hf_write_bob_token"
BIG = 10 * 1024 * 1024 + 123  # just over the 10 MB LFS threshold


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        mp.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
        with start_emulator() as emulator:
            yield emulator


@pytest.fixture(scope="module")
def alice(emu: Emulator) -> HfApi:
    return HfApi(endpoint=emu.url, token=ALICE)


@pytest.fixture(scope="module")
def pushed(alice: HfApi, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A private model with a text file and a >10 MB binary, pushed once through upload_folder."""
    folder = tmp_path_factory.mktemp("to-push")
    (folder / "config.json").write_text('{"hello": "world"}\n')
    (folder / "sub").mkdir()
    (folder / "sub" / "notes.txt").write_text("a small regular file\n")
    big = os.urandom(BIG)
    (folder / "weights.bin").write_bytes(big)
    alice.create_repo("alice/pushed", private=True)
    info = alice.upload_folder(repo_id="alice/pushed", folder_path=folder, commit_message="first weights")
    return {"folder": folder, "big": big, "commit": info}


def test_xet_is_off_while_the_emulator_runs(emu: Emulator) -> None:
    from huggingface_hub.utils._runtime import is_xet_available

    assert not is_xet_available()
    assert os.environ["HF_HUB_DISABLE_XET"] == "1"


def test_whoami(alice: HfApi, emu: Emulator) -> None:
    me = alice.whoami(cache=False)
    assert me["name"] == "alice"
    assert [o["name"] for o in me["orgs"]] == ["team"]
    assert me["auth"]["accessToken"]["role"] == "write"
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=emu.url, token="hf_unknown").whoami(cache=False)
    assert err.value.response.status_code == 401


@pytest.mark.parametrize("repo_type", ["model", "dataset", "space"])
@pytest.mark.parametrize("private", [True, False])
def test_create_repo_every_type(alice: HfApi, emu: Emulator, repo_type: str, private: bool) -> None:
    repo_id = f"alice/{repo_type}-{'private' if private else 'public'}"
    sdk = {"space_sdk": "gradio"} if repo_type == "space" else {}
    url = alice.create_repo(repo_id, repo_type=repo_type, private=private, **sdk)
    assert url.repo_id == repo_id and url.repo_type == repo_type
    info = alice.repo_info(repo_id, repo_type=repo_type)
    assert info.private is private and len(info.sha) == 40
    assert [s.rfilename for s in info.siblings] == [".gitattributes"]
    bob = HfApi(endpoint=emu.url, token=BOB)
    if private:
        with pytest.raises(RepositoryNotFoundError):
            bob.repo_info(repo_id, repo_type=repo_type)
    else:
        assert bob.repo_info(repo_id, repo_type=repo_type).id == repo_id
    # exist_ok returns the same repo; without it the name is taken
    assert alice.create_repo(repo_id, repo_type=repo_type, exist_ok=True, **sdk).repo_id == repo_id
    with pytest.raises(HfHubHTTPError) as err:
        alice.create_repo(repo_id, repo_type=repo_type, **sdk)
    assert err.value.response.status_code == 409


def test_create_repo_in_org(alice: HfApi) -> None:
    assert alice.create_repo("team/shared").repo_id == "team/shared"
    assert alice.model_info("team/shared").author == "team"


def test_upload_folder_inline_and_lfs(alice: HfApi, pushed: dict) -> None:
    info = alice.model_info("alice/pushed", files_metadata=True)
    assert info.sha == pushed["commit"].oid
    files = {s.rfilename: s for s in info.siblings}
    assert set(files) == {".gitattributes", "config.json", "sub/notes.txt", "weights.bin"}
    assert files["weights.bin"].lfs is not None and files["weights.bin"].lfs.size == BIG
    assert files["config.json"].lfs is None
    commits = alice.list_repo_commits("alice/pushed")
    assert commits[0].title == "first weights" and commits[0].commit_id == info.sha


def test_hf_hub_download_is_byte_identical(emu: Emulator, pushed: dict, tmp_path: Path) -> None:
    kw = {"repo_id": "alice/pushed", "endpoint": emu.url, "token": ALICE, "cache_dir": tmp_path}
    big = hf_hub_download(filename="weights.bin", **kw)
    assert Path(big).read_bytes() == pushed["big"]
    text = hf_hub_download(filename="sub/notes.txt", **kw)
    assert Path(text).read_text() == "a small regular file\n"


def test_snapshot_download_is_byte_identical(emu: Emulator, pushed: dict, tmp_path: Path) -> None:
    local = Path(snapshot_download("alice/pushed", endpoint=emu.url, token=ALICE, local_dir=tmp_path / "snap"))
    for rel in ("config.json", "sub/notes.txt", "weights.bin"):
        assert (local / rel).read_bytes() == (pushed["folder"] / rel).read_bytes()


def test_branch_upload_and_tag(alice: HfApi, emu: Emulator, pushed: dict, tmp_path: Path) -> None:
    alice.create_branch("alice/pushed", branch="dev")
    alice.upload_file(
        path_or_fileobj=b"dev only\n", path_in_repo="dev.txt", repo_id="alice/pushed", revision="dev",
        commit_message="dev file",
    )  # fmt: skip
    refs = alice.list_repo_refs("alice/pushed")
    branches = {b.name: b.target_commit for b in refs.branches}
    assert set(branches) == {"main", "dev"} and branches["main"] == pushed["commit"].oid
    assert "dev.txt" not in alice.list_repo_files("alice/pushed")
    assert "dev.txt" in alice.list_repo_files("alice/pushed", revision="dev")

    alice.create_tag("alice/pushed", tag="v1", revision="dev")
    refs = alice.list_repo_refs("alice/pushed")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", branches["dev"])]
    got = hf_hub_download("alice/pushed", "dev.txt", revision="v1", endpoint=emu.url, token=ALICE, cache_dir=tmp_path)
    assert Path(got).read_bytes() == b"dev only\n"
    with pytest.raises(HfHubHTTPError) as err:
        alice.create_tag("alice/pushed", tag="v1")
    assert err.value.response.status_code == 409


def test_write_without_token_is_401(emu: Emulator) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        HfApi(endpoint=emu.url, token=False).create_repo("alice/anon")
    assert err.value.response.status_code == 401


def test_read_only_token_is_403(emu: Emulator, alice: HfApi) -> None:
    reader = HfApi(endpoint=emu.url, token=ALICE_READ)
    with pytest.raises(HfHubHTTPError) as err:
        reader.create_repo("alice/read-only")
    assert err.value.response.status_code == 403
    alice.create_repo("alice/ro-target", exist_ok=True)
    with pytest.raises(HfHubHTTPError) as err:
        reader.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="alice/ro-target")
    assert err.value.response.status_code == 403


def test_foreign_namespace_is_403(alice: HfApi, emu: Emulator) -> None:
    with pytest.raises(HfHubHTTPError) as err:
        alice.create_repo("bob/not-yours")
    assert err.value.response.status_code == 403
    bob = HfApi(endpoint=emu.url, token=BOB)
    bob.create_repo("bob/public-thing")
    with pytest.raises(HfHubHTTPError) as err:
        alice.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="bob/public-thing")
    assert err.value.response.status_code == 403


def test_private_repo_invisible_to_others(emu: Emulator, pushed: dict, tmp_path: Path) -> None:
    bob = HfApi(endpoint=emu.url, token=BOB)
    with pytest.raises(RepositoryNotFoundError):
        bob.model_info("alice/pushed")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("alice/pushed", "config.json", endpoint=emu.url, token=BOB, cache_dir=tmp_path)


def test_invalid_repo_name_rejected_by_client(alice: HfApi) -> None:
    with pytest.raises(HFValidationError):
        alice.create_repo("alice/bad name!")
