"""LoRA quality: the base model against the adapter the LoRA tab's defaults train, on a bundled chat sample's
held-back test prompts (issue 16).

    python -m bench.lora_quality [--sample chat-extract|chat-days|all] [--runs 1] [--batch 20] [--max-new-tokens 48]

For each sample: takes the job.yaml the LoRA tab shows on a fresh page (the tab is built and its page-load preview
read: model smollm2-135m-instruct, its eval_split, max_length, `suggested("chat")` training settings and
`LoraSettings` defaults), picks the sample in it as its Sample menu would, runs
`python -m services train job.yaml` as a child process and times it from its start
to its exit (loading, training, evaluation, the adapter's card with its sample answers, saving: the whole job).
Then, in this process, the base (the adapter switched off) and the adapter answer every prompt of the sample's
test.jsonl (worded unlike train.jsonl), greedily, batched (left padding), until the end of the turn or
`--max-new-tokens`; both sides in the same run, on the same loaded weights. Scores:

- exact: the whole answer, stripped of surrounding white space, equals the expected answer (both samples);
- json (chat-extract): the whole answer parses as JSON and equals the expected object (key order and spacing
  free; a code fence or a word around the object fails).

Goal: the base below 20% and the adapter at least 90% (on the sample's own metric: json for chat-extract, exact for
chat-days), the whole job in under 10 minutes. Then `services.training.merge.merge` merges the adapter into its base
and reports its logit checks (merged vs adapter, merged vs base, max |Δlogit| on its probe texts), and the merged
model answers the test prompts too. Also: the training child's peak RSS and the adapter's size against the base.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL = "smollm2-135m-instruct"
SAMPLES = {"chat-extract": "json", "chat-days": "exact"}  # the metric each sample's goal is read on
BASE_MAX, ADAPTER_MIN, JOB_MAX_S = 0.20, 0.90, 600.0


def exact_match(answer: str, expected: str) -> bool:
    """The whole answer, white space around it aside, is the expected answer."""
    return str(answer).strip() == str(expected).strip()


def json_match(answer: str, expected: str) -> bool:
    """The whole answer is JSON equal to the expected JSON (an object compares key by key, in any order)."""
    try:
        return json.loads(str(answer).strip()) == json.loads(str(expected))
    except ValueError:
        return False


METRICS = {"exact": exact_match, "json": json_match}


def score(answers: list[str], expected: list[str], metric: str) -> float:
    """The share of answers that match (0.0 for no answers)."""
    if len(answers) != len(expected):
        raise ValueError(f"{len(answers)} answers for {len(expected)} expected ones")
    match = METRICS[metric]
    return sum(match(a, e) for a, e in zip(answers, expected, strict=True)) / len(expected) if expected else 0.0


def tab_defaults(folder: Path) -> dict:
    """The job.yaml the LoRA tab shows before anything is touched: the tab is built (as `app.py` builds it, on a
    job manager of its own in `folder`) and its page-load preview is called, so this is the tab's own form, not a
    copy of its numbers."""
    import gradio as gr

    from services.jobs.manager import JobManager
    from tabs.lora.tab import build

    manager = JobManager(folder / "jobs.db", folder / "jobs")
    try:
        with gr.Blocks() as demo:
            build(manager)
    finally:
        manager.shutdown()
    shown = next((b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "lora-config"), None)
    preview = next((f for f in demo.fns.values() if not f.inputs and any(o is shown for o in f.outputs)), None)
    if shown is None or preview is None:
        raise RuntimeError("the LoRA tab's job.yaml preview (elem_id lora-config, filled on page load) is gone")
    return yaml.safe_load(preview.fn()[shown])


def job_config(defaults: dict, sample: str, out: Path, changes: dict | None = None) -> dict:
    """The tab's default job with the bundled sample chosen in its Sample menu (the only other thing that changes
    is where it saves); `changes`: training keys set on top, for experiments only (the goals are about the
    defaults)."""
    config = json.loads(json.dumps(defaults))
    config["dataset"]["source"] = f"samples/{sample}"
    config["training"].update(changes or {})
    config["output_dir"] = str(out)
    return config


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}


def run_job(config: dict, tmp: Path, name: str) -> dict:
    """`python -m services train job.yaml` in a child: wall-clock seconds, its peak RSS and its summary."""
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    log = tmp / f"{name}.log"
    load = os.getloadavg()[0]  # another process on the cores shows here and in the child's CPU seconds
    with log.open("w") as handle:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-m", "services", "train", str(path)], cwd=ROOT, env=_env(),
                                 stdout=handle, stderr=subprocess.STDOUT)  # fmt: skip
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise RuntimeError(f"the job failed ({child.returncode}):\n{log.read_text()[-3000:]}")
    out = Path(config["output_dir"])
    summary = json.loads((out / "playground-model.json").read_text())
    return {"seconds": seconds, "rss_mb": usage.ru_maxrss / 1024, "summary": summary,
            "cpu_s": usage.ru_utime + usage.ru_stime, "load": (load, os.getloadavg()[0]),
            "adapter_bytes": (out / "adapter_model.safetensors").stat().st_size}  # fmt: skip


def held_back_prompts(sample: str, config: dict) -> tuple[list[list[dict]], list[str]]:
    """The sample's held-back test conversations up to their last answer, and those answers."""
    from services.data import sources
    from services.training.chat_data import conversations
    from services.training.config import TrainConfig

    rows, _ = conversations(sources.load(f"samples/{sample}")["test"], TrainConfig.from_dict(config))
    prompts, expected = [], []
    for messages in rows:
        last = max(i for i, t in enumerate(messages) if t["role"] == "assistant")
        prompts.append(messages[:last])
        expected.append(messages[last]["content"])
    return prompts, expected


