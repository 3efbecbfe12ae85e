"""Train the packaged task adapters (``assets/adapters/<name>/``) from the job.yaml beside them, and keep what a
model needs there.

    HF_HUB_OFFLINE=1 .venv/bin/python tools/make_task_adapters.py               # both, into assets/adapters/
    HF_HUB_OFFLINE=1 .venv/bin/python tools/make_task_adapters.py minilm-ner    # one of them
    HF_HUB_OFFLINE=1 .venv/bin/python tools/make_task_adapters.py --check       # retrain, compare, change nothing

(``make adapters`` runs the first.) Each training is what ``python -m services train assets/adapters/<name>/job.yaml``
runs (the same `train()`), into a temporary folder instead of the job's output_dir; then only the adapter is copied
next to its job.yaml: ``adapter_config.json`` (its base named by the packaged model's Hub twin, never a path on this
machine), ``adapter_model.safetensors`` (the LoRA weights and the classifier head), ``config.json`` (the base's
config with the label names), ``metrics.json`` (held-out and held-back test figures) and ``README.md`` (the card).
The tokenizer is the base's, so it is not copied. The seed in the job makes a retraining on the same machine give
the same weights and figures: ``--check`` trains again and says whether they match what is committed.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.models import packs  # noqa: E402
from services.models.packaged_adapters import ADAPTERS, PackagedAdapter  # noqa: E402

logger = logging.getLogger("make_task_adapters")
WEIGHTS = "adapter_model.safetensors"
_TIMINGS = ("runtime", "samples_per_second", "steps_per_second")  # differ from run to run: not figures


def figures(values: dict | None) -> dict:
    """A run's metrics without its timings (what a retraining must give again)."""
    return {k: v for k, v in (values or {}).items() if k not in _TIMINGS and isinstance(v, int | float)}


def train_into(adapter: PackagedAdapter, out: Path) -> tuple[dict, float]:
    """Train the adapter's job into `out`: (the training summary, seconds)."""
    from services.training.config import TrainConfig
    from services.training.train import train

    config = TrainConfig.from_yaml(adapter.folder / "job.yaml")
    config.output_dir = str(out)
    started = time.monotonic()
    summary = train(config)
    return summary, time.monotonic() - started


def metrics_of(summary: dict) -> dict:
    return {
        "task": summary["task"],
        "labels": summary["labels"],
        "train_rows": summary["train_rows"],
        "eval_rows": summary["eval_rows"],
        "steps": summary["steps"],
        "eval": figures(summary["metrics"]),
        "test": figures(summary["test_metrics"]),
    }


