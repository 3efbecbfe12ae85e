"""LoRA training end to end on tiny random models: a chat job through the CLI with trl's SFTTrainer (the adapter,
tokenizer with its chat template, metrics, report, card, job.yaml, events; reloaded with peft), the assistant-only
loss, resume from an adapter checkpoint, a classifier LoRA with its head saved, and the refusals."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.training.common import TrainingError
from services.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def chat_config(model: Path, out: Path, **extra) -> dict:
    return {
        "task": "chat",
        "model": str(model),
        "dataset": {"source": "samples/chat-days", "eval_split": 0.1, "max_samples": 24},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"},
        "max_length": 64,
        "training": {"max_steps": 3, "per_device_train_batch_size": 4, "logging_steps": 1, "seed": 0},
        "output_dir": str(out),
        **extra,
    }


def test_a_chat_lora_job_trains_through_the_cli_and_reloads_with_peft(tiny_chat_model, tmp_path):
    out = tmp_path / "adapter"
    job = tmp_path / "job.yaml"
    job.write_text(yaml.safe_dump(chat_config(tiny_chat_model, out)))
    done = subprocess.run(
        [sys.executable, "-m", "services", "train", str(job)], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-2000:]
    for name in ("adapter_config.json", "adapter_model.safetensors", "metrics.json", "report.json", "README.md",
                 "job.yaml", "events.jsonl", "tokenizer_config.json"):  # fmt: skip
        assert (out / name).is_file(), name
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()  # not a copy of the base
    logged = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert any(e["type"] == "progress" for e in logged) and any("loss" in (e.get("values") or {}) for e in logged)
    card = (out / "README.md").read_text()
    assert "assistant's turns only" in card  # a chat adapter's loss
    assert "library_name: peft" in card and "base_model:" in card and "PeftModel.from_pretrained" in card
    report = json.loads((out / "report.json").read_text())
    assert report["samples"] and {"base", "adapter", "expected"} <= set(report["samples"][0])

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template and "<|im_start|>" in tokenizer.chat_template  # the template travels along
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_chat_model), out)
    assert model.peft_config["default"].r == 4
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_the_loss_is_on_assistant_turns_only_by_default_and_resume_continues(tiny_chat_model, tmp_path):
    from services.training.train import train

    out = tmp_path / "adapter"
    config = TrainConfig.from_dict(
        chat_config(tiny_chat_model, out, keep_checkpoints=True, early_stopping_patience=None)
    )
    summary = train(config)
    assert summary["steps"] == 3 and (out / "adapter_model.safetensors").is_file()
    checkpoints = sorted((out / "checkpoints").glob("checkpoint-*"))
    assert checkpoints and (checkpoints[-1] / "adapter_model.safetensors").is_file()

    more = chat_config(tiny_chat_model, out, resume=True, keep_checkpoints=True, early_stopping_patience=None)
    more["training"] = {**more["training"], "max_steps": 5}
    resumed = train(TrainConfig.from_dict(more))
    assert resumed["steps"] == 5  # continued from the adapter checkpoint, not from full weights


def test_the_trained_labels_are_the_assistant_tokens(tiny_chat_model):
    from transformers import AutoTokenizer

    from services.training.chat_data import tokenise

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    from datasets import Dataset

    rows = Dataset.from_dict({"prompt": ["what is the capital of france ?"], "completion": ["paris"]})
    config = TrainConfig.from_dict(chat_config(tiny_chat_model, "unused"))
    data, _ = tokenise(rows, config, tokenizer)
    ids, labels = data[0]["input_ids"], data[0]["labels"]
    trained = tokenizer.decode([t for t, label in zip(ids, labels, strict=True) if label != -100])
    assert trained.startswith("paris") and "<|im_end|>" in trained and "france" not in trained
    config.loss_on = "all"
    data, _ = tokenise(rows, config, tokenizer)
    assert -100 not in data[0]["labels"]


def test_a_text_classification_lora_saves_the_classifier_head(tiny_models, tmp_path):
    from services.training.train import train

    out = tmp_path / "cls"
    config = TrainConfig.from_dict(
        {
            "task": "text-classification",
            "model": str(tiny_models["bert-classifier"]),
            "dataset": {"source": "samples/sentiment", "label_column": "label", "max_samples": 32},
            "lora": {"r": 4, "alpha": 8, "target_modules": ["query", "value"]},
            "max_length": 32,
            "training": {"max_steps": 2, "per_device_train_batch_size": 8},
            "output_dir": str(out),
        }
    )
    train(config)
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert "classifier" in (adapter["modules_to_save"] or [])
    card = (out / "README.md").read_text()
    assert "head is trained in full" in card and "assistant" not in card  # not a chat adapter's words
    from safetensors import safe_open

    with safe_open(out / "adapter_model.safetensors", "pt") as weights:
        assert any("classifier" in k for k in weights.keys())  # noqa: SIM118 (not a dict)
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert-classifier"], num_labels=2)
    assert PeftModel.from_pretrained(base, out).peft_config["default"].task_type == "SEQ_CLS"


def test_target_modules_that_the_model_lacks_are_named_with_those_it_has(tiny_chat_model, tmp_path):
    from services.training.train import train

    raw = chat_config(tiny_chat_model, tmp_path / "x")
    raw["lora"]["target_modules"] = ["query_key_value"]
    with pytest.raises(TrainingError, match=r"no linear layer called 'query_key_value'.*q_proj"):
        train(TrainConfig.from_dict(raw))


def test_qlora_is_refused_where_bitsandbytes_cannot_run(tiny_chat_model, tmp_path):
    import torch

    from services.training.lora_config import check_quantization

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    config = TrainConfig.from_dict(chat_config(tiny_chat_model, tmp_path / "q", quantization="4bit"))
    with pytest.raises(TrainingError, match="needs a CUDA GPU"):
        check_quantization(config)


@pytest.mark.slow
def test_smollm2_trains_a_few_lora_steps(tmp_path):
    from services.models import packs
    from services.training.train import train

    if not packs.PACKS["smollm2-135m-instruct"].installed:
        pytest.skip("the SmolLM2 package is not installed")
    raw = chat_config("smollm2-135m-instruct", tmp_path / "smol")
    raw["lora"]["target_modules"] = ["q_proj", "v_proj"]
    raw["dataset"]["max_samples"] = 8
    raw["training"] = {"max_steps": 2, "per_device_train_batch_size": 2}
    summary = train(TrainConfig.from_dict(raw))
    assert summary["steps"] == 2 and (tmp_path / "smol" / "adapter_model.safetensors").is_file()
    # The adapter names its base as anyone can load it (the Hub id), never this machine's converted folder; no
    # pickled training_args.bin is left beside it (a push would publish it).
    config = json.loads((tmp_path / "smol" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == packs.PACKS["smollm2-135m-instruct"].hub_id
    assert not (tmp_path / "smol" / "training_args.bin").exists()
    from services.models.catalog import resolve

    resolved = resolve(str(tmp_path / "smol"))
    assert resolved.source == "adapter" and resolved.base.id == "smollm2-135m-instruct"  # read back as the pack
