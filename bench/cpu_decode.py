"""CPU decoding of the packaged SmolLM2-135M-Instruct: float32 against `services.models.cpu_fast`.

    python -m bench.cpu_decode [--runs 5] [--tokens 64] [--threads N] [--agree-tokens 32] [--max-cache-len 512]

Both copies load from the converted pack folder (`packs.ensure_ready("smollm2-135m-instruct")`); prompts are encoded
as the chat tab does (`services.pipelines.chat.encode_prompt`: the chat template with the generation prompt).

1. Speed: greedy decoding at batch 1 of exactly `--tokens` new tokens (prefill included), tokens per second, the two
   copies timed in alternation (ABBA) after a warm-up; medians of `--runs` each. Goal: optimised >= 2x float32.
2. Agreement: the first `--agree-tokens` greedy tokens for 20 fixed prompts (facts, instructions, code, translation,
   summary...), identical between the copies. Goal: at least 18 of 20.
3. Costs: seconds to convert the weights and to compile the decode step (the first `generate`), and the resident
   set size after each load.

Prints a JSON summary (and the load average at the start and end: another process on the cores makes single
runs vary by +-15 %). Routes measured while choosing this one, same machine and method (1 thread, fp32 baseline
~17 tokens/s): bf16 weights 1.0x eager / 1.3x compiled+frozen, 11/20 agreement; fp16 1.0x, 17/20;
`torch.ao.quantization.quantize_dynamic` qint8 2.0x but 1/20 (and deprecated); the same with float16 weights
1.4x, 20/20; torchao 0.18 int8 weight-only 0.5x and int8 dynamic 0.8x in eager mode; per-channel int8 weights
8/20; float32 compiled with a static cache 1.0x, 20/20.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from types import SimpleNamespace

PROMPTS = [
    "What is the capital of France?",
    "Name three primary colours.",
    "Write a Python function that returns the square of a number.",
    "Translate to French: The weather is nice today.",
    "Summarize in one sentence: The cat sat on the mat all afternoon, watching birds through the window.",
    "How many days are in a leap year?",
    "Give me a short tip for sleeping better.",
    "What does HTTP stand for?",
    "Write a haiku about the sea.",
    "Explain what a prime number is.",
    "List the planets of the solar system.",
    "Who wrote Romeo and Juliet?",
    "Write a SQL query that counts the rows of a table named users.",
    "What is 12 times 7?",
    "Translate to Spanish: Where is the train station?",
    "Give two reasons to drink water.",
    "What is photosynthesis?",
    "Write a JavaScript one-liner that reverses a string.",
    "Suggest a name for a small bakery.",
    "Describe the colour blue to someone in one sentence.",
]
SPEED_PROMPT = "Write a short story about a robot who learns to paint."


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _encode(model, tokenizer, prompt: str) -> dict:
    from services.pipelines.chat import encode_prompt

    return encode_prompt(SimpleNamespace(model=model, tokenizer=tokenizer), prompt)


def greedy(model, tokenizer, prompt: str, new_tokens: int, exact: bool = False) -> list[int]:
    import torch

    inputs = _encode(model, tokenizer, prompt)
    extra = {"min_new_tokens": new_tokens} if exact else {}
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tokenizer.eos_token_id, **extra)  # fmt: skip
    return out[0, inputs["input_ids"].shape[1] :].tolist()


def tokens_per_second(model, tokenizer, new_tokens: int) -> float:
    started = time.perf_counter()
    produced = len(greedy(model, tokenizer, SPEED_PROMPT, new_tokens, exact=True))
    return produced / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=None, help="torch threads for both copies (default: torch's)")
    parser.add_argument("--agree-tokens", type=int, default=32)
    parser.add_argument("--max-cache-len", type=int, default=None)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_start = os.getloadavg()
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from services.models import cpu_fast, packs

    if args.threads:
        torch.set_num_threads(args.threads)
    folder = packs.ensure_ready("smollm2-135m-instruct")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    rss_fp32 = _rss_mb()
    fast = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    started = time.perf_counter()
    options = {"max_cache_len": args.max_cache_len} if args.max_cache_len else {}
    cpu_fast.optimise_for_cpu(fast, **options)
    convert_s = time.perf_counter() - started
    compile_s = cpu_fast.warm_up(fast, tokenizer)
    rss_both = _rss_mb()

    greedy(base, tokenizer, SPEED_PROMPT, 8)
    greedy(fast, tokenizer, SPEED_PROMPT, 8)
    speeds: dict[str, list[float]] = {"fp32": [], "fast": []}
    for i in range(args.runs):  # ABBA: neither copy always goes first
        order = (("fp32", base), ("fast", fast)) if i % 2 == 0 else (("fast", fast), ("fp32", base))
        for name, model in order:
            speeds[name].append(tokens_per_second(model, tokenizer, args.tokens))
    medians = {name: statistics.median(samples) for name, samples in speeds.items()}

    same, diverged = 0, []
    for index, prompt in enumerate(PROMPTS):
        a = greedy(base, tokenizer, prompt, args.agree_tokens)
        b = greedy(fast, tokenizer, prompt, args.agree_tokens)
        if a == b:
            same += 1
        else:
            first = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            diverged.append({"prompt": index, "first_different_token": first})

    counts: dict[str, int] = {}
    for kind in fast.cpu_fast_report.values():
        counts[kind] = counts.get(kind, 0) + 1
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "threads": torch.get_num_threads(),
        "new_tokens": args.tokens,
        "runs": args.runs,
        "fp32_tokens_per_s": round(medians["fp32"], 2),
        "fast_tokens_per_s": round(medians["fast"], 2),
        "ratio": round(medians["fast"] / medians["fp32"], 3),
        "goal_ratio": 2.0,
        "samples": {name: [round(s, 2) for s in samples] for name, samples in speeds.items()},
        "agreement": f"{same}/{len(PROMPTS)}",
        "agree_tokens": args.agree_tokens,
        "goal_agreement": f"18/{len(PROMPTS)}",
        "diverged": diverged,
        "layers": counts,
        "max_cache_len": fast.generation_config.max_cache_len,
        "convert_s": round(convert_s, 2),
        "compile_s": round(compile_s, 1),
        "rss_mb_fp32_only": round(rss_fp32),
        "rss_mb_fp32_and_fast": round(rss_both),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
