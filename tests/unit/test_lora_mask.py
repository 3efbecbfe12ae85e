"""The loss mask before training: tokens with their trained flag and counts (service and `lora mask` CLI), the
refusal when no token is trained, and the warning when the end-of-turn / EOS token is masked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from services.training.common import TrainingError
from services.training.config import TrainConfig
from services.training.mask import loss_mask

ROOT = Path(__file__).resolve().parents[2]


def job(model: Path, **extra) -> dict:
    return {"task": "chat", "model": str(model), "dataset": {"source": "samples/chat-days"}, "lora": {}, **extra}


def test_the_mask_trains_the_answer_and_its_end_of_turn(tiny_chat_model):
    result = loss_mask(TrainConfig.from_dict(job(tiny_chat_model)), examples=2)
    assert len(result["examples"]) == 2 and result["columns"] == {"prompt": "prompt", "completion": "completion"}
    first = result["examples"][0]
    trained = "".join(t["token"] for t in first["tokens"] if t["trained"])
    masked = "".join(t["token"] for t in first["tokens"] if not t["trained"])
    assert trained.strip().startswith(("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"))
    assert "<|im_end|>" in trained and "Answer with the day only" in masked
    assert first["trained"] + first["masked"] == len(first["tokens"])
    assert result["counts"]["trained"] > 0 and result["counts"]["rows"] == 400
    assert not any("never learn to stop" in w for w in result["warnings"])


def test_the_cli_prints_the_mask_as_json(tiny_chat_model, tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(job(tiny_chat_model)))
    done = subprocess.run(
        [sys.executable, "-m", "services", "lora", "mask", str(path), "--examples", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    printed = json.loads(done.stdout)
    assert {"trained", "token", "id"} <= set(printed["examples"][0]["tokens"][0]) and printed["counts"]["trained"]


def test_a_run_where_no_token_is_trained_is_refused(tiny_chat_model, tmp_path):
    # A max_length that stops before any answer: every label would be -100.
    config = TrainConfig.from_dict(job(tiny_chat_model, max_length=8))
    with pytest.raises(TrainingError, match="all labels -100"):
        loss_mask(config)
    from services.training.train import train

    config.output_dir = str(tmp_path / "out")
    with pytest.raises(TrainingError, match="No token would be trained"):
        train(config)


def test_a_masked_end_of_turn_token_is_warned_about(tiny_chat_model):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    # A template that never closes the assistant's turn: the model could not learn to stop.
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}"
        "{% if m['role'] != 'assistant' %}<|im_end|>\n{% endif %}{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    result = loss_mask(TrainConfig.from_dict(job(tiny_chat_model)), tokenizer=tokenizer)
    assert any("never learn to stop" in w for w in result["warnings"])


def test_a_model_without_a_chat_template_gets_the_default_and_is_told(tiny_models):
    result = loss_mask(TrainConfig.from_dict(job(tiny_models["gpt2"])), examples=1)
    assert any("has no chat template" in w for w in result["warnings"])
    assert result["counts"]["trained"] > 0
