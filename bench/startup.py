"""Start-up costs: importing and building the app, and a cached model fetch against its first load.

    python -m bench.startup [--runs 5]

- `import app` is timed in fresh interpreters (what a Space pays on every restart).
- `build_app()` is timed in-process, with no model loaded (goal: under 2 s).
- Model fetch: the first load of the packaged MiniLM (empty cache each time) versus fetching it again from the
  cache (goal: the cached fetch at least 1000x faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def time_import(runs: int) -> list[float]:
    code = "import time; t = time.perf_counter(); import app; print(time.perf_counter() - t)"
    out = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


def time_build(runs: int) -> tuple[list[float], bool]:
    import app

    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        demo = app.build_app()
        samples.append(time.perf_counter() - started)
        demo.close()
    heavy = any(name in sys.modules for name in ("torch", "transformers"))
    return samples, heavy


def time_model_fetch(runs: int, model: str = "all-minilm-l6-v2", task: str = "feature-extraction"):
    from services.models import loading

    first = []
    for _ in range(runs):
        cache = loading.ModelCache(budget_bytes=2**34)
        loading.model_cache = lambda cache=cache: cache  # a fresh, empty cache for this run
        started = time.perf_counter()
        loading.load(model, task)
        first.append(time.perf_counter() - started)
    cached = []
    for _ in range(1000):
        started = time.perf_counter()
        loading.load(model, task)
        cached.append(time.perf_counter() - started)
    return first, cached


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("PLAYGROUND_HOME", tempfile.mkdtemp(prefix="bench-startup-"))

    imports = time_import(args.runs)
    builds, heavy = time_build(args.runs)
    print(f"import app               median {_median_ms(imports):8.0f} ms  (fresh interpreter, n={args.runs})")
    print(f"build_app()              median {_median_ms(builds):8.1f} ms  (goal < 2000 ms; torch imported: {heavy})")
    from services.models import packs

    packs.ensure_ready("smollm2-135m-instruct")  # conversion is a one-off; the benchmark measures loads
    for model, task in (("all-minilm-l6-v2", "feature-extraction"), ("smollm2-135m-instruct", "text-generation")):
        first, cached = time_model_fetch(args.runs, model, task)
        ratio = statistics.median(first) / statistics.median(cached)
        print(
            f"{model}: first load median {_median_ms(first):.1f} ms (n={args.runs}), cached fetch median "
            f"{_median_ms(cached) * 1000:.1f} us (n=1000): cached is {ratio:,.0f}x faster (goal >= 1000x)"
        )


if __name__ == "__main__":
    main()
