"""Fine-tuning end to end on tiny random models: every task trains and writes its contract files, the model loads
with `from_pretrained` and through `services.pipelines.run`, the card carries a model-index, and bad configs are
sentences. Cancel/resume and the 2-process run are in test_training_jobs.py."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

from services.core.errors import PlaygroundError
from services.training.config import ConfigError, TrainConfig
from services.training.train import train


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("data")
    good = ["loved it", "wonderful and kind", "really good value", "works well", "happy with it"]
    bad = ["hated it", "broken and rude", "a waste of money", "stopped working", "never again"]
    rows = [[t, "positive"] for t in good * 4] + [[t, "negative"] for t in bad * 4]
    files = {"classes": write_csv(root / "reviews.csv", ["text", "label"], rows)}
    files["regression"] = write_csv(
        root / "scores.csv", ["review", "score"], [[t, i % 5] for i, (t, _) in enumerate(rows)]
    )
    with (root / "ner.jsonl").open("w") as handle:
        for i in range(24):
            tokens = ["Ada", "visited", ["Paris", "Rome", "Oslo"][i % 3], "."]
            handle.write(json.dumps({"tokens": tokens, "ner_tags": ["B-PER", "O", "B-LOC", "O"]}) + "\n")
    files["ner"] = root / "ner.jsonl"
    with (root / "summaries.jsonl").open("w") as handle:
        for i in range(20):
            text = f"On day {i} the council met and agreed to build a library by the river."
            handle.write(json.dumps({"text": text, "summary": "The council agreed to build a library."}) + "\n")
    files["summaries"] = root / "summaries.jsonl"
    (root / "stories.txt").write_text(
        "\n\n".join(f"Once upon a time a cat called {i} slept in the sun." for i in range(30))
    )
    files["stories"] = root / "stories.txt"
    return files


def config(tmp_path, task, model, source, text="text", label=None, **extra) -> TrainConfig:
    dataset = {"source": str(source), "text_column": text, "label_column": label, "eval_split": 0.25}
    dataset.update(extra.pop("dataset", {}))
    return TrainConfig.from_dict(
        {
            "task": task,
            "model": str(model),
            "dataset": dataset,
            "max_length": 32,
            "training": {"num_train_epochs": 1, "per_device_train_batch_size": 8, **extra.pop("training", {})},
            "output_dir": str(tmp_path / "out"),
            **extra,
        }
    )


def check_outputs(out: Path, cfg: TrainConfig) -> dict:
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer_config.json",
        "metrics.json",
        "README.md",
        "job.yaml",
        "events.jsonl",
    ):
        assert (out / name).is_file(), name
    assert TrainConfig.from_yaml(out / "job.yaml") == cfg
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    assert {"progress", "metrics", "result"} <= {e["type"] for e in events}
    assert not (out / "checkpoints").exists()  # removed after a successful run
    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "transformers" and "hf-playground" in card.data.tags
    return json.loads((out / "metrics.json").read_text())


def test_text_classification_names_its_labels_and_runs_in_the_pipelines(tmp_path, tiny_models, data, settings):
    from transformers import AutoConfig

    from services.pipelines import run

    cfg = config(tmp_path, "text-classification", tiny_models["bert-encoder"], data["classes"], label="label")
    summary = train(cfg)
    metrics = check_outputs(tmp_path / "out", cfg)
    assert 0 <= metrics["accuracy"] <= 1 and "f1" in metrics and summary["labels"] == ["negative", "positive"]
    assert AutoConfig.from_pretrained(tmp_path / "out").id2label == {0: "negative", 1: "positive"}
    assert run("text-classification", str(tmp_path / "out"), "loved it")[0]["label"] in ("negative", "positive")
    card = ModelCard.load(tmp_path / "out" / "README.md")
    results = card.data.eval_results
    assert {r.metric_type for r in results} >= {"accuracy", "f1"}
    assert "AutoModelForSequenceClassification.from_pretrained" in card.text
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert sum(map(sum, report["confusion_matrix"])) == summary["eval_rows"]
    assert report["samples"] and {"text", "expected", "predicted"} <= set(report["samples"][0])


def test_multi_label_classification(tmp_path, tiny_models, settings):
    rows = [["cheap and fast", "price|speed"], ["slow", "speed"], ["cheap", "price"], ["fast", "speed"]] * 6
    source = write_csv(tmp_path / "tags.csv", ["text", "tags"], rows)
    cfg = config(
        tmp_path,
        "text-classification",
        tiny_models["bert-encoder"],
        source,
        label="tags",
        dataset={"multi_label": True},
    )
    summary = train(cfg)
    assert summary["labels"] == ["price", "speed"] and "f1_micro" in summary["metrics"]


def test_regression_has_a_one_number_head_and_regression_metrics(tmp_path, tiny_models, data, settings):
    from transformers import AutoConfig

    cfg = config(
        tmp_path, "text-regression", tiny_models["bert-classifier"], data["regression"], text="review", label="score"
    )
    metrics = check_outputs(tmp_path / "out", cfg) if train(cfg) else {}
    assert {"mse", "mae", "pearson"} <= set(metrics)
    assert AutoConfig.from_pretrained(tmp_path / "out").problem_type == "regression"


def test_token_classification_scores_entities(tmp_path, tiny_models, data, settings):
    from transformers import AutoConfig

    cfg = config(
        tmp_path, "token-classification", tiny_models["bert-ner"], data["ner"], text="tokens", label="ner_tags"
    )
    train(cfg)
    metrics = check_outputs(tmp_path / "out", cfg)
    assert {"precision", "recall", "f1"} <= set(metrics)
    assert set(AutoConfig.from_pretrained(tmp_path / "out").id2label.values()) == {"O", "B-LOC", "B-PER"}


def test_summarization_reports_rouge_and_bleu(tmp_path, tiny_models, data, settings):
    cfg = config(tmp_path, "summarization", tiny_models["t5"], data["summaries"], label="summary")
    train(cfg)
    metrics = check_outputs(tmp_path / "out", cfg)
    assert {"rouge1", "rouge2", "rougeL", "bleu"} <= set(metrics)


def test_causal_lm_reports_perplexity(tmp_path, tiny_models, data, settings):
    cfg = config(tmp_path, "causal-lm", tiny_models["gpt2"], data["stories"])
    train(cfg)
    metrics = check_outputs(tmp_path / "out", cfg)
    assert metrics["perplexity"] > 1


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"training": {"learning_rate": 10}}, "learning rate of 10"),
        ({"training": {"num_train_epoch": 3}}, "Did you mean 'num_train_epochs'"),
        ({"training": {"output_dir": "/tmp/x"}}, "set by the launcher"),
        ({"task": "image-generation"}, "task must be one of"),
        ({"max_length": 100000}, "max_length"),
        ({"push_to_hub": {"private": True}}, "repo_id"),
        ({"output_dirr": "x"}, "Did you mean 'output_dir'"),
    ],
)
def test_bad_configs_are_sentences(change, words):
    base = {
        "task": "text-classification",
        "model": "m",
        "dataset": {"source": "samples/sentiment", "label_column": "label"},
    }
    with pytest.raises(ConfigError, match=words):
        TrainConfig.from_dict({**base, **change})


def test_config_needs_the_column_the_task_predicts():
    with pytest.raises(ConfigError, match="summary_column"):
        TrainConfig.from_dict({"task": "summarization", "model": "t5", "dataset": {"source": "x.jsonl"}})


def test_yaml_round_trip(tmp_path):
    cfg = TrainConfig.from_dict(
        {"task": "causal-lm", "model": "gpt2", "dataset": {"source": "samples/stories"}, "training": {"seed": 3}}
    )
    path = tmp_path / "job.yaml"
    path.write_text(cfg.to_yaml())
    assert TrainConfig.from_yaml(path) == cfg and yaml.safe_load(path.read_text())["training"] == {"seed": 3}


def test_a_model_that_cannot_do_the_task_is_a_sentence(tmp_path, tiny_models, data, settings):
    cfg = config(tmp_path, "summarization", tiny_models["bert-encoder"], data["summaries"], label="summary")
    with pytest.raises(PlaygroundError, match="cannot be trained for summarization"):
        train(cfg)


def test_an_existing_model_is_never_overwritten(tmp_path, tiny_models, data, settings):
    cfg = config(tmp_path, "causal-lm", tiny_models["gpt2"], data["stories"])
    train(cfg)
    before = (tmp_path / "out" / "model.safetensors").read_bytes()
    with pytest.raises(PlaygroundError, match="already holds a trained model"):
        train(cfg)
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == before


def test_missing_labels_are_left_out_and_counted(tmp_path, tiny_models, settings):
    rows = [["good", "positive"], ["bad", "negative"], ["meh", ""], ["ok", None]] * 8
    source = write_csv(tmp_path / "gaps.csv", ["text", "label"], rows)
    summary = train(config(tmp_path, "text-classification", tiny_models["bert-encoder"], source, label="label"))
    assert summary["dropped_rows"] == 16 and summary["train_rows"] + summary["eval_rows"] == 16


def test_a_misnamed_column_names_the_real_ones(tmp_path, tiny_models, data, settings):
    cfg = config(tmp_path, "text-classification", tiny_models["bert-encoder"], data["classes"], label="labels")
    with pytest.raises(PlaygroundError, match="Did you mean 'label'"):
        train(cfg)


def test_a_batch_that_does_not_fit_is_a_sentence_with_a_suggestion(tmp_path, tiny_models, data, settings, monkeypatch):
    import torch
    from transformers import Trainer

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "train", out_of_memory)
    cfg = config(tmp_path, "text-classification", tiny_models["bert-encoder"], data["classes"], label="label",
                 training={"per_device_train_batch_size": 64})  # fmt: skip
    with pytest.raises(PlaygroundError, match=r"did not fit in memory\. Try a batch size of 32"):
        train(cfg)
    assert (tmp_path / "out" / "job.yaml").exists()  # what was made stays


def test_a_loss_that_turns_nan_stops_training_with_a_sentence(tmp_path, tiny_models, data, settings, monkeypatch):
    from types import SimpleNamespace

    from transformers import Trainer, TrainerControl

    from services.jobs.events import EventWriter
    from services.training.run import _callback

    callback = _callback(EventWriter(), causal=False)
    callback.trainer = SimpleNamespace(diverged=False)
    state = SimpleNamespace(epoch=0.5, global_step=3)
    control = callback.on_log(None, state, TrainerControl(), logs={"loss": float("nan")})
    assert control.should_training_stop and callback.trainer.diverged

    def diverging(self, *args, **kwargs):
        self.diverged = True

    monkeypatch.setattr(Trainer, "train", diverging)
    cfg = config(tmp_path, "text-classification", tiny_models["bert-encoder"], data["classes"], label="label")
    with pytest.raises(PlaygroundError, match="NaN or infinite: the learning rate is too high"):
        train(cfg)


@pytest.mark.parametrize("task", ["token-classification", "text-classification"])
def test_a_label_only_in_the_held_out_rows_gets_a_place_in_the_head(tmp_path, tiny_models, task):
    """A tag the training rows lack (a small max_samples, a rare entity) used to stop the job with a KeyError."""
    from datasets import Dataset
    from transformers import AutoTokenizer, TrainingArguments

    from services.training.data import prepare

    if task == "token-classification":
        row = {"tokens": ["Ada", "visited", "Oslo"], "ner_tags": ["B-PER", "O", "B-LOC"]}
        rare = {"tokens": ["Ada", "joined", "Acme"], "ner_tags": ["B-PER", "O", "B-ORG"]}
        cfg = config(tmp_path, task, tiny_models["bert-ner"], "unused.jsonl", text="tokens", label="ner_tags")
    else:
        row, rare = {"text": "fine", "label": "positive"}, {"text": "so so", "label": "mixed"}
        cfg = config(tmp_path, task, tiny_models["bert-encoder"], "unused.csv", label="label")
        row_b = {"text": "bad", "label": "negative"}
    rows = [row] * 6 + ([row_b] * 6 if task == "text-classification" else [])
    train_rows, eval_rows = Dataset.from_list(rows), Dataset.from_list([row, rare])
    tokenizer = AutoTokenizer.from_pretrained(cfg.model)
    args = TrainingArguments(output_dir=str(tmp_path / "args"), report_to="none")
    prepared = prepare(cfg, train_rows, eval_rows, None, tokenizer, "bert", args)
    assert ("B-ORG" if task == "token-classification" else "mixed") in prepared.labels
    if task == "token-classification":
        assert prepared.labels[0] == "O" and prepared.labels.index("B-ORG") in prepared.eval[1]["labels"]
    else:
        assert prepared.eval[1]["labels"] == prepared.labels.index("mixed")
