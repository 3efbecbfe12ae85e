"""An ONNX Runtime copy of a GGUF-derived Llama chat model (the packaged SmolLM2-135M-Instruct) for CPU decoding:
the model's own 4-bit weights, exact, read by ONNX Runtime's MatMulNBits kernels; greedy answers unchanged.

Why this route. Batch-1 decoding is matrix-vector work bound by weight traffic, and this model's greedy answers
break under lossy shortcuts (see `services.models.cpu_fast` and bench/RESULTS.md). The packaged weights were
de-quantized from a Q4_1 GGUF: every projection is exactly ``q * d + m`` per 32 inputs (4-bit q), the tied
embedding / LM head exactly ``q * d`` (Q8_0, 8-bit q). `build` writes a hand-made ONNX graph of the decoder
(Gather, SimplifiedLayerNormalization / SkipSimplifiedLayerNormalization, GroupQueryAttention with rotary and a KV
cache, Split + SiLU; all ORT contrib ops for CPU) in which each projection (q/k/v fused, gate/up fused) is
``MatMulNBits(x; codes q, scales d, zero points 0) + groupsum(x) @ m`` and the LM head is one 4-bit MatMulNBits
over ``[x, x]`` with Q8_0's ``q = 16 * hi + lo`` split into two exact 4-bit halves (scales ``16 d`` with zero point
8, and ``d`` with zero point 0): the weights are exact, ``accuracy_level`` 0 computes in float32, so only the
summation order differs from PyTorch (SmolLM2's logits, |max| ~28, within 1.3e-4). Layers on no grid are plain
float32 MatMuls.
Routes that did not hold (measured, 2 threads): float zero points (``-m / d``) are exact but drop MatMulNBits to a
de-quantize-every-call path (10x slower); 8-bit MatMulNBits with accuracy_level 0 is the same slow path;
accuracy_level 4 (int8 activations per block of 32) is 3x faster per MatMul but keeps 3/20 answers (10/20 when
only the head uses it); ``MatMulNBitsQuantizer`` (RTN, integer zero points) cannot reproduce Q4_1's float offsets
(up_proj of layer 0: max |w - w_rtn| 0.066, 0.3 % of weights exact).

Measured on the 2-core development CPU (onnxruntime 1.32.0, torch 2.13.0+cpu, transformers 5.23.0) with
``python -m bench.cpu_onnx_decode``: 64 greedy tokens at batch 1 (prompt encoding and prefill included), float32
PyTorch and the ORT copies interleaved (ABBA), medians of 5-7; another engineer's jobs shared the cores (load
average 0.8-3.5), so single samples vary; 20/20 prompts keep their first 32 greedy tokens in every run.
- 2 threads, ``spinning=True``: 24.5 -> 61.9 tokens/s, 2.53x (an earlier, busier run: 19.8 -> 63.5, 3.2x).
- 2 threads, ``spinning=False``: 24.5 -> 48.2 tokens/s, 1.97x (busier run: 19.8 -> 49.1, 2.48x).
- 1 thread: 15.6 -> 37.2 tokens/s with spinning (2.39x), 36.0 without (2.31x); the steadiest figures.
Spinning matters because a decode step runs ~790 small ORT nodes: woken threads cost more than the work. With
spinning the pool's threads busy-wait during a run; ``session.force_spinning_stop`` (pass it in
`session_config`) stops them at the end of each run for ~2 % of speed. On a machine shared with other work,
1 thread is the safer choice: the outlying 2-thread samples (float32 0.6-1.3, ORT 20-33 tokens/s) came while
other work took a core.

What it costs: `build` takes 6-21 s (loads the float32 model with torch, finds the grids with
`cpu_fast._grid`); model.onnx is 222 MB (codes, scales, offsets, and the float32 embedding table for Gather); a
loaded copy adds ~280 MB of resident memory (330 MB for a process with only onnxruntime); loading takes ~0.6 s.
Decoding needs numpy and onnxruntime only (no torch). Batch 1 and greedy only; GroupQueryAttention needs a head
size that is a multiple of 16; each call preallocates a KV cache of prompt + `max_new_tokens` positions, written
in place (past and present share one buffer). One call at a time per copy (a lock).

    from services.models import cpu_onnx, packs
    copy = cpu_onnx.load_or_build(packs.ensure_ready("smollm2-135m-instruct"), folder, threads=2, spinning=True)
    ids = copy.generate(input_ids, max_new_tokens=64, halt=event)   # or: for token in copy.stream(...)
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

GROUP = 32
MODEL_FILE = "model.onnx"
META_FILE = "cpu_onnx.json"
_COPIED = ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
           "special_tokens_map.json", "playground-pack.json")  # fmt: skip


class _Graph:
    """Nodes and initializers of the graph being built, with fresh names."""

    def __init__(self):
        self.nodes, self.inits, self.count = [], [], 0

    def name(self, hint: str) -> str:
        self.count += 1
        return f"{hint}_{self.count}"

    def const(self, array, hint: str = "c") -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.inits.append(numpy_helper.from_array(array, name))
        return name

    def op(self, kind: str, inputs: list[str], outputs: int | list[str] = 1, domain: str = "", **attrs) -> Any:
        from onnx import helper

        names = [self.name(kind) for _ in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(
            helper.make_node(kind, inputs, names, domain=domain, name=self.name(kind + "_node"), **attrs)
        )
        return names[0] if len(names) == 1 else names


def _pack4(q):
    """[N, G, 32] codes 0..15 -> [N, G, 16] bytes, element 2j in the low nibble (MatMulNBits' layout)."""
    import numpy as np

    q = q.astype(np.uint8)
    return q[..., 0::2] | (q[..., 1::2] << 4)


def _nbits(g: _Graph, x: str, codes, scales, zero_points, accuracy_level: int, hint: str) -> str:
    """y = x @ W.T with W[n, k] = (codes - zero_points) * scales per block of 32 (4-bit codes and zero points)."""
    import numpy as np

    n, blocks = scales.shape
    zp = zero_points.astype(np.uint8)
    if blocks % 2:
        zp = np.concatenate([zp, np.zeros((n, 1), np.uint8)], 1)
    packed_zp = zp[:, 0::2] | (zp[:, 1::2] << 4)
    inputs = [x, g.const(_pack4(codes), hint + "_q"), g.const(scales.astype(np.float32).reshape(-1), hint + "_d"),
              g.const(packed_zp.reshape(-1), hint + "_zp")]  # fmt: skip
    return g.op("MatMulNBits", inputs, domain="com.microsoft", K=blocks * GROUP, N=n, bits=4, block_size=GROUP,
                accuracy_level=accuracy_level)  # fmt: skip


def _linear(g: _Graph, x: str, weights: list, accuracy_level: int, hint: str, dense=False) -> tuple[str, str]:
    """x @ concat(weights).T, exactly on each weight's GGUF grid when all have one; returns (output, kind)."""
    import numpy as np
    import torch

    from services.models import cpu_fast

    found = [cpu_fast._grid(w) if w.shape[1] % GROUP == 0 and not dense else None for w in weights]
    kinds = {f[0] if f else None for f in found}
    if len(kinds) != 1 or None in kinds:  # no common grid: plain float32
        dense = torch.cat([w.detach().float() for w in weights]).numpy()
        return g.op("MatMul", [x, g.const(np.ascontiguousarray(dense.T), hint + "_w")]), "fp32"
    kind = kinds.pop()
    q = torch.cat([f[1] for f in found]).numpy()
    d = torch.cat([f[2] for f in found]).numpy().astype(np.float32)
    k = q.shape[1] * GROUP
    if kind == "q4":  # q * d + m: MatMulNBits (zero point 0) plus the offsets times each group's sum of inputs
        m = torch.cat([f[3] for f in found]).numpy().astype(np.float32)
        groups = g.op("Reshape", [x, g.const(np.array([0, 0, k // GROUP, GROUP], np.int64))])
        sums = g.op("ReduceSum", [groups, g.const(np.array([-1], np.int64))], keepdims=0)
        offsets = g.op("MatMul", [sums, g.const(np.ascontiguousarray(m.T), hint + "_m")])
        return g.op("Add", [_nbits(g, x, q, d, np.zeros_like(q[..., 0]), accuracy_level, hint), offsets]), "q4"
    if accuracy_level == 4:  # int8 activations anyway: MatMulNBits' own 8-bit codes (zero point 128)
        inputs = [x, g.const((q + 128).astype(np.uint8), hint + "_q"), g.const(d.reshape(-1), hint + "_d")]
        return g.op("MatMulNBits", inputs, domain="com.microsoft", K=k, N=q.shape[0], bits=8, block_size=GROUP,
                    accuracy_level=accuracy_level), "q8"  # fmt: skip
    # Q8_0, q * d with q in -127..127 = 16 * hi + lo: two exact 4-bit halves over the input given twice
    lo = np.mod(q, 16)
    hi = (q - lo) / 16 + 8
    codes = np.concatenate([hi, lo], 1)
    scales = np.concatenate([d * 16, d], 1)
    zero_points = np.concatenate([np.full_like(d, 8), np.zeros_like(d)], 1)
    twice = g.op("Concat", [x, x], axis=-1)
    return _nbits(g, twice, codes, scales, zero_points, accuracy_level, hint), "q8"


def build_graph(model, accuracy_level: int = 0, head_accuracy_level: int | None = None, dense_head: bool = False):
    """The decoder of a float32 LlamaForCausalLM as an ONNX model with a KV cache (GroupQueryAttention), every
    projection and the LM head on the model's own GGUF grid (MatMulNBits). Returns (onnx model, {layer: kind})."""
    import numpy as np
    import torch
    from onnx import TensorProto, helper

    config = model.config
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    eps = float(config.rms_norm_eps)
    if head_dim % 16:
        raise ValueError(f"ORT's GroupQueryAttention needs a head size that is a multiple of 16, not {head_dim}.")
    g, kinds = _Graph(), {}
    core = model.model
    with torch.no_grad():
        positions = torch.arange(config.max_position_embeddings)[None]
        cos, sin = core.rotary_emb(torch.zeros(1, dtype=torch.float32), positions)
    cos_cache = g.const(cos[0, :, : head_dim // 2].float().numpy().copy(), "cos")
    sin_cache = g.const(sin[0, :, : head_dim // 2].float().numpy().copy(), "sin")

    def norm_weight(module):
        return g.const(module.weight.detach().float().numpy().copy(), "norm")

    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
              helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["batch"]),
              helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, [])]  # fmt: skip
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1, config.vocab_size])]
    embed = g.const(core.embed_tokens.weight.detach().float().numpy(), "embed")
    residual = g.op("Gather", [embed, "input_ids"])
    x = g.op("SimplifiedLayerNormalization", [residual, norm_weight(core.layers[0].input_layernorm)], axis=-1,
             epsilon=eps, stash_type=1)  # fmt: skip
    for i, layer in enumerate(core.layers):
        attn, mlp = layer.self_attn, layer.mlp
        past = [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
        present = [f"present.{i}.key", f"present.{i}.value"]
        for name in past:
            inputs.append(
                helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", kv_heads, "past", head_dim])
            )
        for name in present:
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT,
                                                         ["batch", kv_heads, "total", head_dim]))  # fmt: skip
        qkv, kinds[f"{i}.qkv"] = _linear(g, x, [attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight],
                                         accuracy_level, f"l{i}_qkv")  # fmt: skip
        context = g.op("GroupQueryAttention", [qkv, "", "", *past, "seqlens_k", "total_sequence_length", cos_cache,
                                               sin_cache], [g.name("attn"), *present], domain="com.microsoft",
                       num_heads=heads, kv_num_heads=kv_heads, do_rotary=1, rotary_interleaved=0,
                       scale=float(attn.scaling))[0]  # fmt: skip
        o, kinds[f"{i}.o"] = _linear(g, context, [attn.o_proj.weight], accuracy_level, f"l{i}_o")
        x, _, _, residual = g.op("SkipSimplifiedLayerNormalization",
                                 [o, residual, norm_weight(layer.post_attention_layernorm)], 4, domain="com.microsoft",
                                 epsilon=eps)  # fmt: skip
        gate_up, kinds[f"{i}.gate_up"] = _linear(g, x, [mlp.gate_proj.weight, mlp.up_proj.weight], accuracy_level,
                                                 f"l{i}_gu")  # fmt: skip
        gate, up = g.op("Split", [gate_up], 2, axis=-1, num_outputs=2)
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])
        down, kinds[f"{i}.down"] = _linear(g, act, [mlp.down_proj.weight], accuracy_level, f"l{i}_down")
        following = core.layers[i + 1].input_layernorm if i + 1 < len(core.layers) else core.norm
        x, _, _, residual = g.op("SkipSimplifiedLayerNormalization", [down, residual, norm_weight(following)], 4,
                                 domain="com.microsoft", epsilon=eps)  # fmt: skip
    last = g.op("Slice", [x, g.const(np.array([-1], np.int64)), g.const(np.array([2**62], np.int64)),
                          g.const(np.array([1], np.int64))])  # fmt: skip
    head_level = accuracy_level if head_accuracy_level is None else head_accuracy_level
    logits, kinds["lm_head"] = _linear(g, last, [model.lm_head.weight], head_level, "lm_head", dense_head)
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    graph = helper.make_graph(g.nodes, "decoder", inputs, outputs, g.inits)
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                         helper.make_opsetid("com.microsoft", 1)])  # fmt: skip
    onnx_model.ir_version = 9
    return onnx_model, kinds


