"""The LoRA config contract: `task: chat`, `lora:`, `loss_on`, `quantization`, the chat columns, and each bad input
refused with a sentence (r = 0, negative alpha, dropout >= 1, no chat-like column, roles, empty answers)."""

from __future__ import annotations

import pytest
from datasets import Dataset

from services.data.sources import DatasetError
from services.training.config import ConfigError, TrainConfig


def config(**extra) -> TrainConfig:
    raw = {"task": "chat", "model": "smollm2-135m-instruct", "dataset": {"source": "samples/chat-extract"}}
    for key, value in extra.items():
        if key == "dataset":
            raw["dataset"] = {**raw["dataset"], **value}
        else:
            raw[key] = value
    return TrainConfig.from_dict(raw)


def test_the_yaml_contract_round_trips():
    c = config(
        lora={"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear", "use_dora": True,
              "use_rslora": True, "init": "pissa"},
        loss_on="all", max_length=512, dataset={"messages_column": "messages", "eval_split": 0.1},
    )  # fmt: skip
    again = TrainConfig.from_yaml(c.to_yaml())
    assert again.lora == c.lora and again.lora.use_dora and again.lora.init == "pissa"
    assert again.loss_on == "all" and again.dataset.messages_column == "messages"
    assert config(lora={"target_modules": ["q_proj", "v_proj"]}).lora.target_modules == ["q_proj", "v_proj"]
    assert config(lora={}).loss_on == "completion"  # the assistant's turns by default


@pytest.mark.parametrize(
    ("lora", "words"),
    [
        ({"r": 0}, "r must be at least 1"),
        ({"alpha": -1}, "alpha must be more than 0"),
        ({"dropout": 1.0}, "dropout must be at least 0 and below 1"),
        ({"init": "magic"}, "init must be one of"),
        ({"rank": 8}, "'rank' is not a lora setting"),
    ],
)
def test_bad_lora_settings_are_sentences(lora, words):
    with pytest.raises(ConfigError, match=words):
        config(lora=lora)


def test_bad_top_level_settings_are_sentences():
    with pytest.raises(ConfigError, match="loss_on must be completion"):
        config(lora={}, loss_on="answers")
    with pytest.raises(ConfigError, match="4bit or 8bit"):
        config(lora={}, quantization="3bit")
    with pytest.raises(ConfigError, match="through an adapter"):
        config(quantization="4bit")


def test_visitors_may_set_lora_keys_with_a_bounded_rank(monkeypatch):
    from services.training.policy import check_for_visitors

    check_for_visitors(config(lora={"r": 8}, loss_on="all", training={"packing": False}))
    with pytest.raises(ConfigError, match="at most 256"):
        check_for_visitors(config(lora={"r": 1024}))


def rows(**columns) -> Dataset:
    return Dataset.from_list([columns])


def test_chat_like_columns_are_recognised_and_mapped():
    from services.training.chat_data import conversations

    turns, columns = conversations(rows(instruction="Add", input="2 and 3", output="5"), config())
    assert columns == {"prompt": "instruction", "completion": "output", "input": "input"}
    assert turns[0] == [{"role": "user", "content": "Add\n\n2 and 3"}, {"role": "assistant", "content": "5"}]
    turns, _ = conversations(
        rows(q="Hi?", a="Hello"), config(dataset={"prompt_column": "q", "completion_column": "a"})
    )
    assert turns[0][1] == {"role": "assistant", "content": "Hello"}
    messages = [{"role": "User", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    assert conversations(rows(messages=messages), config())[0][0][0]["role"] == "user"


def test_a_file_without_a_chat_like_column_names_the_columns_found():
    from services.training.chat_data import conversations

    with pytest.raises(DatasetError, match="the columns are text, label"):
        conversations(rows(text="x", label="y"), config())


@pytest.mark.parametrize(
    ("messages", "words"),
    [
        ([{"role": "robot", "content": "x"}, {"role": "assistant", "content": "y"}], "role 'robot' is unknown"),
        ([{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}], "out of order"),
        ([{"role": "user", "content": "x"}, {"role": "user", "content": "y"}], "out of order"),
        ([{"role": "user", "content": "x"}, {"role": "assistant", "content": "  "}], "assistant's turn is empty"),
        ([{"role": "user", "content": "x"}], "no assistant turn"),
        ([{"role": "user", "content": "x"}, {"role": "system", "content": "s"}], "system turn may only come first"),
    ],
)
def test_roles_unknown_or_out_of_order_and_empty_answers_are_refused(messages, words):
    from services.training.chat_data import conversations

    with pytest.raises(DatasetError, match=words):
        conversations(rows(messages=messages), config())


def test_the_bundled_chat_samples_have_held_back_test_splits():
    from services.data.sources import chat_sample_ids, load
    from services.training.chat_data import conversations

    assert {"samples/chat-extract", "samples/chat-days"} <= set(chat_sample_ids())
    for sample, mapping in (("samples/chat-extract", {}), ("samples/chat-days", {})):
        data = load(sample)
        assert data["train"].num_rows >= 200 and data["test"].num_rows >= 50
        train, _ = conversations(data["train"], config(dataset={"source": sample, **mapping}))
        test, _ = conversations(data["test"], config(dataset={"source": sample, **mapping}))
        prompts = {t[-2]["content"] for t in train}
        assert not prompts & {t[-2]["content"] for t in test}  # held back: no test prompt is a training one


def test_cpu_sft_settings_turn_off_what_trl_turns_on_for_gpus(tmp_path):
    import torch

    from services.training.lora import _sft_args

    if torch.cuda.is_available():
        pytest.skip("CPU defaults")
    args = _sft_args(config(lora={}), tmp_path, cuda=False)
    assert not args.activation_checkpointing and not args.bf16 and args.learning_rate == 2e-4
    assert args.max_length == 128 and not args.assistant_only_loss


def test_a_wild_learning_rate_gets_the_range_for_its_kind_of_training():
    with pytest.raises(ConfigError, match="a LoRA adapter uses about 1e-4 to 1e-3"):
        config(training={"learning_rate": 0.5}, lora={"r": 8})
    with pytest.raises(ConfigError, match="fine-tuning uses about 1e-5 to 5e-4"):
        TrainConfig.from_dict({"task": "text-classification", "model": "m", "training": {"learning_rate": 0.5},
                               "dataset": {"source": "samples/sentiment", "label_column": "label"}})  # fmt: skip