def head_config(base: str, task: str, labels: list[str]) -> dict:
    """The base model's config with the adapter's head: what names the labels when the adapter loads."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(packs.ensure_ready(base)).to_dict()
    kind = "ForSequenceClassification" if task == "text-classification" else "ForTokenClassification"
    config.update(
        architectures=[str(config["architectures"][0]).removesuffix("Model") + kind],  # BertModel: BertFor...
        id2label={str(i): name for i, name in enumerate(labels)},
        label2id={name: i for i, name in enumerate(labels)},
    )
    for key in ("_name_or_path", "transformers_version"):
        config.pop(key, None)
    return config


def package(adapter: PackagedAdapter, out: Path, summary: dict, seconds: float) -> None:
    """Copy what the model needs from a training's output folder into the adapter's folder."""
    dest = adapter.folder
    settings = json.loads((out / "adapter_config.json").read_text(encoding="utf-8"))
    settings["base_model_name_or_path"] = packs.PACKS[adapter.base].hub_id
    for key in ("modules_to_save", "target_modules"):  # saved from a set: its order changes from run to run
        if isinstance(settings.get(key), list):
            settings[key] = sorted(set(settings[key]))
    (dest / "adapter_config.json").write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    shutil.copyfile(out / WEIGHTS, dest / WEIGHTS)
    config = head_config(adapter.base, adapter.task, summary["labels"])
    (dest / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    metrics = {**metrics_of(summary), "eval_per_class": report.get("per_class") or {}}
    (dest / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (dest / "README.md").write_text(card(adapter, metrics, seconds), encoding="utf-8")


def _table(values: dict) -> str:
    return "\n".join(f"| {k} | {v:.4f} |" for k, v in values.items() if k != "epoch")


def card(adapter: PackagedAdapter, metrics: dict, seconds: float) -> str:
    """The adapter's README.md: what it does, its held-back test figures, how to use it and to retrain it."""
    from services.training.config import TrainConfig

    job = TrainConfig.from_yaml(adapter.folder / "job.yaml")
    hub_base = packs.PACKS[adapter.base].hub_id
    lora = job.lora
    tag = adapter.task
    auto = "AutoModelForSequenceClassification" if tag == "text-classification" else "AutoModelForTokenClassification"
    pipeline = "sentiment-analysis" if tag == "text-classification" else "ner"
    example = "I loved it" if tag == "text-classification" else "Angela Merkel visited Paris."
    pipeline, example = EXAMPLES.get(adapter.id, (pipeline, example))
    extra = ', aggregation_strategy="simple"' if tag == "token-classification" else ""
    headline = "accuracy" if tag == "text-classification" else "f1"
    test, labels = metrics["test"], metrics["labels"]
    per_class = "\n".join(
        f"| {name} | {row.get('precision', 0):.4f} | {row.get('recall', 0):.4f} | {row.get('f1', 0):.4f} |"
        for name, row in metrics["eval_per_class"].items()
        if isinstance(row, dict)
    )
    labels_shown = ", ".join(f"`{label}`" for label in labels)
    minutes = max(1, round(seconds / 60))
    return f"""---
base_model: {hub_base}
library_name: peft
pipeline_tag: {tag}
license: apache-2.0
tags:
- lora
- peft
- hf-playground
---

# {adapter.id}

{adapter.summary}

A **LoRA adapter** for `{hub_base}` (the playground's packaged `{adapter.base}`) with a
{len(labels)}-label head: {labels_shown}.
It was trained on the bundled sample `{job.dataset.source}`:
{metrics["train_rows"]:,} rows, with {metrics["eval_rows"]:,} more held out to pick the best epoch;
{metrics["steps"]} steps, {minutes} min on a shared 2-core CPU.
LoRA r = {lora.r}, alpha = {lora.alpha:g}, dropout = {lora.dropout:g}, on {lora.target_modules} layers;
the head is trained in full and saved with the adapter. The tokenizer is the base's.

**Held-back test split: {headline} {test.get(headline, 0):.1%}**
(the sample's own test file, written apart from the training rows and never trained on).

## Use it in the playground

```python
from services import pipelines

pipelines.run("{pipeline}", "{adapter.id}", "{example}"{extra})
```

## Use it with transformers and peft

```python
from peft import PeftModel
from transformers import {auto}, AutoTokenizer, pipeline

base = "{hub_base}"
tokenizer = AutoTokenizer.from_pretrained(base)  # the base's tokenizer: none is stored here
model = {auto}.from_pretrained(base, num_labels={len(labels)})
model = PeftModel.from_pretrained(model, "path/to/{adapter.id}").merge_and_unload()
model.config.id2label = {dict(enumerate(labels))!r}
model.config.label2id = {{v: k for k, v in model.config.id2label.items()}}
print(pipeline("{tag}", model=model, tokenizer=tokenizer)("{example}"{extra}))
```

## Results

Held-back test split:

| metric | value |
|---|---|
{_table(test)}

Held-out split (the best epoch was chosen on it):

| metric | value |
|---|---|
{_table(metrics["eval"])}

Per class, on the held-out split:

| label | precision | recall | f1 |
|---|---|---|---|
{per_class}

## Retrain it

`job.yaml` beside this card is the whole recipe (base, data, LoRA settings, seed):

```bash
HF_HUB_OFFLINE=1 .venv/bin/python tools/make_task_adapters.py {adapter.id}   # trains, then refreshes this folder
.venv/bin/python -m services train assets/adapters/{adapter.id}/job.yaml     # the same training, into {job.output_dir}
```

With the same seed on the same machine a retraining gives the same weights and figures
(`tools/make_task_adapters.py --check` trains again and compares).

## Limitations

{LIMITATIONS.get(adapter.id, LIMITATION)}
"""


