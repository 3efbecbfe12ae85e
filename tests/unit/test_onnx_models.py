"""An ONNX export used as a model (services.models.onnx_runtime): listed among the owner's models, run by the
pipelines (classification, NER, question answering, embeddings), by the REST API's handlers and by a server bundle,
each answering as the export's own graph does, and refused in a sentence for a task it was not exported for."""

from __future__ import annotations

import shutil

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from services.core.errors import PlaygroundError, TaskMismatch
from services.serve import onnx_export, onnx_model

OWNER = "cli:onnx-tester"
TEXTS = ["the movie was very good and i love it", "the food was terrible", "alice lives in paris"]
KINDS = {"clf": ("bert-classifier", "text-classification"), "ner": ("bert-ner", "token-classification"),
         "qa": ("bert-qa", "question-answering"), "enc": ("bert-encoder", "sentence-similarity")}  # fmt: skip


@pytest.fixture(scope="module")
def exports(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx-models")
    for name, (kind, task) in KINDS.items():
        onnx_export.export(tiny_models[kind], root / f"{name}-onnx", task, speed_runs=0, source=kind)
    return root


@pytest.fixture
def mine(exports, settings):
    """The exports among OWNER's models, as the Deploy tab leaves them (trained:<name>-onnx)."""
    from services.models.catalog import trained_root
    from services.models.loading import model_cache

    model_cache().clear()
    root = trained_root(OWNER)
    root.mkdir(parents=True, exist_ok=True)
    for name in KINDS:
        shutil.copytree(exports / f"{name}-onnx", root / f"{name}-onnx")
    yield root
    model_cache().clear()


def test_exports_are_listed_with_the_tasks_they_were_exported_for(mine):
    from services.models.catalog import catalog

    rows = {e.id: e for e in catalog(owner=OWNER, available_only=None)}
    assert set(rows["trained:clf-onnx"].tasks) == {"text-classification", "zero-shot-classification"}
    assert rows["trained:ner-onnx"].tasks == ("token-classification",)
    assert rows["trained:qa-onnx"].tasks == ("question-answering",)
    assert "sentence-similarity" in rows["trained:enc-onnx"].tasks
    line = rows["trained:clf-onnx"].description
    assert line.startswith("ONNX int8 export of bert-classifier (text-classification)") and "/" not in line
    assert not any(e.id.endswith("-onnx") for e in catalog(owner="cli:someone-else", available_only=None))


def test_classification_answers_as_the_int8_graph_does(mine):
    from services.models import loading
    from services.pipelines import run

    result = run("text-classification", "trained:clf-onnx", TEXTS, owner=OWNER, top_k=None)
    graph = onnx_model.OnnxModel(mine / "clf-onnx")  # int8, as the catalog model runs
    # one text at a time, as the pipeline runs them (int8 activations are scaled per batch, padding included)
    direct = [graph.predict([text])[0] for text in TEXTS]
    for got, want in zip(result, direct, strict=True):
        assert [r["label"] for r in got] == [r["label"] for r in want]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)
    loaded = loading.load("trained:clf-onnx", "text-classification", owner=OWNER)
    assert loaded.dtype == "int8" and loaded.device == "cpu"
    assert loaded.nbytes == (mine / "clf-onnx" / "model.int8.onnx").stat().st_size


def test_ner_gives_the_graphs_label_for_every_token(mine):
    from services.pipelines import run

    entities = run("token-classification", "trained:ner-onnx", TEXTS[2], owner=OWNER)
    direct = onnx_model.OnnxModel(mine / "ner-onnx").predict([TEXTS[2]])[0]
    labels = {row["token"]: row["label"] for row in direct}
    assert entities, "the random head labels every token with some entity"
    for entity in entities:
        assert TEXTS[2][entity["start"] : entity["end"]] == entity["word"].removeprefix("##")
        if labels.get(entity["word"], "O") != "O":
            assert entity["entity"] == labels[entity["word"]]


def test_question_answering_picks_a_span_of_the_context(mine):
    from services.pipelines import run

    context = "alice lives in paris and works at acme"
    answer = run("question-answering", "trained:qa-onnx", {"question": "where does alice live ?", "context": context},
                 owner=OWNER)  # fmt: skip
    assert context[answer["start"] : answer["end"]] == answer["answer"] and answer["answer"]
    assert 0.0 <= answer["score"] <= 1.0


def test_sentence_similarity_and_the_embeddings_api_use_the_exports_vectors(mine):
    import numpy as np

    from services.pipelines import run
    from services.serve import encoders

    vectors = np.array(onnx_model.OnnxModel(mine / "enc-onnx").embed(TEXTS))
    scores = run("sentence-similarity", "trained:enc-onnx", {"source_sentence": TEXTS[0], "sentences": TEXTS[1:]},
                 owner=OWNER)  # fmt: skip
    assert scores == pytest.approx((vectors[1:] @ vectors[0]).tolist(), abs=1e-4)
    body = encoders.embeddings({"model": "trained:enc-onnx", "input": TEXTS}, OWNER)
    got = np.array([row["embedding"] for row in body["data"]])
    assert np.abs(got - vectors).max() < 1e-4


def test_the_predict_api_answers_with_the_exports_labels(mine):
    from services.serve import encoders

    answer = encoders.predict({"inputs": TEXTS[0]}, OWNER, "trained:clf-onnx")
    direct = onnx_model.OnnxModel(mine / "clf-onnx").predict([TEXTS[0]])[0]
    assert [r["label"] for r in answer] == [r["label"] for r in direct]


def test_a_task_the_export_was_not_made_for_is_refused_in_a_sentence(mine):
    from services.pipelines import run

    with pytest.raises(TaskMismatch, match="ONNX export for text-classification; it cannot do token-classification"):
        run("token-classification", "trained:clf-onnx", TEXTS[0], owner=OWNER)
    with pytest.raises(PlaygroundError):
        run("text-classification", "trained:clf-onnx", TEXTS[0], owner="cli:someone-else")


def test_a_server_bundle_of_an_export_runs_its_graph(mine, tmp_path):
    from services.serve import bundle
    from services.serve.bundle_engine import Engine

    made = bundle.build("trained:clf-onnx", tmp_path / "server", owner=OWNER)
    files = set(made["files"])
    assert {"model/model.int8.onnx", "model/onnx_report.json", "model/config.json"} <= files
    assert not any(f.endswith((".safetensors", "model/model.onnx")) for f in files)  # the int8 graph only
    assert "onnxruntime==" in (tmp_path / "server" / "requirements.txt").read_text()
    engine = Engine(tmp_path / "server" / "model", "classification")
    engine.load()
    assert engine.dtype == "int8"
    direct = onnx_model.OnnxModel(mine / "clf-onnx").predict(TEXTS)
    for got, want in zip(engine.classify(TEXTS), direct, strict=True):
        assert [r["label"] for r in got] == [r["label"] for r in want]
        assert [r["score"] for r in got] == pytest.approx([r["score"] for r in want], abs=1e-5)


def test_an_export_is_refused_as_a_model_to_fine_tune(mine):
    from services.training.train import model_location

    with pytest.raises(PlaygroundError, match=r"ONNX export: it runs, but it cannot be trained\. Fine-tune bert-"):
        model_location("trained:clf-onnx", OWNER)


def test_an_export_is_not_offered_as_a_base_model_to_fine_tune(mine):
    from services.training.jobs import base_models

    offered = base_models("text-classification", OWNER)
    assert "trained:clf-onnx" not in offered and not any(m.endswith("-onnx") for m in offered)
