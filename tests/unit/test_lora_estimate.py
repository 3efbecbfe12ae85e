"""The LoRA estimate before launch: the model's real linear layers, trainable parameters equal to peft's count on
the real model, memory that grows with batch size, max_length and vocabulary, the trainer's sentence for a target
module that does not exist, and a JSON-friendly result."""

from __future__ import annotations

import json

import pytest

from services.training.common import TrainingError
from services.training.config import TrainConfig
from services.training.estimate import estimate


def chat(model, lora=None, **training) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "task": "chat",
            "model": str(model),
            "dataset": {"source": "samples/chat-days", "eval_split": 0.1, "max_samples": 24},
            "lora": lora or {"r": 4, "alpha": 8, "target_modules": "all-linear"},
            "max_length": 64,
            "training": {"per_device_train_batch_size": 4, "num_train_epochs": 2, **training},
        }
    )


def classifier(model, lora=None) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "task": "text-classification",
            "model": str(model),
            "dataset": {"source": "samples/sentiment", "label_column": "label"},
            "lora": lora or {"r": 8, "alpha": 16, "target_modules": ["query", "value"]},
        }
    )


def peft_count(config: TrainConfig, model):
    from services.training.lora_config import wrap

    return wrap(config, model).get_nb_trainable_parameters()


@pytest.mark.parametrize(
    "lora",
    [
        {"r": 4, "alpha": 8, "target_modules": "all-linear"},
        {"r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        {"r": 2, "alpha": 4, "target_modules": ["o_proj", "down_proj"], "use_dora": True},
    ],
)
def test_chat_trainable_count_equals_peft(tiny_chat_model, lora):
    from transformers import AutoModelForCausalLM

    config = chat(tiny_chat_model, lora)
    result = estimate(config)
    trainable, total = peft_count(config, AutoModelForCausalLM.from_pretrained(tiny_chat_model))
    assert result["trainable_parameters"] == trainable
    assert result["total_parameters"] + result["trainable_parameters"] == total
    assert {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"} <= set(
        result["linear_layers"]
    )
    assert "all-linear" in result["linear_layers"] and "lm_head" not in result["linear_layers"]
    expected = result["linear_layers"][:-1] if lora["target_modules"] == "all-linear" else lora["target_modules"]
    assert result["selected_modules"] == expected
    assert 0 < result["trainable_percent"] < 100


def test_classifier_count_includes_the_saved_head(tiny_models):
    from transformers import AutoModelForSequenceClassification

    config = classifier(tiny_models["bert-classifier"])
    result = estimate(config)
    model = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert-classifier"])
    trainable, total = peft_count(config, model)
    assert result["modules_to_save"] == ["classifier"]
    assert result["trainable_parameters"] == trainable
    assert result["total_parameters"] + trainable == total
    lora_only = estimate(classifier(tiny_models["bert-classifier"], {"r": 8, "target_modules": ["value"]}))
    assert lora_only["trainable_parameters"] < result["trainable_parameters"]
    assert result["time"]["train_rows"] and result["time"]["total_steps"] > 0


def test_memory_grows_with_batch_size_max_length_and_vocabulary(tiny_chat_model):
    small = estimate(chat(tiny_chat_model))
    bigger_batch = estimate(chat(tiny_chat_model, per_device_train_batch_size=16))
    longer = chat(tiny_chat_model)
    longer.max_length = 256
    longer = estimate(longer)
    for bigger in (bigger_batch, longer):
        assert bigger["memory"]["activations"] > small["memory"]["activations"]
        assert bigger["memory"]["logits"] > small["memory"]["logits"]
        assert bigger["memory"]["total"] > small["memory"]["total"]
        assert bigger["time"]["tokens_per_step"] > small["time"]["tokens_per_step"]
    assert bigger_batch["memory"]["logits"] == 4 * small["memory"]["logits"]  # batch 4 -> 16
    assert small["memory"]["logits"] == 4 * 64 * 4 * _vocab(tiny_chat_model)
    assert small["memory"]["weights"] == small["total_parameters"] * 4  # saved in float32
    assert small["memory"]["adapter_and_optimizer"] == 16 * small["trainable_parameters"]
    acts = small["activations"]
    assert acts["with_checkpointing"] < acts["without_checkpointing"]
    checkpointed = estimate(chat(tiny_chat_model, activation_checkpointing=True))
    assert checkpointed["memory"]["activations"] == acts["with_checkpointing"]


def test_the_logits_term_scales_with_the_vocabulary(tiny_chat_model, tmp_path):
    import shutil

    from transformers import AutoConfig

    folder = tmp_path / "big-vocab"
    shutil.copytree(tiny_chat_model, folder)
    base = AutoConfig.from_pretrained(folder)
    base.vocab_size *= 10
    base.save_pretrained(folder)
    small = estimate(chat(tiny_chat_model))
    big = estimate(chat(folder))
    assert big["memory"]["logits"] == 10 * small["memory"]["logits"]
    assert big["total_parameters"] > small["total_parameters"]


def test_fit_sentence_and_steps(tiny_chat_model, monkeypatch):
    result = estimate(chat(tiny_chat_model))
    assert result["fits"] and result["sentence"].startswith("fits: about ")
    rows = result["time"]["train_rows"]
    assert rows == 24 and result["time"]["total_steps"] == 2 * 6  # 24 rows / batch 4, two epochs
    assert result["time"]["seconds_per_step"] > 0 and result["time"]["total_seconds"] is not None
    assert estimate(chat(tiny_chat_model, max_steps=7))["time"]["total_steps"] == 7
    from services.training import estimate as module

    monkeypatch.setattr(module, "_free_bytes", lambda cuda: 1000)
    tight = estimate(chat(tiny_chat_model))
    assert not tight["fits"] and tight["sentence"].startswith("does not fit:")
    assert "batch size" in tight["sentence"] and "max_length" in tight["sentence"]


def test_unknown_steps_are_none_for_a_hub_dataset(tiny_chat_model):
    config = chat(tiny_chat_model)
    config.dataset.source = "someone/some-chats"
    result = estimate(config)
    assert result["time"]["train_rows"] is None and result["time"]["total_steps"] is None
    assert result["time"]["total_seconds"] is None


def test_a_missing_target_module_gets_the_trainers_sentence(tiny_chat_model):
    from transformers import AutoModelForCausalLM

    from services.training.lora_config import peft_config

    config = chat(tiny_chat_model, {"target_modules": ["query", "v_proj"]})
    with pytest.raises(TrainingError) as trainer_error:
        peft_config(config, AutoModelForCausalLM.from_pretrained(tiny_chat_model))
    with pytest.raises(TrainingError) as estimate_error:
        estimate(config)
    assert str(estimate_error.value) == str(trainer_error.value)
    assert "'query'" in str(estimate_error.value) and "q_proj" in str(estimate_error.value)


def test_a_config_without_lora_is_refused(tiny_chat_model):
    config = chat(tiny_chat_model)
    config.lora = None
    with pytest.raises(TrainingError, match="add a lora: section"):
        estimate(config)


def test_the_result_is_json(tiny_chat_model, tiny_models):
    for config in (chat(tiny_chat_model), classifier(tiny_models["bert-classifier"])):
        result = estimate(config)
        assert json.loads(json.dumps(result)) == result


def _vocab(folder) -> int:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(folder).vocab_size
