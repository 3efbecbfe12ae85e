"""Base vs adapter side by side (issue 16, "Compare"): one copy of the base, each side equal to a lone greedy
generation of its own model, seeded sampling reproducible, Stop keeps what was written, bad input as sentences.
Also the measured correction of the estimate and the merge job's checks before it starts."""

from __future__ import annotations

import threading

import pytest

from services.core.errors import PlaygroundError
from services.models import loading

PROMPT = [{"role": "user", "content": "the cat sat on the mat"}]


def build_chat_adapter(base, out):
    """A LoRA on the tiny chat Llama with random (non-zero) B matrices: the adapter answers unlike the base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(3)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(
        r=8, lora_alpha=64, target_modules="all-linear", task_type="CAUSAL_LM", init_lora_weights=False
    )
    get_peft_model(model, config).save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def chat_adapter(tiny_chat_model, tmp_path_factory):
    return build_chat_adapter(tiny_chat_model, tmp_path_factory.mktemp("chat-adapter") / "adapter")


@pytest.fixture
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=settings.model_memory_bytes)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


def _greedy(folder, prompt, new_tokens, adapter=None):
    """What a lone `generate` call answers (the reference each side must equal)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter))
    model.eval()
    enc = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_each_side_equals_a_lone_generation_from_one_copy_of_the_base(fresh_cache, chat_adapter, tiny_chat_model):
    from services.training.compare import compare

    parts = list(compare(str(chat_adapter), PROMPT, max_new_tokens=12))
    final = parts[-1]
    assert final["done"] and len(parts) >= 2  # streamed: several items before the last
    assert final["base"] == _greedy(tiny_chat_model, PROMPT, 12)
    assert final["adapter"] == _greedy(tiny_chat_model, PROMPT, 12, adapter=chat_adapter)
    assert final["base"] != final["adapter"]
    assert set(final["finish"].values()) <= {"stop", "length"}
    assert len(fresh_cache.snapshot()) == 1  # one model in memory serves both sides


def test_seeded_sampling_is_reproducible_and_the_seed_matters(fresh_cache, chat_adapter):
    from services.training.compare import compare_once

    one = compare_once(str(chat_adapter), "the cat", max_new_tokens=10, temperature=1.0, seed=7)
    two = compare_once(str(chat_adapter), "the cat", max_new_tokens=10, temperature=1.0, seed=7)
    others = [compare_once(str(chat_adapter), "the cat", max_new_tokens=10, temperature=1.0, seed=s) for s in (1, 2)]
    assert one["base"] == two["base"] and one["adapter"] == two["adapter"]
    assert any(o["adapter"] != one["adapter"] or o["base"] != one["base"] for o in others)


def test_stop_keeps_what_was_written(fresh_cache, chat_adapter):
    from services.training.compare import compare

    halt = threading.Event()
    parts = []
    for part in compare(str(chat_adapter), PROMPT, max_new_tokens=40, halt=halt):
        parts.append(part)
        if len(parts) == 3:
            halt.set()
    assert parts[-1]["stopped"] is True
    assert parts[-1]["tokens"]["adapter"] <= 3
    assert parts[-1]["adapter"] == parts[-2]["adapter"]


def test_bad_input_is_a_sentence(fresh_cache, chat_adapter, tiny_chat_model):
    from services.training.compare import compare_once

    with pytest.raises(PlaygroundError, match="not a LoRA adapter"):
        compare_once(str(tiny_chat_model), "hello")
    with pytest.raises(PlaygroundError, match="Type a prompt"):
        compare_once(str(chat_adapter), "   ")
    with pytest.raises(PlaygroundError, match="max_new_tokens"):
        compare_once(str(chat_adapter), "hello", max_new_tokens=10**6)


def test_the_estimate_corrected_by_the_measured_steps():
    from services.training.estimate import corrected

    before = {"time": {"seconds_per_step": 2.0, "total_steps": 100, "total_seconds": 200.0},
              "memory": {"total": 3 * 10**9}}  # fmt: skip
    waiting = corrected(before, {})
    assert "Measuring" in waiting["sentence"]
    out = corrected(before, {"step": 20, "seconds_per_step": 0.5, "peak_mb": 2048})
    assert out["total_seconds"] == 50.0 and out["seconds_left"] == 40.0
    assert out["peak_bytes"] == 2048 * 2**20
    assert "500 ms a step (estimated 2.0 s)" in out["sentence"] and "100 steps" in out["sentence"]
    assert "peak memory 2.1 GB (estimated 3.0 GB)" in out["sentence"]


def test_a_merge_job_refuses_what_cannot_merge_before_it_starts(manager, tiny_chat_model, chat_adapter):
    from services.training.lora_jobs import start_merge

    owner = "visitor-a"
    with pytest.raises(PlaygroundError, match="not a LoRA adapter"):
        start_merge(manager, owner, str(tiny_chat_model), "merged")
    with pytest.raises(PlaygroundError, match="Name the merged model"):
        start_merge(manager, owner, str(chat_adapter), "../escape")
    assert manager.list(owner) == []
