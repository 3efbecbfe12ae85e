"""Demo Spaces: the generated app runs on a real (tiny) model for each task, and the Space is pushed to the
emulated Hub as a new repo; a Space name that is already taken is refused and the existing Space is untouched."""

from __future__ import annotations

import runpy
from pathlib import Path

import huggingface_hub.constants as hf_constants
import pytest
import yaml
from huggingface_hub import snapshot_download

from services.core.errors import PlaygroundError
from services.hub.spaces import create_demo_space, space_files, space_name_for, write_space
from tests.hub_emulator import start_emulator

ALICE = "hf_write_alice_token"


def run_app(folder: Path, model: Path, monkeypatch) -> dict:
    """Import the generated app.py (it does not launch when imported) with MODEL_ID pointing at a local folder."""
    monkeypatch.setenv("MODEL_ID", str(model))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return runpy.run_path(str(folder / "app.py"), run_name="demo_space")


@pytest.fixture(scope="module")
def regression_model(tmp_path_factory, tiny_models) -> Path:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("regression")
    config = BertConfig.from_pretrained(tiny_models["bert-classifier"], num_labels=1, problem_type="regression")
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_models["bert-classifier"]).save_pretrained(folder)
    return folder


def test_a_classifier_demo_returns_a_label_per_class(tmp_path, tiny_models, monkeypatch):
    app = run_app(
        write_space(tmp_path, "alice/sentiment", "text-classification"), tiny_models["bert-classifier"], monkeypatch
    )
    scores = app["predict"]("What a lovely day")
    assert set(scores) == {"NEGATIVE", "POSITIVE"} and abs(sum(scores.values()) - 1) < 1e-5
    assert app["demo"].title == "sentiment demo"


def test_a_regression_demo_returns_one_number(tmp_path, regression_model, monkeypatch):
    app = run_app(write_space(tmp_path, "alice/scores", "text-regression"), regression_model, monkeypatch)
    assert isinstance(app["predict"]("A fine film"), float)


def test_an_ner_demo_returns_spans_inside_the_text(tmp_path, tiny_models, monkeypatch):
    app = run_app(write_space(tmp_path, "alice/ner", "token-classification"), tiny_models["bert-ner"], monkeypatch)
    text = "Ada Lovelace lived in London"
    out = app["predict"](text)
    assert out["text"] == text
    assert all(0 <= s["start"] < s["end"] <= len(text) and s["entity"] in {"PER", "LOC"} for s in out["entities"])


@pytest.mark.parametrize(("task", "model"), [("summarization", "t5"), ("causal-lm", "gpt2")])
def test_generation_demos_return_text(tmp_path, tiny_models, monkeypatch, task, model):
    app = run_app(write_space(tmp_path, f"alice/{model}", task), tiny_models[model], monkeypatch)
    assert isinstance(app["predict"]("Once upon a time"), str)


def test_the_readme_is_a_space_configuration(tmp_path):
    files = space_files("alice/my-model", "text-classification", title='My "best" model')
    meta = yaml.safe_load(files["README.md"].split("---")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["models"] == ["alice/my-model"]
    assert meta["title"] == 'My "best" model'
    assert "transformers>=" in files["requirements.txt"]
    compile(files["app.py"], "app.py", "exec")  # the title's quotes do not break the code


def test_a_task_without_a_demo_is_a_sentence():
    with pytest.raises(PlaygroundError, match="demo Space can be made for"):
        space_files("alice/x", "image-segmentation")


def test_default_space_names():
    assert space_name_for("alice/sentiment-minilm") == "sentiment-minilm-demo"
    assert space_name_for("runs/my model!") == "my-model--demo"


def test_a_demo_space_is_pushed_as_a_new_space_and_a_taken_name_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with start_emulator() as emu:
        monkeypatch.setattr(hf_constants, "ENDPOINT", emu.url)
        monkeypatch.setattr(
            hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", emu.url + "/{repo_id}/resolve/{revision}/{filename}"
        )
        result = create_demo_space(
            tmp_path / "space", "alice/sentiment", "text-classification", "alice/demo", token=ALICE
        )
        assert result["url"].endswith("/spaces/alice/demo") and result["repo_type"] == "space"
        back = Path(snapshot_download("alice/demo", repo_type="space", token=ALICE, local_dir=tmp_path / "back"))
        assert (back / "app.py").read_text() == (tmp_path / "space" / "app.py").read_text()

        with pytest.raises(PlaygroundError, match="already taken"):
            create_demo_space(tmp_path / "other", "alice/ner", "token-classification", "alice/demo", token=ALICE)
        again = Path(snapshot_download("alice/demo", repo_type="space", token=ALICE, local_dir=tmp_path / "again"))
        assert "alice/sentiment" in (again / "app.py").read_text()  # the first Space is untouched


def test_a_chat_adapter_demo_loads_base_and_adapter_and_answers(tmp_path, tiny_chat_model, monkeypatch):
    """A LoRA chat adapter (issue 16, "Share"): the Space's transformers loads the base its adapter_config names
    and puts the adapter on it; the answer is the reply only, rendered with the chat template."""
    from tests.unit.test_lora_compare import build_chat_adapter

    adapter = build_chat_adapter(tiny_chat_model, tmp_path / "adapter")
    (adapter / "playground-model.json").write_text('{"task": "chat"}')
    from services.hub.spaces import task_of

    assert task_of(adapter) == "chat"
    folder = write_space(tmp_path / "space", "alice/days-adapter", "chat")
    assert "peft" in (folder / "requirements.txt").read_text()
    app = run_app(folder, adapter, monkeypatch)
    assert type(app["model"]).__name__ == "LlamaForCausalLM" and hasattr(app["model"], "peft_config")
    answer = app["predict"]("the cat sat")
    assert isinstance(answer, str) and "<|im_start|>" not in answer and "the cat sat" not in answer