def build(
    source, target, *, accuracy_level: int = 0, head_accuracy_level: int | None = None, dense_head: bool = False
) -> dict:
    """Build the ORT copy of the `from_pretrained` folder `source` (e.g. `packs.ensure_ready(...)`) into the folder
    `target` (model.onnx, the tokenizer and config, cpu_onnx.json); returns the meta data written."""
    import torch
    from transformers import AutoModelForCausalLM

    started = time.perf_counter()
    source, target = Path(source), Path(target)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    if model.config.model_type != "llama":
        raise ValueError(f"cpu_onnx builds Llama models only, not {model.config.model_type}.")
    onnx_model, kinds = build_graph(model, accuracy_level, head_accuracy_level, dense_head)
    target.mkdir(parents=True, exist_ok=True)
    with open(target / MODEL_FILE, "wb") as f:
        f.write(onnx_model.SerializeToString())
    for name in _COPIED:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)
    eos = model.generation_config.eos_token_id
    meta = {"layers": kinds, "accuracy_level": accuracy_level, "head_accuracy_level": head_accuracy_level,
            "num_layers": model.config.num_hidden_layers, "kv_heads": model.config.num_key_value_heads,
            "head_dim": onnx_model.graph.input[3].type.tensor_type.shape.dim[3].dim_value,
            "max_positions": model.config.max_position_embeddings,
            "eos_token_ids": [eos] if isinstance(eos, int) else list(eos or []),
            "build_s": round(time.perf_counter() - started, 2)}  # fmt: skip
    (target / META_FILE).write_text(json.dumps(meta, indent=1))
    logger.info("cpu_onnx: built %s in %.1f s (%s)", target, meta["build_s"], sorted(set(kinds.values())))
    return meta


