"""`services.hub.push.push` for real, against the local Hub emulator: each push downloaded back and compared,
branches, private repos, the refusals said in words, and the token nowhere it should not be.

The client is pointed at the emulator by patching what HF_ENDPOINT sets at import
(`huggingface_hub.constants.ENDPOINT`, read by `HfApi()`, and the download URL template) and switched online for this
module only; see tests/unit/test_hub_emulator.py for why that is enough.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
from huggingface_hub import ModelCard, snapshot_download

from services.core.errors import PlaygroundError
from services.hub.cards import write_tokenizer_card
from services.hub.push import push
from tests.hub_emulator import Emulator, start_emulator

ALICE = "hf_write_alice_token"
ALICE_READ = "hf_read_alice_token"
BOB = "hf_write_bob_token"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        mp.setattr(hf_constants, "HF_HUB_DISABLE_TELEMETRY", True)
        with start_emulator() as emulator:
            # What HF_ENDPOINT sets at import: the API endpoint and the download URL template built from it.
            mp.setattr(hf_constants, "ENDPOINT", emulator.url)
            mp.setattr(
                hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", emulator.url + "/{repo_id}/resolve/{revision}/{filename}"
            )
            yield emulator


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    (folder / "README.md").write_text("# A model made in HF Playground\n")
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 45_000)  # 11.5 MB: goes through LFS
    return folder


def same_files(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    other = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and ".cache" not in p.parts)
    other = [n for n in other if n != ".gitattributes"]
    return names == other and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def download(emu: Emulator, repo_id: str, tmp_path: Path, repo_type: str = "model", revision: str | None = None):
    return Path(
        snapshot_download(
            repo_id,
            repo_type=repo_type,
            revision=revision,
            endpoint=emu.url,
            token=ALICE,
            local_dir=tmp_path / f"back-{repo_type}-{revision}",
        )
    )


def test_a_model_folder_is_pushed_and_comes_back_byte_for_byte(emu, model_dir, tmp_path):
    result = push(model_dir, "alice/pushed-model", message="First version", token=ALICE)
    assert result["url"].endswith("/alice/pushed-model") and len(result["commit"]) == 40
    assert result["files"] == 3 and result["revision"] == "main"
    assert same_files(model_dir, download(emu, "alice/pushed-model", tmp_path))


def test_a_new_revision_goes_to_its_branch_and_main_is_untouched(emu, model_dir, tmp_path):
    first = push(model_dir, "alice/branchy", token=ALICE)
    (model_dir / "README.md").write_text("# Version 2\n")
    second = push(model_dir, "alice/branchy", revision="v2-experiment", token=ALICE)
    assert second["revision"] == "v2-experiment" and second["commit"] != first["commit"]
    assert (download(emu, "alice/branchy", tmp_path, revision="v2-experiment") / "README.md").read_text() == (
        "# Version 2\n"
    )
    assert (download(emu, "alice/branchy", tmp_path) / "README.md").read_text() == "# A model made in HF Playground\n"


@pytest.mark.parametrize("repo_type", ["dataset", "space"])
def test_datasets_and_spaces_are_pushed_as_their_repo_type(emu, tmp_path, repo_type):
    folder = tmp_path / "thing"
    folder.mkdir()
    (folder / ("app.py" if repo_type == "space" else "data.csv")).write_text("text,label\nhi,1\n")
    push(folder, f"alice/a-{repo_type}", repo_type=repo_type, token=ALICE)
    assert same_files(folder, download(emu, f"alice/a-{repo_type}", tmp_path, repo_type=repo_type))


def test_a_private_repo_is_private(emu, model_dir):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    push(model_dir, "alice/secret-model", private=True, token=ALICE)
    assert HfApi(endpoint=emu.url, token=ALICE).model_info("alice/secret-model").private is True
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=emu.url, token=BOB).model_info("alice/secret-model")


def test_a_single_file_can_be_pushed(emu, tmp_path):
    file = tmp_path / "tokenizer.json"
    file.write_text('{"version": "1.0"}')
    push(file, "alice/one-file", token=ALICE)
    assert (download(emu, "alice/one-file", tmp_path) / "tokenizer.json").read_text() == '{"version": "1.0"}'


@pytest.mark.parametrize(
    ("repo_id", "token", "words"),
    [
        ("alice/read-only", ALICE_READ, "cannot write"),
        ("bob/not-yours", ALICE, "cannot write"),
        ("alice/whoever", "hf_this_token_does_not_exist", "refused the token"),
    ],
)
def test_refusals_are_sentences_and_nothing_is_lost(emu, model_dir, repo_id, token, words):
    before = {p: p.read_bytes() for p in model_dir.iterdir()}
    with pytest.raises(PlaygroundError, match=words) as err:
        push(model_dir, repo_id, token=token)
    assert "Traceback" not in str(err.value) and token not in str(err.value)
    assert {p: p.read_bytes() for p in model_dir.iterdir()} == before  # everything stays on disk


def test_a_trained_tokenizer_is_pushed_and_loads_back(emu, tmp_path, settings):
    from transformers import AutoTokenizer

    from services.tokenizers.training import TokenizerTrainConfig, train

    folder = tmp_path / "tok"
    train(TokenizerTrainConfig(name="tok", model="bpe", vocab_size=300), folder)
    write_tokenizer_card(folder, "alice/my-tokenizer")
    push(folder, "alice/my-tokenizer", token=ALICE)
    back = download(emu, "alice/my-tokenizer", tmp_path)
    card = ModelCard.load(back / "README.md")
    assert card.data.library_name == "transformers" and "tokenizer" in card.data.tags
    assert 'AutoTokenizer.from_pretrained("alice/my-tokenizer")' in card.text and "BPE" in card.text
    text = "Tokenizers from the playground"
    assert (
        AutoTokenizer.from_pretrained(back)(text)["input_ids"]
        == AutoTokenizer.from_pretrained(folder)(text)["input_ids"]
    )


def test_a_push_job_keeps_the_token_out_of_records_logs_and_files(emu, model_dir, manager, tmp_path):
    owner = "anon:pusher"
    job_id = manager.submit_command(
        "push",
        owner,
        ["push", "--owner", owner, "--repo-id", "alice/from-a-job", "--message", "via a job", "--", str(model_dir)],
        title="Push",
        config={"repo_id": "alice/from-a-job"},
        env={
            "PLAYGROUND_PUSH_TOKEN": ALICE,
            "HF_ENDPOINT": emu.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_OFFLINE": "0",
        },
    )
    record = manager.wait(job_id, timeout=120)
    assert record.status == "succeeded", (record.error, manager.logs(job_id, owner))
    assert record.result["url"].endswith("/alice/from-a-job")
    stored = json.dumps(record.to_dict()) + "\n".join(manager.logs(job_id, owner, tail=10_000))
    stored += json.dumps(manager.events(job_id, owner))
    for path in (manager.jobs_dir / job_id).rglob("*"):
        if path.is_file():
            stored += path.read_text(errors="ignore")
    assert ALICE not in stored
    pushed = download(emu, "alice/from-a-job", tmp_path)
    assert all(ALICE.encode() not in p.read_bytes() for p in pushed.rglob("*") if p.is_file())


def test_a_push_can_tag_its_commit_and_a_taken_tag_is_a_sentence(emu, model_dir, tmp_path):
    from huggingface_hub import HfApi

    result = push(model_dir, "alice/tagged", tag="v1", token=ALICE)
    refs = HfApi(endpoint=emu.url, token=ALICE).list_repo_refs("alice/tagged")
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", result["commit"])]
    assert (download(emu, "alice/tagged", tmp_path, revision="v1") / "README.md").exists()
    with pytest.raises(PlaygroundError, match="tag 'v1' already exists"):
        push(model_dir, "alice/tagged", tag="v1", token=ALICE)


def test_a_failed_push_job_is_started_again_with_a_token_handed_over_again(emu, model_dir, manager):
    owner = "anon:retrier"
    hub_env = {"HF_ENDPOINT": emu.url, "HF_HUB_DISABLE_XET": "1", "HF_HUB_OFFLINE": "0"}
    args = ["push", "--owner", owner, "--repo-id", "alice/retried", "--", str(model_dir)]
    first = manager.submit_command(
        "push", owner, args, title="Push", env={**hub_env, "PLAYGROUND_PUSH_TOKEN": ALICE_READ}
    )
    assert manager.wait(first, timeout=120).status == "failed"
    with pytest.raises(PlaygroundError):
        manager.retry(first, "anon:someone-else", {})  # not theirs
    second = manager.retry(first, owner, {**hub_env, "PLAYGROUND_PUSH_TOKEN": ALICE})
    record = manager.wait(second, timeout=120)
    assert second != first and record.status == "succeeded", record.error
    assert record.result["repo_id"] == "alice/retried" and record.title == "Push"
    with pytest.raises(PlaygroundError, match="Only a job that failed"):
        manager.retry(second, owner, {})


def test_a_fine_tuned_model_is_pushed_with_its_card_and_loads_back(emu, tmp_path, settings, tiny_models):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from services.training.config import TrainConfig
    from services.training.jobs import refresh_model_card
    from services.training.train import train

    rows = "text,label\n" + "".join(f"good {i},pos\nbad {i},neg\n" for i in range(12))
    (tmp_path / "d.csv").write_text(rows)
    folder = tmp_path / "model"
    config = {
        "task": "text-classification",
        "model": str(tiny_models["bert-encoder"]),
        "dataset": {"source": str(tmp_path / "d.csv"), "label_column": "label"},
        "max_length": 16,
        "training": {"num_train_epochs": 1},
        "output_dir": str(folder),
    }
    train(TrainConfig.from_dict(config))
    refresh_model_card(folder, "alice/fine-tuned")
    result = push(folder, "alice/fine-tuned", token=ALICE)
    back = download(emu, "alice/fine-tuned", tmp_path)
    card = ModelCard.load(back / "README.md")
    assert card.data.model_name == "fine-tuned" and card.data.pipeline_tag == "text-classification"
    assert {r.metric_type for r in card.data.eval_results} >= {"accuracy", "f1"}
    assert 'from_pretrained("alice/fine-tuned")' in card.text and result["files"] >= 8
    tokenizer = AutoTokenizer.from_pretrained(back)
    inputs = tokenizer("good 3", return_tensors="pt")
    with torch.no_grad():
        here = AutoModelForSequenceClassification.from_pretrained(folder)(**inputs).logits
        there = AutoModelForSequenceClassification.from_pretrained(back)(**inputs).logits
    assert torch.equal(here, there)
    assert AutoModelForSequenceClassification.from_pretrained(back).config.id2label == {0: "neg", 1: "pos"}


def test_a_rag_collection_is_pushed_as_a_dataset_with_its_card(emu, tmp_path, settings):
    import numpy as np
    from huggingface_hub import DatasetCard

    from services.hub.cards import write_collection_card
    from services.rag import answer as rag

    doc = Path(__file__).resolve().parents[2] / "bench" / "rag_eval" / "docs" / "nebuloscope.md"
    rag.ingest("instruments", [doc], "anon:sharer")
    folder = rag.open_collection("instruments", "anon:sharer").folder
    write_collection_card(folder, "alice/instruments")
    push(folder, "alice/instruments", repo_type="dataset", token=ALICE)
    back = download(emu, "alice/instruments", tmp_path, repo_type="dataset")
    assert sorted(p.name for p in back.iterdir() if p.is_file() and p.name != ".gitattributes") == [
        "README.md",
        "chunks.sqlite",
        "ids.npy",
        "vectors.npy",
    ]
    assert np.array_equal(np.load(back / "vectors.npy"), np.load(folder / "vectors.npy"))
    card = DatasetCard.load(back / "README.md")
    assert "rag" in card.data.tags and "nebuloscope.md" in card.text
