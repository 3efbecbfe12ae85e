"""`services.pipelines.run`: the transformers 4.x output schema for every task, checked on tiny models against
the transformers pipeline called directly, plus the bad inputs."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from services.core.errors import PlaygroundError, TaskMismatch
from services.models import loading
from services.pipelines import chat, plain, run

TEXT = "the movie was very good and alice loved it in paris"


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=2**34)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


def direct(task, folder, inputs, **params):
    from transformers import pipeline

    return pipeline(task, model=str(folder), device="cpu")(inputs, **params)


@pytest.mark.parametrize(
    ("task", "name", "params"),
    [
        ("sentiment-analysis", "bert-classifier", {}),
        ("text-classification", "bert-classifier", {"top_k": 2}),
        ("ner", "bert-ner", {}),
        ("token-classification", "bert-ner", {"aggregation_strategy": "simple"}),
        ("token-classification", "bert-ner", {"aggregation_strategy": "first"}),  # the tab's default
        ("fill-mask", "bert-mlm", {"top_k": 3}),
        ("text-generation", "gpt2", {"max_new_tokens": 8, "do_sample": False}),
    ],
)
def test_same_output_as_the_transformers_pipeline(tiny_models, task, name, params):
    inputs = TEXT.replace("good", "[MASK]") if task == "fill-mask" else TEXT
    ours = run(task, str(tiny_models[name]), inputs, **params)
    theirs = plain(direct(task, tiny_models[name], inputs, **params))
    assert json.dumps(ours) == json.dumps(theirs)


def test_classification_labels_are_the_models_names(tiny_models):
    result = run("sentiment-analysis", str(tiny_models["bert-classifier"]), TEXT)
    assert result[0]["label"] in {"NEGATIVE", "POSITIVE"} and 0 <= result[0]["score"] <= 1


def test_feature_extraction_gives_one_vector_per_token(tiny_models):
    out = run("feature-extraction", str(tiny_models["bert-encoder"]), "the movie")
    assert len(out) == 1 and len(out[0][0]) == 32


def test_sentence_similarity_and_embedding_zero_shot(tiny_models):
    encoder = str(tiny_models["bert-encoder"])
    scores = run("sentence-similarity", encoder, {"source_sentence": TEXT, "sentences": [TEXT, "bob likes rivers"]})
    assert scores[0] == pytest.approx(1.0, abs=1e-4) and -1 <= scores[1] <= 1
    result = run("zero-shot-classification", encoder, TEXT, candidate_labels="food, city, movie")
    assert sorted(result["labels"]) == ["city", "food", "movie"] and result["sequence"] == TEXT
    assert sum(result["scores"]) == pytest.approx(1.0, abs=1e-5)
    assert result["scores"] == sorted(result["scores"], reverse=True)


def test_a_base_causal_model_summarizes_and_translates_by_prompt(tiny_models):
    gpt2 = str(tiny_models["gpt2"])
    summary = run("summarization", gpt2, TEXT, max_new_tokens=5)
    assert list(summary[0]) == ["summary_text"] and isinstance(summary[0]["summary_text"], str)
    translation = run("translation_en_to_fr", gpt2, [TEXT, "bob"], max_new_tokens=5)
    assert len(translation) == 2 and all(list(t) == ["translation_text"] for t in translation)


def test_streaming_yields_growing_text_then_token_probabilities(tiny_models):
    loaded = loading.load(str(tiny_models["gpt2"]), "text-generation")
    events = list(chat.stream(loaded, "the movie", max_new_tokens=6))
    texts = [e["text"] for e in events]
    assert all(b.startswith(a) for a, b in itertools.pairwise(texts))
    tokens = events[-1]["tokens"]
    assert 1 <= len(tokens) <= 6
    for step in tokens:
        assert 0 <= step["prob"] <= 1 and len(step["top"]) == 5
        assert [t["prob"] for t in step["top"]] == sorted((t["prob"] for t in step["top"]), reverse=True)
        assert step["prob"] <= step["top"][0]["prob"] + 1e-6, "greedy picks the likeliest token"
    assert "".join(t["token"] for t in tokens).strip() == events[-1]["text"].strip()


@pytest.mark.parametrize(
    ("task", "inputs", "sentence"),
    [
        ("sentiment-analysis", "", "type some text"),
        ("sentiment-analysis", "   ", "type some text"),
        ("question-answering", {"question": "who?", "context": ""}, "paste a context"),
        ("question-answering", {"question": "", "context": "alice"}, "type a question"),
        ("sentence-similarity", {"source_sentence": "a", "sentences": []}, "at least one sentence"),
        ("sentiment-analysis", "x" * 2_000_001, "too long"),
    ],
)
def test_bad_inputs_get_a_sentence(tiny_models, task, inputs, sentence):
    with pytest.raises(PlaygroundError, match=sentence):
        run(task, str(tiny_models["bert-classifier"]), inputs)


def test_long_texts_are_truncated_or_windowed_with_a_notice(tiny_models):
    from services.pipelines import input_notice

    long_text = " ".join([TEXT] * 60)  # about 660 tokens; the tiny models read 128
    classifier, ner = str(tiny_models["bert-classifier"]), str(tiny_models["bert-ner"])
    assert run("sentiment-analysis", classifier, long_text)[0]["label"] in {"NEGATIVE", "POSITIVE"}
    assert "only its first 128 tokens" in input_notice("sentiment-analysis", classifier, long_text)
    entities = run("ner", ner, long_text)
    assert max(e["end"] for e in entities) > len(long_text) // 2, "windows cover the whole text"
    assert "overlapping windows" in input_notice("ner", ner, long_text)
    assert input_notice("sentiment-analysis", classifier, TEXT) is None
    generated = run("text-generation", str(tiny_models["gpt2"]), long_text, max_new_tokens=3)
    assert generated[0]["generated_text"]


def test_a_model_that_cannot_do_the_task_says_which_it_can(tiny_models):
    with pytest.raises(TaskMismatch, match="It can do: text-generation"):
        run("ner", str(tiny_models["gpt2"]), TEXT)
    with pytest.raises(TaskMismatch, match="cannot do summarization"):
        run("summarization", str(tiny_models["bert-classifier"]), TEXT)


def test_unknown_task_and_unknown_setting(tiny_models):
    with pytest.raises(ValueError, match="Unknown task"):
        run("telepathy", str(tiny_models["gpt2"]), TEXT)
    loaded = loading.load(str(tiny_models["gpt2"]), "text-generation")
    with pytest.raises(PlaygroundError, match="Unknown generation setting"):
        chat.complete(loaded, "hi", warp_speed=9)


def test_cli_run_parses_json_inputs_and_params(tiny_models, settings):
    import os

    done = subprocess.run(
        [sys.executable, "-m", "services", "run", "zero-shot-classification", "--model",
         str(tiny_models["bert-encoder"]), "--input", TEXT, "--param", 'candidate_labels=["food","city"]',
         "--param", "multi_label=true"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PLAYGROUND_HOME": str(settings.home)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sorted(result["labels"]) == ["city", "food"]
    assert all(0 <= s <= 1 for s in result["scores"])


def test_closing_a_stream_stops_the_generation(tiny_models):
    import threading

    loaded = loading.load(str(tiny_models["gpt2"]), "text-generation")
    stream = chat.stream(loaded, "the movie", max_new_tokens=400, min_new_tokens=400)
    next(stream)
    stream.close()  # what Gradio does on Stop or when the page closes
    assert not [t for t in threading.enumerate() if t.name == "generate-stream"]


def test_seq2seq_models_summarize_and_translate_through_run():
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "seq2seq"
    summary = run("summarization", str(data / "t5"), "the river flows through paris", max_new_tokens=6)
    assert list(summary[0]) == ["summary_text"]
    french = run("translation_en_to_fr", str(data / "t5"), ["the river", "the sea"], max_new_tokens=6)
    assert len(french) == 2 and all(list(t) == ["translation_text"] for t in french)
    from services.models.catalog import resolve

    assert "translation" in resolve(str(data / "marian")).tasks, "Marian's MarianMTModel head translates"


def test_zero_shot_on_a_model_that_is_not_an_embedding_model_says_so(tiny_models):
    with pytest.raises(TaskMismatch, match="It can do: text-generation"):
        run("zero-shot-classification", str(tiny_models["gpt2"]), TEXT, candidate_labels=["a", "b"])


def test_fill_mask_without_the_mask_token_names_it(tiny_models):
    with pytest.raises(PlaygroundError, match=r"\[MASK\]"):
        run("fill-mask", str(tiny_models["bert-mlm"]), "paris is the capital of france")


def test_form_values_become_typed_settings():
    from tabs.pipelines.form import ALL_SETTINGS, collect

    values = {name: None for name in ALL_SETTINGS} | {
        "text": "hello", "context": "", "labels": "", "sentences": "", "src_lang": "en", "tgt_lang": "fr",
        "max_new_tokens": 40.0, "temperature": 0.7, "top_p": 0.9, "top_k_sampling": 50.0,
        "repetition_penalty": 2.0, "seed": 3.0,
    }  # fmt: skip
    inputs, params = collect("text-generation", values)
    assert inputs == "hello"
    assert params == {"max_new_tokens": 40, "temperature": 0.7, "top_p": 0.9, "top_k": 50,
                      "repetition_penalty": 2.0, "seed": 3}  # fmt: skip
    assert isinstance(params["repetition_penalty"], float), "transformers refuses an int penalty"
    _, greedy = collect("text-generation", {**values, "temperature": 0.0, "repetition_penalty": 1.0})
    assert greedy == {"max_new_tokens": 40}, "greedy decoding drops sampling settings and the seed"


def test_word_level_grouping_falls_back_to_simple_for_a_slow_tokenizer():
    """transformers refuses "first"/"average"/"max" without a fast tokenizer's word ids; the tab's default is
    "first", so a model with a slow tokenizer gets "simple" instead of an error."""
    from types import SimpleNamespace

    from services.pipelines import _long_input_settings

    slow = SimpleNamespace(tokenizer=SimpleNamespace(is_fast=False, model_max_length=512))
    for strategy, expected in [("first", "simple"), ("max", "simple"), ("none", "none"), ("simple", "simple")]:
        _, params = _long_input_settings(slow, "token-classification", TEXT, {"aggregation_strategy": strategy})
        assert params["aggregation_strategy"] == expected
