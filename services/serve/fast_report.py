"""The parity and speed report of the fast CPU copy of SmolLM2 (`services.models.fast_cpu`), as an ONNX export has
one: does it answer as the float32 model does, and how much faster.

`check()` sends a few fixed chat prompts to both models through the app's own generation code, greedily, and
compares the tokens they choose and each chosen token's probability; then it times both on the same prompt, in
turns (ABBA), for the same number of new tokens. The report is saved beside the copy (`report.json`), and is what
the Deploy tab shows. The full benchmark (20 prompts, 5 runs) is `python -m bench.cpu_onnx_decode`.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable

from services.models import fast_cpu

PROMPTS = (
    "Name three colours of the rainbow.",
    "What is the capital of France?",
    "Give me one tip for a good night's sleep.",
    "Explain in one sentence what a noun is.",
    "How many legs does a spider have?",
    "Write a haiku about the sea.",
)
SPEED_PROMPT = "Write a short story about a robot who learns to paint."
REPORT = "report.json"


def _answer(model: str, prompt: str, tokens: int) -> tuple[list[int], list[float], float, int]:
    """Greedy token ids, their probabilities, seconds and new tokens of one answer."""
    from services.pipelines import stream

    started = time.perf_counter()
    final = list(stream(model, [{"role": "user", "content": prompt}], max_new_tokens=tokens, do_sample=False))[-1]
    seconds = time.perf_counter() - started
    steps = final.get("tokens") or []
    return [s["id"] for s in steps], [s["prob"] for s in steps], seconds, int(final.get("new_tokens") or len(steps))


def check(tokens: int = 24, speed_tokens: int = 48, runs: int = 3, progress: Callable | None = None) -> dict:
    """Compare the copy with the float32 model; returns the report (also saved beside the copy)."""
    progress = progress or (lambda fraction, message: None)
    fast, plain = fast_cpu.FAST_ID, fast_cpu.BASE
    same, worst = 0, 0.0
    for i, prompt in enumerate(PROMPTS):
        progress(0.05 + 0.5 * i / len(PROMPTS), f"Prompt {i + 1} of {len(PROMPTS)} on both models")
        ids_a, probs_a, _, _ = _answer(plain, prompt, tokens)
        ids_b, probs_b, _, _ = _answer(fast, prompt, tokens)
        same += ids_a == ids_b
        shared = next((k for k, (x, y) in enumerate(zip(ids_a, ids_b, strict=False)) if x != y), min(len(ids_a),
                      len(ids_b)))  # fmt: skip
        worst = max([worst, *(abs(a - b) for a, b in zip(probs_a[:shared], probs_b[:shared], strict=True))])
    speeds: dict[str, list[float]] = {plain: [], fast: []}
    for run in range(runs):  # ABBA: neither side always goes first
        progress(0.6 + 0.35 * run / runs, f"Timing both, round {run + 1} of {runs}")
        for model in (plain, fast) if run % 2 == 0 else (fast, plain):
            _, _, seconds, made = _answer(model, SPEED_PROMPT, speed_tokens)
            speeds[model].append(made / seconds)
    rate = {model: statistics.median(values) for model, values in speeds.items()}
    folder = fast_cpu.folder()
    from services.models import packs

    weights = sum(p.stat().st_size for p in packs.ensure_ready(plain).glob("*.safetensors"))
    report = {
        "model": fast,
        "base": plain,
        "prompts": len(PROMPTS),
        "new_tokens": tokens,
        "agreement": same / len(PROMPTS),
        "max_abs_prob_diff": round(worst, 6),
        "tokens_per_s": {"pytorch_fp32": round(rate[plain], 2), "onnx_4bit": round(rate[fast], 2)},
        "speedup": round(rate[fast] / rate[plain], 3),
        "runs": runs,
        "size_mb": {"pytorch_fp32": round(weights / 2**20, 1), "onnx_4bit": round(fast_cpu.size_bytes() / 2**20, 1)},
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
    }
    (folder / REPORT).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    progress(1.0, "Checked")
    return report
