"""`services.models.cpu_fast` on the tiny random Llama: weights put on a GGUF Q4_1 grid (as the packaged SmolLM2's
are, de-quantized from Q4_1) are kept as codes, and the optimised copy answers exactly as the float32 model does."""

from __future__ import annotations

import copy
import logging

import pytest

torch = pytest.importorskip("torch")

from services.models import cpu_fast  # noqa: E402


def _snap_to_q4_1(model) -> None:
    """Round every Linear onto a Q4_1 grid the way GGUF does: per 32 inputs, q * d + m with fp16 d and m."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                n, k = w.shape
                g = w.reshape(n, k // 32, 32)
                low = g.amin(-1, keepdim=True).half().float()
                step = ((g.amax(-1, keepdim=True) - low) / 15).half().float().clamp(min=2**-14)
                q = ((g - low) / step).round().clamp(0, 15)
                w.copy_((q * step + low).reshape(n, k))


@pytest.fixture(scope="module")
def models(tiny_chat_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    base = AutoModelForCausalLM.from_pretrained(tiny_chat_model, dtype=torch.float32).eval()
    _snap_to_q4_1(base)
    return base, tokenizer


def _prompt(tokenizer):
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": "what is the capital of france ?"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )  # fmt: skip


def _greedy(model, tokenizer, n=8):
    inputs = _prompt(tokenizer)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def test_grid_layers_become_codes_that_rebuild_the_weights_bit_for_bit(models):
    base, _ = models
    fast = cpu_fast.optimise_for_cpu(copy.deepcopy(base), compile=False)
    kinds = fast.cpu_fast_report
    assert kinds["model.layers.0.mlp.down_proj"] == "q4"
    assert sum(kind == "q4" for kind in kinds.values()) >= 14  # 7 projections in each of the 2 layers
    layer = fast.model.layers[0].self_attn.k_proj  # 16 outputs: the smallest block size
    assert type(layer).__name__ == "GridLinear"
    assert layer.codes.dtype == torch.uint8
    assert layer.codes.numel() * 2 == layer.in_features * layer.out_features  # two 4-bit codes a byte
    assert torch.equal(layer.dequantized(), base.model.layers[0].self_attn.k_proj.weight)


def test_one_token_step_matches_float32_and_prefill_is_identical(models):
    base, _ = models
    fast = cpu_fast.optimise_for_cpu(copy.deepcopy(base), compile=False)
    mlp, reference = fast.model.layers[1].mlp.up_proj, base.model.layers[1].mlp.up_proj
    x = torch.randn(1, 1, mlp.in_features)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x), reference(x), rtol=1e-5, atol=1e-5)
        batch = torch.randn(2, 5, mlp.in_features)  # several tokens: the float32 weights, unchanged
        assert torch.equal(mlp(batch), reference(batch))


def test_greedy_generation_is_unchanged(models):
    base, tokenizer = models
    fast = cpu_fast.optimise_for_cpu(copy.deepcopy(base), compile=False)
    assert _greedy(fast, tokenizer) == _greedy(base, tokenizer)
    inputs = _prompt(tokenizer)
    with torch.no_grad():
        runs = [m.generate(**inputs, max_new_tokens=6, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                           output_logits=True, return_dict_in_generate=True) for m in (base, fast)]  # fmt: skip
    for expected, got in zip(runs[0].logits, runs[1].logits, strict=True):  # every step's logits, not only argmax
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_without_the_float32_copies_prefill_uses_the_rebuilt_weights(models):
    base, tokenizer = models
    fast = cpu_fast.optimise_for_cpu(copy.deepcopy(base), compile=False, keep_dense=False)
    assert fast.model.layers[0].mlp.gate_proj.weight is None
    assert _greedy(fast, tokenizer) == _greedy(base, tokenizer)


def test_weights_on_no_grid_are_left_alone(tiny_chat_model, caplog):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model, dtype=torch.float32)
    with caplog.at_level(logging.WARNING, logger="services.models.cpu_fast"):
        cpu_fast.optimise_for_cpu(model, compile=False)
    assert set(model.cpu_fast_report.values()) == {"kept"}
    assert not any(type(m).__name__ == "GridLinear" for m in model.modules())
    assert "changes nothing" in caplog.text


def test_refuses_a_half_precision_model(tiny_chat_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="float32"):
        cpu_fast.optimise_for_cpu(model)


def test_compile_settings_ask_for_a_static_cache_and_a_compiled_decode_step(models):
    base, _ = models
    fast = cpu_fast.optimise_for_cpu(copy.deepcopy(base), max_cache_len=64)
    generation = fast.generation_config
    assert generation.cache_implementation == "static" and generation.max_cache_len == 64
    assert generation.compile_config._compile_all_devices
    assert fast.config._attn_implementation == cpu_fast.ATTENTION