def generate(model, tokenizer, prompts: list[list[dict]], batch: int, max_new_tokens: int) -> list[str]:
    """Greedy answers, `batch` prompts at a time (left-padded), each cut at the end of its turn."""
    import torch

    tokenizer.padding_side = "left"
    answers = []
    for start in range(0, len(prompts), batch):
        texts = [tokenizer.apply_chat_template(p, add_generation_prompt=True, tokenize=False)
                 for p in prompts[start : start + batch]]  # fmt: skip
        inputs = tokenizer(texts, add_special_tokens=False, padding=True, return_tensors="pt")
        with torch.no_grad():
            ids = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)  # fmt: skip
        new = ids[:, inputs["input_ids"].shape[1] :]
        answers += [a.strip() for a in tokenizer.batch_decode(new, skip_special_tokens=True)]
    return answers


def answer_all(adapter_dir: Path, merged_dir: Path | None, prompts, batch: int, max_new_tokens: int) -> dict:
    """{"base": [...], "adapter": [...], "merged": [...]}: one base in memory, the adapter switched off for it."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from services.models import packs

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)  # the chat template the adapter was trained with
    base = AutoModelForCausalLM.from_pretrained(packs.ensure_ready(MODEL), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, adapter_dir).eval()
    with model.disable_adapter():
        answers = {"base": generate(model, tokenizer, prompts, batch, max_new_tokens)}
    answers["adapter"] = generate(model, tokenizer, prompts, batch, max_new_tokens)
    del model, base
    if merged_dir is not None:
        merged = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
        answers["merged"] = generate(merged, tokenizer, prompts, batch, max_new_tokens)
    return answers


def one_run(sample: str, tmp: Path, i: int, a: argparse.Namespace) -> dict:
    from services.training.merge import merge

    out = tmp / f"{sample}-{i}"
    config = job_config(a.defaults, sample, out, a.set)
    job = run_job(config, tmp, f"{sample}-{i}")
    merged = merge(out, tmp / f"{sample}-{i}-merged")
    prompts, expected = held_back_prompts(sample, config)
    started = time.perf_counter()
    answers = answer_all(out, Path(merged["output_dir"]), prompts, a.batch, a.max_new_tokens)
    scores = {side: {m: score(got, expected, m) for m in ("exact", *{SAMPLES[sample]} - {"exact"})}
              for side, got in answers.items()}  # fmt: skip
    shown = [{"prompt": p[-1]["content"], "expected": e, **{s: answers[s][k] for s in answers}}
             for k, (p, e) in enumerate(zip(prompts, expected, strict=True))]  # fmt: skip
    return {**job, "merge": merged, "scores": scores, "answers": shown, "n": len(expected),
            "eval_s": time.perf_counter() - started}  # fmt: skip


def _value(text: str):
    """A --set value as YAML reads it, and 1e-3 as a number (YAML 1.1 wants 1.0e-3)."""
    value = yaml.safe_load(text)
    try:
        return float(value) if isinstance(value, str) else value
    except ValueError:
        return value


def _pct(value: float) -> str:
    return f"{value:.0%}"


def report(sample: str, runs: list[dict], weights: int) -> bool:
    """Prints the sample's table; True when every goal is met in every run."""
    metric = SAMPLES[sample]
    summary = runs[0]["summary"]
    print(f"\n{sample}: {runs[0]['n']} held-back test prompts, metric {metric}; the job trained "
          f"{summary['train_rows']} rows, evaluated {summary['eval_rows']}, {summary['steps']} steps, "
          f"{summary['epochs']:.2f} epochs")  # fmt: skip
    ok = True
    print("| run | job (wall clock) | base exact | base json | adapter exact | adapter json | merged | goals |")
    print("|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(runs):
        s = r["scores"]
        met = (s["base"][metric] < BASE_MAX, s["adapter"][metric] >= ADAPTER_MIN, r["seconds"] < JOB_MAX_S)
        ok &= all(met)
        json_cell = {side: _pct(s[side]["json"]) if "json" in s[side] else "—" for side in s}
        print(f"| {i + 1} | {r['seconds'] / 60:.1f} min | {_pct(s['base']['exact'])} | {json_cell['base']} | "
              f"{_pct(s['adapter']['exact'])} | {json_cell['adapter']} | {_pct(s['merged'][metric])} | "
              f"{' '.join('✅' if m else '❌' for m in met)} |")  # fmt: skip
    print(f"goals: base < {BASE_MAX:.0%}, adapter ≥ {ADAPTER_MIN:.0%} ({metric}), job < {JOB_MAX_S / 60:.0f} min")
    for i, r in enumerate(runs):
        m = {k.removesuffix("_max_abs_logit_diff"): v for k, v in r["merge"].items()}
        print(f"run {i + 1}: merge ({m['probes']} probe texts), max |Δlogit|: merged vs adapter "
              f"{m['merged_vs_adapter']:.3g} (tolerance {m['tolerance']:.3g}), merged vs base "
              f"{m['merged_vs_base']:.3g}, adapter vs base {m['adapter_vs_base']:.3g}")  # fmt: skip
        print(f"run {i + 1}: the job's child used {r['cpu_s']:.0f} CPU-seconds in {r['seconds']:.0f} s "
              f"({r['cpu_s'] / r['seconds'] / (os.cpu_count() or 1):.0%} of the machine); load average "
              f"{r['load'][0]:.1f} at its start, {r['load'][1]:.1f} at its end")  # fmt: skip
    rss = statistics.median(r["rss_mb"] for r in runs)
    adapter = runs[0]["adapter_bytes"]
    print(
        f"training child peak RSS {rss:.0f} MB; adapter {adapter / 2**20:.1f} MB vs base weights "
        f"{weights / 2**20:.1f} MB ({adapter / weights:.1%}); scoring took {runs[0]['eval_s']:.0f} s"
    )
    wrong = [x for x in runs[0]["answers"] if not METRICS[metric](x["adapter"], x["expected"])]
    for x in wrong[:5]:
        print(f"   adapter missed: {x['prompt'][:70]!r} -> {x['adapter'][:70]!r} (expected {x['expected']!r})")
    for x in runs[0]["answers"][:2]:
        print(f"   base said: {x['prompt'][:60]!r} -> {x['base'][:90]!r}")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", choices=[*SAMPLES, "all"], default="all")
    parser.add_argument("--runs", type=int, default=1, help="jobs per sample (each trains from scratch)")
    parser.add_argument("--batch", type=int, default=20, help="prompts per generate call when scoring")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--keep", type=Path, help="keep the jobs' folders and every answer here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="an experiment: a training setting changed from the defaults (repeatable)")  # fmt: skip
    a = parser.parse_args()
    a.set = {k: _value(v) for k, _, v in (item.partition("=") for item in a.set)}
    import peft
    import torch
    import transformers
    import trl

    from services.models import packs

    print(f"bench.lora_quality · {platform.machine()} · {os.cpu_count()} CPUs · torch {torch.__version__} · "
          f"transformers {transformers.__version__} · trl {trl.__version__} · peft {peft.__version__}")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="lora-tab-") as folder:
        a.defaults = tab_defaults(Path(folder))
    d = a.defaults
    print(f"the LoRA tab's defaults: model {d['model']}, sample {d['dataset']['source']}, eval_split "
          f"{d['dataset']['eval_split']}, max_length {d['max_length']}, loss_on {d['loss_on']}, early stopping "
          f"{d['early_stopping_patience']}, training {d['training']}, lora {d['lora']}")  # fmt: skip
    if a.set:
        print(f"NOT the defaults: training settings changed for an experiment: {a.set}")
    weights = sum(p.stat().st_size for p in Path(packs.ensure_ready(MODEL)).glob("*.safetensors"))
    samples = list(SAMPLES) if a.sample == "all" else [a.sample]
    ok = True
    with tempfile.TemporaryDirectory(prefix="lora-quality-") as folder:
        tmp = a.keep or Path(folder)
        tmp.mkdir(parents=True, exist_ok=True)
        for sample in samples:
            runs = []
            for i in range(a.runs):
                runs.append(one_run(sample, tmp, i, a))
                (tmp / f"{sample}-{i}-answers.json").write_text(json.dumps(runs[-1]["answers"], indent=1))
                print(f"   {sample} run {i + 1}: job {runs[-1]['seconds']:.0f} s, scores {runs[-1]['scores']}",
                      flush=True)  # fmt: skip
            ok &= report(sample, runs, weights)
    print("\nall goals met" if ok else "\nsome goal MISSED")


if __name__ == "__main__":
    main()
