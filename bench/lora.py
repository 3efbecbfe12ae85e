"""LoRA training throughput: the playground's chat job against a plain TRL `SFTTrainer` + peft script (issue 16).

    python -m bench.lora [--runs 2] [--rows 400] [--steps 40] [--batch 8] [--max-length 512]

Data: the first `rows` rows of the bundled samples/chat-days (short prompt/completion pairs), 10% held out by the
job's own seeded split; both sides train on the same remaining rows. Model: the packaged smollm2-135m-instruct
(offline). LoRA r 16, alpha 32, dropout 0.05, all-linear; the same max_length, batch size, learning rate (2e-4)
and a fixed number of steps (`--steps`, no more than one epoch, so no evaluation falls inside the measured steps).

A. The playground's job: `services.training.train.train(TrainConfig.from_yaml(job.yaml))`, the function that
   `python -m services train job.yaml` runs, in a child process (its defaults, evaluation and saving included).
B. The baseline: a plain script, in a child process, with trl's `SFTTrainer` + peft `LoraConfig` and TRL's DEFAULT
   `SFTConfig` (only output_dir, max_steps, batch size, max_length, learning rate and report_to="none" set); the
   rows given as conversational prompt/completion, the form trl's documentation uses.

Both children start cold the same way and carry the same clock: a callback added to every `Trainer` that stamps the
end of each optimizer step. Samples/s = batch x steps / seconds from the end of step `--warmup` to the end of the
last step (model loading, tokenisation, the first steps and everything after training are left out on both sides).
The trainers' own `train_samples_per_second` (which includes the first steps and, for the job, the evaluation at
the end of its epoch) is printed too. Runs alternate A B A B ...; medians of `--runs` each and the ratio A/B (goal:
never below 1.0x; aim 1.3x). Also: the peak RSS of each child (its own `ru_maxrss` at the end of training), and the
size of the job's adapter against the base model's weights.
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
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "assets/datasets/samples/chat-days/train.jsonl"
MODEL = "smollm2-135m-instruct"

# The same instrument in both children: end-of-step stamps, and the peak RSS when training ends.
CLOCK = r"""
import json, resource, sys, time
import transformers
from transformers import TrainerCallback

