"""`services.models.cpu_onnx` on the tiny random Llama: with its weights on GGUF grids (Q4_1 layers, a Q8_0 head, as
the packaged SmolLM2's are), the ONNX Runtime copy keeps them exactly (MatMulNBits) and answers as float32 does."""

from __future__ import annotations

import threading

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from services.models import cpu_onnx  # noqa: E402
from tests.unit.test_cpu_fast import _snap_to_q4_1  # noqa: E402


def _snap_to_q8_0(linear) -> None:
    """The GGUF Q8_0 grid: per 32 inputs, q * d with q in -127..127 and an fp16 d."""
    with torch.no_grad():
        w = linear.weight
        n, k = w.shape
        g = w.reshape(n, k // 32, 32)
        step = (g.abs().amax(-1, keepdim=True) / 127).half().float().clamp(min=2**-14)
        w.copy_(((g / step).round().clamp(-127, 127) * step).reshape(n, k))


def _folder(tmp_path_factory, tiny_chat_model, name, snap):
    """The tiny chat Llama, widened to head_dim 16 (ORT's GroupQueryAttention needs a multiple of 16)."""
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    config = AutoConfig.from_pretrained(tiny_chat_model)
    config.hidden_size, config.intermediate_size, config.head_dim = 64, 128, 16
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    snap(model)
    folder = tmp_path_factory.mktemp(name)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_chat_model).save_pretrained(folder)
    return folder, model


def _q4_layers_q8_head(model):
    _snap_to_q4_1(model)
    _snap_to_q8_0(model.lm_head)  # tied: the embedding too


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_chat_model):
    source, model = _folder(tmp_path_factory, tiny_chat_model, "grid", _q4_layers_q8_head)
    target = tmp_path_factory.mktemp("grid-onnx")
    meta = cpu_onnx.build(source, target)
    return model, cpu_onnx.load(target, threads=1), meta


def _prompt(tokenizer, text="what is the capital of france ?"):
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True)  # fmt: skip


def _torch_greedy(model, inputs, n):
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False, pad_token_id=0,
                             output_logits=True, return_dict_in_generate=True)  # fmt: skip
    return out.sequences[0, inputs["input_ids"].shape[1] :].tolist(), [s[0].numpy() for s in out.logits]


def test_every_projection_and_the_head_keep_their_grid(built):
    _, _, meta = built
    kinds = meta["layers"]
    assert kinds["lm_head"] == "q8"
    assert {kind for name, kind in kinds.items() if name != "lm_head"} == {"q4"}
    assert len(kinds) == 4 * 2 + 1  # qkv, o, gate+up, down in each of the 2 layers


@pytest.mark.parametrize("text", ["what is the capital of france ?", "name a city"])
def test_greedy_tokens_and_logits_equal_float32(built, text):
    model, copy, _ = built
    inputs = _prompt(copy.tokenizer, text)
    expected, expected_logits = _torch_greedy(model, inputs, 12)
    scores: list = []
    assert copy.generate(inputs["input_ids"], 12, stop_on_eos=False, scores=scores) == expected
    for want, got in zip(expected_logits, scores, strict=True):
        assert abs(want - got).max() < 1e-4


def test_stops_on_eos_and_on_halt(built):
    _, copy, _ = built
    ids = _prompt(copy.tokenizer)["input_ids"]
    free = copy.generate(ids, 12, stop_on_eos=False)
    stopped = copy.generate(ids, 12, eos_token_ids=[free[3]])
    assert stopped == free[: free.index(free[3]) + 1]
    halt = threading.Event()
    halt.set()
    assert copy.generate(ids, 12, halt=halt) == []
    halt = threading.Event()
    seen = []
    for token in copy.stream(ids, 12, halt=halt, stop_on_eos=False):
        seen.append(token)
        if len(seen) == 2:
            halt.set()
    assert seen == free[:2]
    assert isinstance(copy.chat("name a city", 4), str)


def test_refuses_a_head_size_ort_cannot_run(tiny_chat_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_chat_model, dtype=torch.float32)  # head_dim 8
    with pytest.raises(ValueError, match="multiple of 16"):
        cpu_onnx.build_graph(model)


def test_weights_on_no_grid_stay_float32_and_agree(tmp_path_factory, tiny_chat_model):
    source, model = _folder(tmp_path_factory, tiny_chat_model, "plain", lambda m: None)
    target = tmp_path_factory.mktemp("plain-onnx")
    meta = cpu_onnx.build(source, target)
    assert set(meta["layers"].values()) == {"fp32"}
    copy = cpu_onnx.load(target, threads=1)
    inputs = _prompt(copy.tokenizer)
    assert copy.generate(inputs["input_ids"], 8, stop_on_eos=False) == _torch_greedy(model, inputs, 8)[0]
