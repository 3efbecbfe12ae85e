"""The real packaged models: MiniLM embeds, SmolLM2 converts once from GGUF and then chats."""

from __future__ import annotations

import json

import pytest

from services.models import loading, packs

pytestmark = pytest.mark.slow


def test_minilm_gives_sentence_embeddings_that_mean_something():
    import torch

    loaded = loading.load("all-minilm-l6-v2", "sentence-similarity")
    assert loaded.location.endswith("model")

    def embed(text):
        batch = loaded.tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            hidden = loaded.model(**batch).last_hidden_state
        vector = hidden.mean(dim=1)[0]
        return vector / vector.norm()

    cat, kitten, tax = (
        embed("A cat sits on the mat."),
        embed("A kitten rests on a rug."),
        embed("Tax returns are due."),
    )
    assert cat.shape == (384,)
    assert float(cat @ kitten) > float(cat @ tax) + 0.2


def test_smollm2_is_converted_once_and_answers():
    progress = []
    folder = packs.ensure_ready("smollm2-135m-instruct", lambda f, m: progress.append(f))
    assert packs.is_ready(packs.PACKS["smollm2-135m-instruct"])
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert json.loads((folder / "config.json").read_text()).get("quantization_config") is None
    # A second call finds the converted copy: no progress, same folder.
    progress.clear()
    assert packs.ensure_ready("smollm2-135m-instruct", lambda f, m: progress.append(f)) == folder
    assert progress == []

    loaded = loading.load("smollm2-135m-instruct", "text-generation")
    tok = loaded.tokenizer
    inputs = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = loaded.model.generate(**inputs, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0][inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer


def test_smollm2_serves_summarization_from_the_same_cached_model():
    first = loading.load("smollm2-135m-instruct", "text-generation")
    assert loading.load("smollm2-135m-instruct", "summarization") is first
