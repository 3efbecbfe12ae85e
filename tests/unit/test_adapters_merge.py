"""Merging a LoRA adapter into its base (issue 16): a full model that answers like the adapter, never like the base;
its "Copy as code" snippet loads the base and the adapter with peft."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.training.merge import MergeError, merge
from tests.unit.test_adapters_loading import build_causal_adapter, build_classifier_adapter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def adapters_dir(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("merge-adapters")
    return {
        "causal": build_causal_adapter(tiny_models["gpt2"], root / "causal"),
        "classifier": build_classifier_adapter(tiny_models["bert-encoder"], root / "classifier"),
    }


def _untrained_adapter(base: Path, out: Path) -> Path:
    """A LoRA as peft initialises it (B = 0) and never trained: it changes nothing."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base)
    get_peft_model(model, LoraConfig(r=4, target_modules="all-linear", task_type="CAUSAL_LM")).save_pretrained(out)
    return out


def test_merge_saves_a_full_model_that_answers_like_the_adapter(settings, adapters_dir, tmp_path):
    from services.models.loading import ModelCache
    from services.pipelines import run_loaded

    out = tmp_path / "merged"
    result = merge(adapters_dir["causal"], out)
    assert result["output_dir"] == str(out) and result["task"] == "text-generation"
    assert result["merged_vs_adapter_max_abs_logit_diff"] <= result["tolerance"]
    assert result["reloaded_vs_memory_max_abs_logit_diff"] <= result["tolerance"]
    assert result["merged_vs_base_max_abs_logit_diff"] > result["tolerance"]
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists(), "a full model, not an adapter"
    assert (
        json.loads((out / "tokenizer_config.json").read_text()).get("chat_template")
        or (out / "chat_template.jinja").is_file()
    ), "the chat template saved with the tokenizer"
    # The merged folder and the adapter folder give the same greedy answer through the playground itself.
    from services.models import loading

    cache = ModelCache(budget_bytes=settings.model_memory_bytes)
    original = loading.model_cache
    loading.model_cache = lambda: cache
    try:
        messages = [{"role": "user", "content": "the movie was"}]
        answers = [
            run_loaded(
                loading.load(str(folder), "text-generation"),
                "text-generation",
                messages,
                max_new_tokens=6,
                do_sample=False,
            )
            for folder in (out, adapters_dir["causal"])
        ]
    finally:
        loading.model_cache = original
    assert answers[0] == answers[1]


def test_merge_a_classification_adapter_keeps_its_head_and_labels(settings, adapters_dir, tmp_path):
    from transformers import AutoModelForSequenceClassification

    out = tmp_path / "merged-classifier"
    result = merge(adapters_dir["classifier"], out)
    assert result["task"] == "text-classification"
    model = AutoModelForSequenceClassification.from_pretrained(out)
    assert model.config.id2label == {0: "negative", 1: "positive"}


def test_a_merged_model_that_behaves_like_the_base_is_refused(settings, tiny_models, tmp_path):
    adapter = _untrained_adapter(tiny_models["gpt2"], tmp_path / "untrained")
    with pytest.raises(MergeError, match="behaves like the base"):
        merge(adapter, tmp_path / "merged")
    assert not (tmp_path / "merged").exists() and not (tmp_path / "merged.partial").exists()


def test_merge_never_writes_over_files(settings, adapters_dir, tmp_path):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(MergeError, match="already holds files"):
        merge(adapters_dir["causal"], out)
    assert (out / "notes.txt").read_text() == "mine"


def test_merge_refuses_a_model_that_is_not_an_adapter(settings, tiny_models, tmp_path):
    with pytest.raises(MergeError, match="not a PEFT adapter"):
        merge(tiny_models["gpt2"], tmp_path / "x")


def test_the_cli_prints_the_figures_as_json(adapters_dir, tmp_path):
    env = {**os.environ, "PLAYGROUND_HOME": str(tmp_path / "home")}
    out = tmp_path / "merged-cli"
    done = subprocess.run(
        [sys.executable, "-m", "services", "lora", "merge", str(adapters_dir["causal"]), "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    assert (
        figures["merged_vs_adapter_max_abs_logit_diff"]
        <= figures["tolerance"]
        < figures["merged_vs_base_max_abs_logit_diff"]
    )
    again = subprocess.run(
        [sys.executable, "-m", "services", "lora", "merge", str(adapters_dir["causal"]), "--output", str(out)],
        cwd=ROOT, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert again.returncode == 2 and "already holds files" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize(("kind", "task", "inputs"), [
    ("classifier", "text-classification", "the movie was very good"),
    ("causal", "text-generation", [{"role": "user", "content": "the movie was"}]),
])  # fmt: skip
def test_copy_as_code_loads_the_base_and_the_adapter_with_peft(settings, adapters_dir, tmp_path, kind, task, inputs):
    """The snippet runs on its own (next to a copy of the adapter, as a download unzips) and gives the app's answer."""
    from services.models import catalog as models
    from services.pipelines import run
    from services.pipelines.codegen import snippet

    owner = "anon:alice"
    shutil.copytree(adapters_dir[kind], models.trained_root(owner) / "my-lora")
    params = {"max_new_tokens": 5} if task == "text-generation" else {}
    code = snippet(task, "trained:my-lora", inputs, params, owner)
    assert "PeftModel.from_pretrained(model, adapter_id)" in code and "adapter_id = './my-lora'" in code
    shutil.copytree(adapters_dir[kind], tmp_path / "run" / "my-lora")
    done = subprocess.run(
        [sys.executable, "-c", code + "\nimport json; print('@@' + json.dumps(result))"],
        cwd=tmp_path / "run", capture_output=True, text=True, timeout=300, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout.split("@@", 1)[1])
    expected = run(task, "trained:my-lora", inputs, owner=owner, do_sample=False, **params)
    if task == "text-classification":
        assert printed[0]["label"] == expected[0]["label"]
        assert printed[0]["score"] == pytest.approx(expected[0]["score"], abs=1e-4)
    else:
        assert printed[0]["generated_text"][-1] == expected[0]["generated_text"][-1]


def test_copy_as_code_for_a_task_the_adapter_cannot_do(settings, adapters_dir):
    from services.core.errors import TaskMismatch
    from services.pipelines.codegen import snippet

    with pytest.raises(TaskMismatch, match="cannot do question-answering"):
        snippet("question-answering", str(adapters_dir["classifier"]), {"question": "q", "context": "c"})


def test_copy_as_code_summarizes_with_a_chat_adapter(settings, adapters_dir, tmp_path):
    from services.pipelines.codegen import snippet

    code = snippet("summarization", str(adapters_dir["causal"]), "the movie was very good", {"max_new_tokens": 4})
    assert "apply_chat_template" in code and "PeftModel.from_pretrained" in code
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
