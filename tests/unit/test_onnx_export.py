"""ONNX export of encoder models (services.serve.onnx_export) on the tiny random BERTs of tests/tiny.py."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

from services.core.errors import PlaygroundError
from services.serve import onnx_export, onnx_model

TEXTS = ["the movie was very good and i love it", "the food was terrible", "alice lives in paris", "bad"]


@pytest.fixture(scope="module")
def classifier_export(tiny_models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx") / "classifier"
    labels = ["POSITIVE", "NEGATIVE", "positive", 0]
    report = onnx_export.export(tiny_models["bert-classifier"], folder, "text-classification", samples=TEXTS,
                                labels=labels, speed_runs=2)  # fmt: skip
    return folder, report


def test_classifier_export_writes_both_models_and_a_report(classifier_export):
    folder, report = classifier_export
    for name in ("model.onnx", "model.int8.onnx", "config.json", "tokenizer.json", "onnx_report.json"):
        assert (folder / name).is_file(), name
    assert json.loads((folder / "onnx_report.json").read_text()) == report
    assert report["exporter"] == "transformers.exporters.OnnxExporter"
    assert report["outputs"] == ["logits"]
    assert report["quantization"]["weight_type"] == "QInt8" and report["quantization"]["matmuls_quantized"] > 0


def test_classifier_parity_accuracy_and_speed_are_reported(classifier_export):
    parity, speed = classifier_export[1]["parity"], classifier_export[1]["speed"]
    assert parity["samples"] == len(TEXTS)
    assert parity["onnx_fp32"]["max_abs_diff"] < 1e-4
    assert parity["onnx_fp32"]["label_agreement"] == 1.0
    assert 0.0 <= parity["onnx_int8"]["label_agreement"] <= 1.0
    assert set(parity["accuracy"]) == {"pytorch_fp32", "onnx_fp32", "onnx_int8"}
    assert all(0.0 <= value <= 1.0 for value in parity["accuracy"].values())
    for engine in ("pytorch_fp32", "onnx_fp32", "onnx_int8"):
        assert speed[engine]["p50_ms_batch1"] > 0 and speed[engine]["texts_per_s_batch32"] > 0
    sizes = classifier_export[1]["size_mb"]
    assert sizes["onnx_int8"] < sizes["onnx_fp32"]


def test_onnx_model_predicts_labels_from_id2label(classifier_export, tiny_models):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = onnx_model.OnnxModel(classifier_export[0], precision="fp32")
    results = model.predict(TEXTS)
    assert len(results) == len(TEXTS)
    for row in results:
        assert {item["label"] for item in row} == {"NEGATIVE", "POSITIVE"}
        assert sum(item["score"] for item in row) == pytest.approx(1.0, abs=1e-6)
        assert row[0]["score"] >= row[1]["score"]
    reference = AutoModelForSequenceClassification.from_pretrained(tiny_models["bert-classifier"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models["bert-classifier"])
    with torch.no_grad():
        probs = reference(**tokenizer(TEXTS, padding=True, return_tensors="pt")).logits.softmax(-1)
    for row, expected in zip(results, probs, strict=True):
        scores = {item["label"]: item["score"] for item in row}
        assert scores["POSITIVE"] == pytest.approx(float(expected[reference.config.label2id["POSITIVE"]]), abs=1e-4)
    assert len(onnx_model.OnnxModel(classifier_export[0]).predict(TEXTS, top_k=1)[0]) == 1  # int8 by default


def test_embeddings_equal_pytorch_mean_pooled_normalised_vectors(tiny_models, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = tmp_path / "encoder"
    report = onnx_export.export(
        tiny_models["bert-encoder"], folder, "feature-extraction", quantize=False, speed_runs=0
    )
    assert not (folder / "model.int8.onnx").exists() and report["speed"] is None
    assert report["parity"]["onnx_fp32"]["max_abs_diff"] < 1e-4
    vectors = torch.tensor(onnx_model.OnnxModel(folder).embed(TEXTS))
    encoder = AutoModel.from_pretrained(tiny_models["bert-encoder"]).eval()
    batch = AutoTokenizer.from_pretrained(tiny_models["bert-encoder"])(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    expected = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
    assert vectors.shape == expected.shape
    assert float((vectors - expected).abs().max()) < 1e-4
    with pytest.raises(PlaygroundError, match="predict"):
        onnx_model.OnnxModel(folder).predict(TEXTS)


def test_torch_onnx_export_is_the_fallback(tiny_models, tmp_path, monkeypatch):
    from transformers.exporters import OnnxExporter

    def fail(*args, **kwargs):
        raise RuntimeError("unsupported here")

    monkeypatch.setattr(OnnxExporter, "export", fail)
    report = onnx_export.export(tiny_models["bert-qa"], tmp_path / "qa", "question-answering", quantize=False,
                                speed_runs=0)  # fmt: skip
    assert report["exporter"].startswith("torch.onnx.export")
    assert report["outputs"] == ["start_logits", "end_logits"]
    assert report["parity"]["onnx_fp32"]["max_abs_diff"] < 1e-4


def test_a_causal_lm_is_refused_in_a_sentence(tiny_models, tmp_path):
    with pytest.raises(PlaygroundError) as caught:
        onnx_export.export(tiny_models["gpt2"], tmp_path / "gpt2", "text-classification")
    message = str(caught.value)
    assert "encoder models such as BERT" in message and "token by token" in message
    assert "Traceback" not in message and not (tmp_path / "gpt2").exists()


@pytest.mark.parametrize(
    ("model", "task", "kwargs", "words"),
    [
        ("bert-encoder", "text-classification", {}, "no text-classification head"),
        ("bert-classifier", "translation", {}, "is not one of them"),
        ("bert-classifier", "text-classification", {"samples": ["a"], "labels": [0, 1]}, "one label per sample"),
    ],
)
def test_mistakes_are_explained(tiny_models, tmp_path, model, task, kwargs, words):
    with pytest.raises(PlaygroundError, match=words):
        onnx_export.export(tiny_models[model], tmp_path / "out", task, **kwargs)


def test_an_unknown_label_is_explained(tiny_models, tmp_path):
    with pytest.raises(PlaygroundError, match="not one of the model's labels"):
        onnx_export.export(tiny_models["bert-classifier"], tmp_path / "out", "text-classification",
                           samples=["good"], labels=["maybe"])  # fmt: skip
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.partial").exists()