LIMITATION = """Trained for a few minutes on a few hundred short, clean English sentences: it knows their kind of text
and their labels; expect mistakes on other domains, sarcasm, long documents and other languages."""
LIMITATIONS = {
    "minilm-answerable": """Trained on the sentences RAG chat ranks for the questions of 28 invented encyclopedic
pages: on other documents its probabilities run low (on bench/rag_eval's it re-orders well, but they are no ground to
decline on). It tells whether a sentence holds the fact asked for, not whether the fact is true.""",
}
# The call a card shows, where the task's usual one does not fit the adapter.
EXAMPLES = {
    "minilm-answerable": (
        "text-classification",
        "When was it built? [SEP] Harlow bridge: It was built in 1902.",
    ),
}


def same_figures(one: dict, other: dict) -> bool:
    """Whether two metrics.json documents hold the same held-out and test figures."""
    return all(one.get(split) == other.get(split) for split in ("eval", "test"))


def weight_difference(one: Path, other: Path) -> float | None:
    """The largest difference between two adapters' weights (None when there is no first one to compare)."""
    from safetensors.torch import load_file

    if not one.is_file():
        return None
    old, new = load_file(one), load_file(other)
    return max(float((old[k] - new[k]).abs().max()) for k in old) if old.keys() == new.keys() else float("inf")


def check(adapter: PackagedAdapter, tmp: Path) -> dict:
    """Retrain into a temporary folder and compare with what is committed."""
    out = tmp / adapter.id
    summary, seconds = train_into(adapter, out)
    committed, again = adapter.metrics(), metrics_of(summary)
    return {
        "adapter": adapter.id,
        "seconds": round(seconds),
        "same_figures": same_figures(committed, again),
        "max_weight_difference": weight_difference(adapter.folder / WEIGHTS, out / WEIGHTS),
        "committed_test": committed.get("test"),
        "retrained_test": again["test"],
    }


# The MiniLM task adapters this tool trains (grounded-answers, on SmolLM2, is trained by `python -m services train`).
TASK_ADAPTERS = {name: a for name, a in ADAPTERS.items() if a.base == "all-minilm-l6-v2"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"which adapters (default: all of {', '.join(TASK_ADAPTERS)})")
    parser.add_argument("--check", action="store_true", help="retrain and compare with what is committed")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    unknown = [n for n in args.names if n not in TASK_ADAPTERS]
    if unknown:
        parser.error(f"no packaged adapter called {', '.join(unknown)}; there are {', '.join(TASK_ADAPTERS)}")
    results = []
    with tempfile.TemporaryDirectory(prefix="task-adapters-") as tmp:
        for name in args.names or list(TASK_ADAPTERS):
            adapter = TASK_ADAPTERS[name]
            if args.check:
                results.append(check(adapter, Path(tmp)))
                continue
            out, before = Path(tmp) / name, adapter.metrics()
            summary, seconds = train_into(adapter, out)
            difference = weight_difference(adapter.folder / WEIGHTS, out / WEIGHTS)
            package(adapter, out, summary, seconds)
            same = same_figures(before, adapter.metrics()) if before else None  # None: nothing to compare with
            results.append(
                {"adapter": name, "seconds": round(seconds), "test": adapter.metrics()["test"], "same_figures": same,
                 "max_weight_difference": difference}
            )  # fmt: skip
    print(json.dumps(results, indent=2))
    return 0 if all(r["same_figures"] is not False for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