class StepClock(TrainerCallback):
    stamps = []
    def on_step_end(self, args, state, control, **kwargs):
        StepClock.stamps.append((state.global_step, time.perf_counter()))
    def on_train_end(self, args, state, control, **kwargs):
        print("@@CLOCK " + json.dumps({"stamps": StepClock.stamps,
              "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)

_init = transformers.Trainer.__init__
def _with_clock(self, *a, **k):
    _init(self, *a, **k)
    self.add_callback(StepClock())
transformers.Trainer.__init__ = _with_clock
"""

JOB = (
    CLOCK
    + r"""
from services.training.config import TrainConfig
from services.training.train import train
summary = train(TrainConfig.from_yaml(sys.argv[1]))
print("@@RESULT " + json.dumps({"rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"""
)

PLAIN = (
    CLOCK
    + r"""
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import SFTConfig, SFTTrainer
from services.data.sources import split  # only to pick the same rows as the job
from services.models import packs

source, out, steps, batch, max_length, lr, extra = sys.argv[1:8]
location = str(packs.ensure_ready("smollm2-135m-instruct"))
train_rows, _ = split(load_dataset("json", data_files=source), 0.1)
train_rows = train_rows.map(lambda r: {"prompt": [{"role": "user", "content": r["prompt"]}],
                                       "completion": [{"role": "assistant", "content": r["completion"]}]})
tokenizer = AutoTokenizer.from_pretrained(location)
model = AutoModelForCausalLM.from_pretrained(location)
args = SFTConfig(output_dir=out, max_steps=int(steps), per_device_train_batch_size=int(batch),
                 max_length=int(max_length), learning_rate=float(lr), report_to="none", **json.loads(extra))
lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
trainer = SFTTrainer(model=model, args=args, train_dataset=train_rows, processing_class=tokenizer, peft_config=lora)
print("@@ARGS " + json.dumps({"bf16": args.bf16, "gradient_checkpointing": args.gradient_checkpointing,
                              "logging_steps": args.logging_steps}), flush=True)
metrics = trainer.train().metrics
print("@@RESULT " + json.dumps({**metrics, "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}), flush=True)
"""
)


def _env() -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}


def _run(script: str, argv: list[str]) -> dict:
    done = subprocess.run([sys.executable, "-c", script, *argv], cwd=ROOT, env=_env(), capture_output=True, text=True)
    found = {}
    for line in done.stdout.splitlines():
        for tag in ("@@CLOCK ", "@@RESULT ", "@@ARGS "):
            if line.startswith(tag):
                found[tag.strip("@ ")] = json.loads(line[len(tag) :])
    if done.returncode or "CLOCK" not in found:
        raise RuntimeError(done.stdout[-3000:] + done.stderr[-3000:])
    return found


def throughput(stamps: list, batch: int, warmup: int) -> float:
    """Samples per second between the end of step `warmup` and the end of the last step."""
    steps = {step: t for step, t in stamps}
    first, last = warmup, max(steps)
    return batch * (last - first) / (steps[last] - steps[first])


def subset(rows: int, folder: Path) -> Path:
    """The first `rows` rows of the sample as a file, so that the job and the script read the same rows."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()[:rows]
    path = folder / "chat-days.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def job_config(source: Path, out: Path, a: argparse.Namespace) -> dict:
    return {
        "task": "chat",
        "model": MODEL,
        "dataset": {"source": str(source), "eval_split": 0.1},
        "lora": {"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": "all-linear"},
        "max_length": a.max_length,
        "training": {"max_steps": a.steps, "learning_rate": a.lr, "per_device_train_batch_size": a.batch},
        "output_dir": str(out),
    }


def run_job(source: Path, tmp: Path, i: int, a: argparse.Namespace) -> dict:
    out = tmp / f"job-{i}"
    path = tmp / f"job-{i}.yaml"
    path.write_text(yaml.safe_dump(job_config(source, out, a)))
    found = _run(JOB, [str(path)])
    own = None
    for line in (out / "events.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event["type"] == "metrics" and "train_samples_per_second" in event["values"]:
            own = event["values"]["train_samples_per_second"]
    adapter = out / "adapter_model.safetensors"
    return {"sps": throughput(found["CLOCK"]["stamps"], a.batch, a.warmup), "own": own,
            "rss_mb": found["CLOCK"]["rss_kb"] / 1024, "adapter_bytes": adapter.stat().st_size}  # fmt: skip


def run_plain(source: Path, tmp: Path, i: int, a: argparse.Namespace, extra: dict) -> dict:
    found = _run(PLAIN, [str(source), str(tmp / f"plain-{i}"), str(a.steps), str(a.batch), str(a.max_length),
                    str(a.lr), json.dumps(extra)])  # fmt: skip
    return {"sps": throughput(found["CLOCK"]["stamps"], a.batch, a.warmup),
            "own": found["RESULT"].get("train_samples_per_second"), "rss_mb": found["CLOCK"]["rss_kb"] / 1024,
            "args": found.get("ARGS")}  # fmt: skip


def plain_with_minimum(source: Path, tmp: Path, i: int, a: argparse.Namespace, state: dict) -> dict:
    """B with TRL's defaults; if they make it fail outright on this machine, the least change that runs (said)."""
    try:
        return run_plain(source, tmp, i, a, state["extra"])
    except RuntimeError as err:
        if state["extra"]:
            raise
        print(f"   B failed with TRL's defaults; retried with bf16=False: {str(err).strip().splitlines()[-1]}")
        state["extra"] = {"bf16": False}
        return run_plain(source, tmp, i, a, state["extra"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=400, help="first rows of samples/chat-days (10%% held out)")
    parser.add_argument("--steps", type=int, default=40, help="max_steps of each side (at most one epoch)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--warmup", type=int, default=3, help="steps left out at the start of each side")
    a = parser.parse_args()
    if a.steps * a.batch > a.rows * 0.9:
        parser.error("--steps x --batch must fit in one epoch of the training rows (raise --rows)")
    import torch

    print(f"bench.lora · {platform.machine()} · {os.cpu_count()} CPUs · torch {torch.__version__} "
          f"({torch.get_num_threads()} threads) · {a.rows} rows, {a.steps} steps of {a.batch}, max_length "
          f"{a.max_length}, median of {a.runs}")  # fmt: skip
    ours, base, state = [], [], {"extra": {}}
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        source = subset(a.rows, tmp)
        for i in range(a.runs):
            for side in ("A", "B"):
                result = run_job(source, tmp, i, a) if side == "A" else plain_with_minimum(source, tmp, i, a, state)
                (ours if side == "A" else base).append(result)
                print(f"   {side}{i + 1}: {result['sps']:.2f} samples/s (trainer's own {result['own'] or 0:.2f}), "
                      f"peak RSS {result['rss_mb']:.0f} MB", flush=True)  # fmt: skip
    med = {k: statistics.median(r["sps"] for r in v) for k, v in (("A", ours), ("B", base))}
    own = {k: statistics.median(r["own"] or 0 for r in v) for k, v in (("A", ours), ("B", base))}
    ratio = med["A"] / med["B"]
    verdict = "aim met" if ratio >= 1.3 else "met" if ratio >= 1.0 else "MISSED"
    print(f"1. job {med['A']:.2f} samples/s vs plain SFTTrainer {med['B']:.2f} samples/s -> {ratio:.2f}x "
          f"({verdict}; goal >= 1.0x, aim 1.3x); trainers' own figures {own['A']:.2f} vs {own['B']:.2f} "
          f"({own['A'] / own['B']:.2f}x)")  # fmt: skip
    print(f"   tries: job {[round(r['sps'], 2) for r in ours]}, plain {[round(r['sps'], 2) for r in base]}")
    print(f"   B's settings as trl resolved them: {base[0]['args']}; set beyond the brief: {state['extra'] or 'none'}")
    rss = {k: statistics.median(r["rss_mb"] for r in v) for k, v in (("A", ours), ("B", base))}
    print(f"2. peak RSS of the child: job {rss['A']:.0f} MB, plain {rss['B']:.0f} MB")
    from services.models import packs

    weights = sum(p.stat().st_size for p in Path(packs.ensure_ready(MODEL)).glob("*.safetensors"))
    adapter = ours[0]["adapter_bytes"]
    print(f"3. adapter {adapter / 2**20:.1f} MB vs base weights {weights / 2**20:.1f} MB "
          f"({adapter / weights:.1%})")  # fmt: skip


if __name__ == "__main__":
    main()
