"""The packaged SmolLM2's fast CPU copy as a catalog model (services.models.fast_cpu): built once from the packaged
model, it answers through the same generation code as every chat model (streamed, with each token's probability;
the text-generation pipeline's schema; sampling with a seed; Stop), greedily the same as the float32 model, and
refuses what it cannot do (beam search, training) in a sentence."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("onnxruntime")

from services.core.errors import PlaygroundError
from services.models import fast_cpu, packs

pytestmark = pytest.mark.skipif(not packs.PACKS[fast_cpu.BASE].installed, reason="the packaged SmolLM2 is missing")

FAST, PLAIN = fast_cpu.FAST_ID, fast_cpu.BASE
ASK = [{"role": "user", "content": "Name three colours of the rainbow."}]


def test_it_is_listed_as_a_packaged_chat_model():
    from services.models.catalog import catalog

    row = next(e for e in catalog("text-generation") if e.id == FAST)
    assert row.available and row.source == "packaged" and "ONNX Runtime" in row.description


def test_greedy_answers_equal_the_float32_models_with_token_probabilities():
    from services.pipelines import stream

    fast = list(stream(FAST, ASK, max_new_tokens=24, do_sample=False))[-1]
    plain = list(stream(PLAIN, ASK, max_new_tokens=24, do_sample=False))[-1]
    assert fast["text"] == plain["text"] and fast["text"]
    assert fast["new_tokens"] == plain["new_tokens"] == len(fast["tokens"])
    for mine, theirs in zip(fast["tokens"], plain["tokens"], strict=True):
        assert mine["id"] == theirs["id"] and mine["prob"] == pytest.approx(theirs["prob"], abs=1e-3)


def test_the_text_generation_pipeline_schema_and_seeded_sampling():
    from services.pipelines import run

    prompt = "Once upon a time"
    fast = run("text-generation", FAST, prompt, max_new_tokens=8)
    assert fast == run("text-generation", PLAIN, prompt, max_new_tokens=8)
    assert fast[0]["generated_text"].startswith(prompt)
    sampled = [run("text-generation", FAST, prompt, max_new_tokens=12, temperature=0.9, seed=7) for _ in range(2)]
    assert sampled[0] == sampled[1]
    chat = run("text-generation", FAST, ASK, max_new_tokens=8)
    assert chat[0]["generated_text"][-1]["role"] == "assistant"


def test_stop_ends_the_generation_and_frees_the_copy():
    from services.pipelines import stream

    halt = threading.Event()
    pieces = []
    for item in stream(FAST, ASK, max_new_tokens=64, do_sample=False, halt=halt):
        pieces.append(item)
        halt.set()
    assert pieces[-1].get("stopped") and pieces[-1]["new_tokens"] < 64
    assert list(stream(FAST, ASK, max_new_tokens=4, do_sample=False))[-1]["text"]  # the copy is free again


def test_beam_search_and_training_are_refused_in_a_sentence():
    from services.pipelines import run
    from services.training.train import model_location

    with pytest.raises(PlaygroundError, match="does not do beam search: pick smollm2-135m-instruct"):
        run("text-generation", FAST, "Hello", max_new_tokens=4, num_beams=2)
    with pytest.raises(PlaygroundError, match="cannot be trained"):
        model_location(FAST, "cli:someone")