class CpuOnnxModel:
    """A loaded ORT copy: `generate` / `stream` decode greedily at batch 1 with a preallocated KV cache."""

    def __init__(self, folder, threads: int | None = None, spinning: bool = False, load_tokenizer: bool = True,
                 session_config: dict[str, str] | None = None):  # fmt: skip
        import onnxruntime as ort

        self.folder = Path(folder)
        self.meta = json.loads((self.folder / META_FILE).read_text())
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        for key, value in (session_config or {}).items():
            options.add_session_config_entry(key, value)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        self.vocab = self.session.get_outputs()[0].shape[-1]
        self.tokenizer = None
        if load_tokenizer:
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.folder)
        self._lock = threading.Lock()

    def stream(self, input_ids, max_new_tokens: int = 128, *, halt: threading.Event | None = None,
               stop_on_eos: bool = True, eos_token_ids=None, scores: list | None = None,
               choose: Callable[[Any], int] | None = None) -> Iterator[int]:  # fmt: skip
        """Greedy token ids after the prompt `input_ids` (a list, or a [1, S] array / tensor), one at a time, until
        `max_new_tokens`, an end-of-sequence token (unless not `stop_on_eos`) or `halt` is set; `scores`, when
        given, receives each step's logits (a float32 array of the vocabulary's size). `choose(logits)` picks the
        next token instead of the argmax (sampling). Close the generator when stopping early: it holds the lock."""
        import numpy as np
        import onnxruntime as ort

        ids = np.asarray(input_ids.tolist() if hasattr(input_ids, "tolist") else input_ids, np.int64).reshape(1, -1)
        eos = set(self.meta["eos_token_ids"] if eos_token_ids is None else eos_token_ids) if stop_on_eos else set()
        length = ids.shape[1] + max_new_tokens
        if length > self.meta["max_positions"]:
            raise ValueError(f"{length} positions are more than the model's {self.meta['max_positions']}.")
        with self._lock:
            binding = self.session.io_binding()
            shape = (1, self.meta["kv_heads"], length, self.meta["head_dim"])
            cache = []
            for i in range(self.meta["num_layers"]):  # one buffer per past/present pair: written in place
                for part in ("key", "value"):
                    buffer = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cpu", 0)
                    cache.append(buffer)
                    binding.bind_ortvalue_input(f"past_key_values.{i}.{part}", buffer)
                    binding.bind_ortvalue_output(f"present.{i}.{part}", buffer)
            logits = np.empty((1, 1, self.vocab), np.float32)
            binding.bind_output("logits", "cpu", 0, np.float32, logits.shape, logits.ctypes.data)
            seen = ids.shape[1]
            tokens = ids
            for _ in range(max_new_tokens):
                if halt is not None and halt.is_set():
                    return
                binding.bind_cpu_input("input_ids", tokens)
                binding.bind_cpu_input("seqlens_k", np.array([seen - 1], np.int32))
                binding.bind_cpu_input("total_sequence_length", np.array(seen, np.int32))
                self.session.run_with_iobinding(binding)
                token = int(logits[0, 0].argmax()) if choose is None else int(choose(logits[0, 0]))
                if scores is not None:
                    scores.append(logits[0, 0].copy())
                yield token
                if token in eos:
                    return
                tokens = np.array([[token]], np.int64)
                seen += 1

    def generate(self, input_ids, max_new_tokens: int = 128, **options) -> list[int]:
        """The greedy token ids after `input_ids` (at most `max_new_tokens`; see `stream` for the options)."""
        return list(self.stream(input_ids, max_new_tokens, **options))

    def chat(self, prompt: str, max_new_tokens: int = 128, on_token: Callable[[int], None] | None = None,
             **options) -> str:  # fmt: skip
        """The decoded greedy answer to a user message, encoded with the chat template."""
        ids = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):
            ids = ids["input_ids"]
        out = []
        for token in self.stream(ids, max_new_tokens, **options):
            out.append(token)
            if on_token:
                on_token(token)
        return self.tokenizer.decode(out, skip_special_tokens=True)


def load(folder, *, threads: int | None = None, spinning: bool = False, **options) -> CpuOnnxModel:
    """The ORT copy in `folder` (from `build`), on `threads` intra-op threads (ORT's default: all cores)."""
    return CpuOnnxModel(folder, threads=threads, spinning=spinning, **options)


def load_or_build(source, target, **options) -> CpuOnnxModel:
    """The ORT copy in `target`, built there from `source` first when it holds none (`build`'s defaults);
    `options` go to `load`."""
    if not (Path(target) / META_FILE).is_file() or not (Path(target) / MODEL_FILE).is_file():
        build(source, target)
    return load(target, **options)
