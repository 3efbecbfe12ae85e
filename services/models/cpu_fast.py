"""A faster CPU copy of a GGUF-derived chat model (the packaged SmolLM2-135M-Instruct): its own low-bit weights,
read with float32 arithmetic, and a compiled decode step. Greedy answers stay those of the float32 model.

Why this route. Decoding one token at batch 1 is matrix-vector work: every weight is read once per token, so the
float32 model is bound by memory traffic (540 MB a token for SmolLM2; `aten::mm` is ~80 % of a step). Cutting the
bytes is the lever, but this model's greedy answers are fragile: on 20 fixed prompts the first 32 greedy tokens of
bf16 weights agreed 11/20, fp16 17/20, per-channel int8 weights (round-to-nearest) 8/20, and
`torch.ao.quantization.quantize_dynamic` (int8 activations too, deprecated) 1/20. What does hold is exactness: the
packaged model was de-quantized from a Q4_1 GGUF, so every block weight is *exactly* ``q * d + m`` with a 4-bit
``q`` per weight and one ``d, m`` per 32 inputs (Q4_1), and the tied embedding / LM head is exactly ``q * d`` with an
8-bit ``q`` (Q8_0). `optimise_for_cpu` finds those grids (a layer is converted only when the reconstruction is
bit-identical), keeps the codes (0.5 byte a weight, 1 for the head, plus float16 scales, exact as GGUF stores
them) and computes ``y = sum_g d_g * (q_g . x_g) + m_g * sum(x_g)`` in float32: only the summation order differs
from float32, so the answers do not change. The kernels are plain torch ops that inductor fuses into one loop
over the codes (`torch.compile` of the decode step, with a static KV cache, which also removes most per-op Python
overhead); the codes are laid out in blocks of 64 outputs so that loop reads memory sequentially.

Measured on the 2-core development CPU (torch 2.13.0+cpu, transformers 5.23.0) with ``python -m bench.cpu_decode``:
64 greedy tokens at batch 1 (prefill included), float32 and this copy interleaved, medians of 5; another engineer's
jobs shared the cores, so single runs vary by +-15 %. The goal was 2x; this reaches about 1.6-1.75x:
- 1 thread, loaded machine (load average 2.7-5): 12.3 -> 20.4 tokens/s, 1.66x; 20/20 prompts keep their first 32
  greedy tokens.
- 2 threads, quiet machine: 25.1 -> 40.7 tokens/s, 1.63x (max_cache_len 512); 25.3 -> 44.0, 1.74x (128); 20/20.
- 2 threads while another process uses a core: both copies collapse (2-15 tokens/s), the compiled one worse (its
  OpenMP loops wait for a descheduled thread): on a shared 2-core box, serve it with `torch.set_num_threads(1)`.
The low-bit loops run at ~8 G weights/s, 2-2.5x float32's matrix-vector product; the rest of the step (attention
over the static cache, norms, guards) keeps the total under 2x. Other routes: see bench/cpu_decode.py.

What it costs:
- Memory: the float32 weights are kept (prefill, batches and beams use them, exact and as fast as before), plus
  the codes and scales (~140 MB for SmolLM2) and inductor's compiled code: the optimised copy measured +806 MB of
  resident memory beside a float32 one (which itself is ~540 MB of weights). `keep_dense=False` drops the float32
  copies of converted layers (-430 MB) at ~0.35 s more per prompt, as prefill then de-quantizes the weights.
- Compile time: the first `generate` compiles the decode step, ~60 s on 2 cores (`warm_up` pays it at load time);
  inductor needs a C++ compiler at run time. Kernels are compiled for `torch.get_num_threads()` at that moment.
- A static KV cache of `max_cache_len` positions (default 512): attention reads all of it every step. A generation
  that needs more grows the cache and recompiles once (with a dynamic length). `compile=False` skips compiling:
  exact, but unfused and slower than float32 (for tests and checks: the fused loops are what make the codes pay).
- Only batch-1 decoding takes the low-bit path; layers whose weights are on no grid stay as they are (a model not
  converted from GGUF gains nothing). The copy is for serving: do not `save_pretrained` it or train it.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)

GROUP = 32  # inputs per scale (GGUF Q4_1 / Q8_0 blocks)
BLOCKS = (64, 32, 16)  # outputs per block of the code layout, the first that divides out_features
DEFAULT_CACHE_LEN = 512


def _grid(weight) -> tuple[str, Any, Any, Any] | None:
    """(kind, codes [N, G, 32], scale [N, G], offset [N, G] | None) when `weight` [N, K] is exactly on a GGUF grid."""
    import torch

    n, k = weight.shape
    w = weight.detach().float().reshape(n, k // GROUP, GROUP)
    low, high = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
    step = (high - low) / 15
    step = torch.where(step == 0, torch.ones_like(step), step)
    q = ((w - low) / step).round().clamp(0, 15)
    if torch.equal(q * step + low, w):  # Q4_1: q * d + m, q in 0..15
        return "q4", q, step[..., 0], low[..., 0]
    step = w.abs().amax(-1, keepdim=True) / 127
    step = torch.where(step == 0, torch.ones_like(step), step)
    q = (w / step).round().clamp(-127, 127)
    if torch.equal(q * step, w):  # Q8_0: q * d, q in -127..127
        return "q8", q, step[..., 0], None
    return None


def _blocked(t, block: int):
    """[N, G] -> [N/block, G, block]; [N, G, R] -> [N/block, G, R, block] (outputs innermost, blocks outermost)."""
    n, g = t.shape[:2]
    if t.dim() == 2:
        return t.reshape(n // block, block, g).permute(0, 2, 1).contiguous()
    return t.reshape(n // block, block, g, t.shape[2]).permute(0, 2, 3, 1).contiguous()


def _compact(t):
    """float16 when that is exact (GGUF stores d and m as float16: half the scale traffic), else float32."""
    import torch

    half = t.half()
    return half if torch.equal(half.float(), t.float()) else t.float()


def _grid_linear_class():
    import torch
    import torch.nn.functional as F

    class GridLinear(torch.nn.Module):
        """A Linear whose weights are kept as GGUF-grid codes; batch-1 calls compute in float32 from the codes."""

        def __init__(self, linear: torch.nn.Linear, kind: str, q, scale, offset, block: int, keep_dense: bool):
            super().__init__()
            self.in_features, self.out_features, self.kind = linear.in_features, linear.out_features, kind
            if kind == "q4":  # two 4-bit codes a byte: inputs j (low nibble) and j + 16 (high) of each group
                q = q.to(torch.uint8)
                codes = q[..., :16] | (q[..., 16:] << 4)
            else:
                codes = q.to(torch.int8)
            self.register_buffer("codes", _blocked(codes, block))
            self.register_buffer("scale", _blocked(_compact(scale), block))
            self.register_buffer("offset", None if offset is None else _blocked(_compact(offset), block))
            self.weight = linear.weight if keep_dense else None
            self.bias = linear.bias

        def extra_repr(self) -> str:
            return f"in_features={self.in_features}, out_features={self.out_features}, kind={self.kind}"

        def _gemv(self, x):  # x: [in_features] float32 -> [out_features]
            g = self.in_features // GROUP
            scale = self.scale.float()[:, :, None, :]
            if self.kind == "q4":
                xg = x.view(1, g, 2, 16, 1)
                dots = (self.codes & 15).float() * xg[:, :, 0] + (self.codes >> 4).float() * xg[:, :, 1]
            else:
                dots = self.codes.float() * x.view(1, g, GROUP, 1)
            y = (dots * scale).sum((1, 2))
            if self.offset is not None:
                y = y + (self.offset.float() * x.view(1, g, GROUP).sum(-1, keepdim=True)).sum(1)
            return y.reshape(-1)

        def dequantized(self):
            """The float32 weight [out, in], rebuilt from the codes (bit-identical to the original)."""
            c = self.codes
            if self.kind == "q4":
                c = torch.cat([c & 15, c >> 4], 2)
            w = c.float() * self.scale.float()[:, :, None]
            if self.offset is not None:
                w = w + self.offset.float()[:, :, None]
            return w.permute(0, 3, 1, 2).reshape(self.out_features, self.in_features)

        def forward(self, x):
            if x.numel() == self.in_features:  # one token of one sequence: the decode step
                y = self._gemv(x.reshape(-1).float()).to(x.dtype).reshape(*x.shape[:-1], self.out_features)
                return y if self.bias is None else y + self.bias
            weight = self.weight if self.weight is not None else self.dequantized().to(x.dtype)
            return F.linear(x, weight, self.bias)

    return GridLinear


ATTENTION = "cpu_fast_sdpa"


def _register_attention() -> str:
    """SDPA that, for one query token, folds the query heads of a KV head into query rows (`pack_gqa`) also when
    compiled. transformers' own SDPA does that only in eager mode; compiled, it repeats the whole static cache per
    query head (`repeat_kv`) every step, which cost ~4 ms a token (of ~40) with 512 cached positions."""
    import torch
    from transformers import AttentionInterface
    from transformers.integrations import sdpa_attention
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    def attention(module, query, key, value, attention_mask, dropout=0.0, scaling=None, is_causal=None, **kwargs):
        groups = getattr(module, "num_key_value_groups", 1)
        simple = kwargs.get("position_bias") is None and kwargs.get("cache") is None and not kwargs.get("softcap")
        if query.shape[2] != 1 or groups == 1 or not simple or dropout:
            return sdpa_attention.sdpa_attention_forward(
                module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal,
                **kwargs,
            )  # fmt: skip
        packed = sdpa_attention.pack_gqa(query, groups)
        mask = sdpa_attention.pack_gqa(attention_mask, groups)
        out = torch.nn.functional.scaled_dot_product_attention(packed, key, value, attn_mask=mask, scale=scaling)
        return out.reshape(out.shape[0], -1, 1, value.shape[-1]).transpose(1, 2).contiguous(), None

    AttentionInterface.register(ATTENTION, attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
    return ATTENTION


def convert_linears(model, keep_dense: bool = True) -> dict[str, str]:
    """Replace every nn.Linear whose weights are exactly on a GGUF grid by a GridLinear, in place.
    Returns {layer name: "q4" | "q8" | "kept"}."""
    import torch

    grid_linear = _grid_linear_class()
    report: dict[str, str] = {}
    for parent_name, parent in list(model.named_modules()):
        for name, child in list(parent.named_children()):
            if type(child) is not torch.nn.Linear:
                continue
            full = f"{parent_name}.{name}" if parent_name else name
            block = next((b for b in BLOCKS if child.out_features % b == 0), None)
            found = _grid(child.weight) if block and child.in_features % GROUP == 0 else None
            if child.weight.device.type != "cpu" or found is None:
                report[full] = "kept"
                continue
            setattr(parent, name, grid_linear(child, *found, block=block, keep_dense=keep_dense))
            report[full] = found[0]
    return report


def optimise_for_cpu(
    model,
    *,
    compile: bool = True,
    max_cache_len: int = DEFAULT_CACHE_LEN,
    keep_dense: bool = True,
):
    """Make a float32 causal LM on the CPU decode faster with the same greedy answers, in place, and return it.

    Layers exactly on a GGUF grid keep their codes (see the module docstring); with `compile`, `generate` uses a
    static KV cache of `max_cache_len` positions and compiles the decode step on its first call (`warm_up`).
    `model.cpu_fast_report` tells what became of each Linear."""
    import torch
    from transformers import CompileConfig

    if next(model.parameters()).device.type != "cpu":
        raise ValueError("optimise_for_cpu is for a model on the CPU.")
    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("optimise_for_cpu expects float32 weights (the grids are found in float32).")
    model.eval()
    report = convert_linears(model, keep_dense=keep_dense)
    counts = Counter(report.values())
    if not counts.get("q4") and not counts.get("q8"):
        logger.warning("No Linear of %s is on a GGUF grid: optimise_for_cpu changes nothing.", type(model).__name__)
    logger.info("optimise_for_cpu: %s", dict(counts))
    model.cpu_fast_report = report
    if compile:
        if getattr(model.config, "_attn_implementation", None) == "sdpa":
            model.set_attn_implementation(_register_attention())
        config = CompileConfig(fullgraph=False, dynamic=None, mode="default")  # a longer cache: one dynamic recompile
        config._compile_all_devices = True  # transformers compiles the decode step on CUDA only unless told
        generation = model.generation_config
        generation.compile_config = config
        generation.cache_implementation = "static"
        generation.max_cache_len = max_cache_len
    return model


def warm_up(model, tokenizer, new_tokens: int = 4) -> float:
    """Run one short greedy generation so that the decode step is compiled now; return the seconds it took."""
    import time

    import torch

    started = time.perf_counter()
    encoded = tokenizer("Hello", return_tensors="pt")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    with torch.no_grad():
        model.generate(**encoded, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                       pad_token_id=pad)  # fmt: skip
    return time.perf_counter() - started


def load_fast(folder, *, warm: bool = True, **options):
    """(model, tokenizer) from a `from_pretrained` folder (e.g. `packs.ensure_ready("smollm2-135m-instruct")`),
    optimised for the CPU; `warm` compiles the decode step before returning (about a minute on 2 cores)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    optimise_for_cpu(model, **options)
    if warm and options.get("compile", True):
        logger.info("Compiled the CPU decode step in %.1f s", warm_up(model, tokenizer))
    return model, tokenizer
