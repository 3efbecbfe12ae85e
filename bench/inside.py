"""Inside a model: every view of one forward pass against the bare pass that produces them.

    python -m bench.inside [--runs 7] [--tokens 64]

On the packaged SmolLM2 and a text of `tokens` tokens: `services.inside.forward.views` (attention maps for every
layer and head as rounded lists, the head summary, each layer's update, the logit lens; the switch to eager
attention and back included) against the model called directly with `output_attentions=True` and
`output_hidden_states=True` on eager attention (the baseline: the pass the views need). Medians of `runs` calls
each, measured in alternation (ABBA). Goal: ratio <= 2. Prints JSON, with the machine's load average before and
after (other work on the CPU slows both sides, not always alike).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

TEXT = (
    "Once upon a time, in a small village by the sea, there lived an old fisherman and his granddaughter. Every "
    "morning they walked down to the harbour, mended the nets and watched the gulls circle above the boats. One day "
    "the girl found a bottle on the sand with a letter inside, written in a language nobody in the village could read."
)


def text_of(tokenizer, tokens: int) -> str:
    """A text that tokenizes to exactly `tokens` tokens (the views read what the model reads)."""
    ids = tokenizer(TEXT * (1 + tokens // 40))["input_ids"]
    for cut in range(tokens, tokens + 8):
        text = tokenizer.decode(ids[:cut])
        if len(tokenizer(text)["input_ids"]) == tokens:
            return text
    raise RuntimeError(f"no text of exactly {tokens} tokens")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = os.getloadavg()
    import torch

    from services.inside import forward
    from services.models import loading

    loaded = loading.load("smollm2-135m-instruct", "text-generation")
    model = loaded.model
    text = text_of(loaded.tokenizer, args.tokens)
    ids = torch.tensor([loaded.tokenizer(text)["input_ids"]])
    impl = model.config._attn_implementation

    def views():
        result = forward.views(loaded, text)
        assert len(result["tokens"]) == args.tokens

    def bare():
        with torch.inference_mode():
            model(input_ids=ids, output_attentions=True, output_hidden_states=True)

    def bare_timed() -> float:
        # The baseline runs on eager attention (it must return the weights); the switch there and back is timed
        # on the views' side only, so the baseline is the forward pass alone.
        model.set_attn_implementation("eager")
        try:
            started = time.perf_counter()
            bare()
            return time.perf_counter() - started
        finally:
            model.set_attn_implementation(impl)

    def views_timed() -> float:
        started = time.perf_counter()
        views()
        return time.perf_counter() - started

    bare_timed(), views_timed()  # warm both: first calls pay for lazy imports and allocations
    view_times, bare_times = [], []
    for i in range(args.runs):  # ABBA: drift in the machine's load hits both sides alike
        if i % 2 == 0:
            view_times.append(views_timed())
            bare_times.append(bare_timed())
        else:
            bare_times.append(bare_timed())
            view_times.append(views_timed())
    views_s, bare_s = statistics.median(view_times), statistics.median(bare_times)
    result = {
        "bench": "inside",
        "model": "smollm2-135m-instruct",
        "tokens": args.tokens,
        "runs": args.runs,
        "views_s": round(views_s, 4),
        "bare_forward_s": round(bare_s, 4),
        "ratio": round(views_s / bare_s, 3),
        "goal": "ratio <= 2.0",
        "ok": views_s / bare_s <= 2.0,
        "views_runs_s": [round(t, 4) for t in view_times],
        "bare_runs_s": [round(t, 4) for t in bare_times],
        "torch_threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
