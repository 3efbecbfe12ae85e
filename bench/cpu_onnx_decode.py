"""CPU decoding of the packaged SmolLM2-135M-Instruct: float32 PyTorch against `services.models.cpu_onnx`.

    python -m bench.cpu_onnx_decode [--runs 5] [--tokens 64] [--threads 2] [--agree-tokens 32] [--spinning 0 1]

The same harness as `bench.cpu_decode`: prompts encoded as the chat tab does, 64 greedy tokens at batch 1 (prefill
and encoding included), the copies timed in alternation (ABBA) after a warm-up, medians of `--runs`; agreement:
the first `--agree-tokens` greedy tokens of the 20 fixed prompts, identical to float32's (goal: >= 18/20, and
>= 2x float32's tokens/s). The ORT copy is built into a temporary folder (or `--folder`); its build time and the
resident memory it adds are reported. Prints JSON, with the load average at the start and end.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--agree-tokens", type=int, default=32)
    parser.add_argument("--spinning", type=int, nargs="+", default=[0, 1], help="ORT copies: allow_spinning 0/1")
    parser.add_argument("--accuracy-level", type=int, default=0, help="MatMulNBits accuracy_level (4: int8, lossy)")
    parser.add_argument("--folder", default=None, help="build the ORT copy here (default: a temporary folder)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_start = os.getloadavg()
    import onnxruntime
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.cpu_decode import PROMPTS, SPEED_PROMPT, _encode, _rss_mb, greedy, tokens_per_second
    from services.models import cpu_onnx, packs

    torch.set_num_threads(args.threads)
    source = packs.ensure_ready("smollm2-135m-instruct")
    folder = args.folder or tempfile.mkdtemp(prefix="cpu-onnx-")
    meta = cpu_onnx.build(source, folder, accuracy_level=args.accuracy_level)
    gc.collect()
    tokenizer = AutoTokenizer.from_pretrained(source)
    base = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    rss_fp32 = _rss_mb()
    copies = {}
    for spin in args.spinning:
        started = time.perf_counter()
        copies[f"ort_spin{spin}"] = cpu_onnx.load(folder, threads=args.threads, spinning=bool(spin))
        load_s = time.perf_counter() - started
    rss_all = _rss_mb()
    file_mb = os.path.getsize(os.path.join(folder, cpu_onnx.MODEL_FILE)) / 2**20

    def ort_speed(copy) -> float:
        started = time.perf_counter()
        ids = _encode(base, tokenizer, SPEED_PROMPT)["input_ids"]
        produced = len(copy.generate(ids, args.tokens, stop_on_eos=False))
        return produced / (time.perf_counter() - started)

    runners = {"fp32": lambda: tokens_per_second(base, tokenizer, args.tokens)}
    runners.update({name: (lambda c=c: ort_speed(c)) for name, c in copies.items()})
    greedy(base, tokenizer, SPEED_PROMPT, 8)
    for copy in copies.values():
        copy.generate(_encode(base, tokenizer, SPEED_PROMPT)["input_ids"], 8)
    speeds: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for i in range(args.runs):  # ABBA: no copy always goes first
        for name in names if i % 2 == 0 else names[::-1]:
            speeds[name].append(runners[name]())
    medians = {name: statistics.median(samples) for name, samples in speeds.items()}

    first = next(iter(copies.values()))
    same, diverged = 0, []
    for index, prompt in enumerate(PROMPTS):
        a = greedy(base, tokenizer, prompt, args.agree_tokens)
        b = first.generate(_encode(base, tokenizer, prompt)["input_ids"], args.agree_tokens)
        if a == b:
            same += 1
        else:
            at = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
            diverged.append({"prompt": index, "first_different_token": at})
    counts: dict[str, int] = {}
    for kind in meta["layers"].values():
        counts[kind] = counts.get(kind, 0) + 1
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "onnxruntime": onnxruntime.__version__,
        "threads": args.threads,
        "new_tokens": args.tokens,
        "runs": args.runs,
        "tokens_per_s": {name: round(value, 2) for name, value in medians.items()},
        "ratio_vs_fp32": {name: round(medians[name] / medians["fp32"], 3) for name in copies},
        "goal_ratio": 2.0,
        "samples": {name: [round(s, 2) for s in samples] for name, samples in speeds.items()},
        "agreement": f"{same}/{len(PROMPTS)}",
        "agree_tokens": args.agree_tokens,
        "goal_agreement": f"18/{len(PROMPTS)}",
        "diverged": diverged,
        "accuracy_level": args.accuracy_level,
        "layers": counts,
        "build_s": meta["build_s"],
        "load_s": round(load_s, 2),
        "model_file_mb": round(file_mb),
        "rss_mb_fp32_only": round(rss_fp32),
        "rss_mb_fp32_and_ort": round(rss_all),
        "ort_copies_loaded": len(copies),
        "load_average_start": [round(x, 2) for x in load_start],
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
