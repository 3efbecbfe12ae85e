"""What a LoRA run writes beside its adapter: the model card (README.md with `base_model`, `library_name: peft` and a
runnable snippet) and, for a chat adapter, the held-back test prompts answered by the base and by the adapter.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)
SAMPLE_PROMPTS = 5
SAMPLE_NEW_TOKENS = 48

_AUTO_NAMES = {
    "chat": "AutoModelForCausalLM",
    "causal-lm": "AutoModelForCausalLM",
    "text-classification": "AutoModelForSequenceClassification",
    "text-regression": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "summarization": "AutoModelForSeq2SeqLM",
}


def sample_answers(config, model, tokenizer, prepared) -> list[dict]:
    """The first held-back test prompts (the evaluation rows when there is no test split), answered greedily by the
    base (adapter switched off: one copy of the base in memory) and by the adapter, with the expected answer."""
    import torch

    from services.training.chat_data import conversations

    raw = prepared.raw_test if prepared.raw_test is not None and prepared.raw_test.num_rows else prepared.raw_eval
    if raw is None or not raw.num_rows or not hasattr(model, "disable_adapter"):
        return []
    rows, _ = conversations(raw.select(range(min(SAMPLE_PROMPTS, raw.num_rows))), config)
    model.eval()
    samples = []
    for messages in rows:
        last = max(i for i, t in enumerate(messages) if t["role"] == "assistant")
        prompt = tokenizer.apply_chat_template(
            messages[:last], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        prompt = {k: v.to(model.device) for k, v in prompt.items()}
        answers = {}
        for side in ("base", "adapter"):
            with torch.no_grad():
                if side == "base":
                    with model.disable_adapter():
                        ids = model.generate(**prompt, max_new_tokens=SAMPLE_NEW_TOKENS, do_sample=False)
                else:
                    ids = model.generate(**prompt, max_new_tokens=SAMPLE_NEW_TOKENS, do_sample=False)
            new = ids[0, prompt["input_ids"].shape[1] :]
            answers[side] = tokenizer.decode(new, skip_special_tokens=True).strip()
        user = next(t["content"] for t in reversed(messages[:last]) if t["role"] == "user")
        samples.append({"text": user, "messages": messages[:last], "expected": messages[last]["content"], **answers})
    return samples


def card(config, summary: dict, report: dict, tokenizer=None) -> str:
    """The adapter's README.md."""
    from huggingface_hub import ModelCard, ModelCardData

    base = _base_id(config.model)
    lora = config.lora
    tags = ["lora", "peft", "hf-playground", *(["sft", "trl"] if config.task == "chat" else [])]
    data = ModelCardData(base_model=base, library_name="peft", tags=tags, pipeline_tag=_pipeline_tag(config.task))
    metrics = "\n".join(
        f"| {k} | {v:.4g} |" for k, v in (summary.get("metrics") or {}).items() if isinstance(v, int | float)
    )
    test = report.get("test") or {}
    test_rows = "\n".join(f"| {k} | {v:.4g} |" for k, v in test.items() if isinstance(v, int | float))
    samples = "\n".join(
        f"| {_cell(s['text'])} | {_cell(s['expected'])} | {_cell(s.get('base', ''))} | {_cell(s.get('adapter', ''))} |"
        for s in report.get("samples") or []
        if "adapter" in s
    )
    targets = lora.target_modules if isinstance(lora.target_modules, str) else ", ".join(lora.target_modules)
    variant = " (DoRA)" if lora.use_dora else ""
    variant += " (rsLoRA)" if lora.use_rslora else ""
    content = f"""---
{data.to_yaml()}
---

# {Path(summary.get("output_dir", "adapter")).name}

A **LoRA adapter** for `{base}` ({config.task}), trained in HF Playground with 🤗 peft
{"and trl's `SFTTrainer` " if config.task == "chat" else ""}on `{config.dataset.source}`:
{summary.get("train_rows", 0):,} rows, {summary.get("steps", 0):,} steps, {summary.get("seconds", 0)} s.
Only the adapter is stored here (not a copy of the base): r = {lora.r}, alpha = {lora.alpha:g},
dropout = {lora.dropout:g}, target modules {targets}{variant}{_trained_on(config)}.

## Use it

```python
{snippet(config.task, base)}
```

## Results (held-out data)

| metric | value |
|---|---|
{metrics}
{_section("Held-back test split", "| metric | value |", "|---|---|", test_rows)}
{_section("Test prompts: base and adapter", "| prompt | expected | base | adapter |", "|---|---|---|---|", samples)}
## Limitations

Trained on a small dataset for a few minutes: it learns that data's task and format, not new knowledge; check its
answers before relying on them.
"""
    return str(ModelCard(content))


def _trained_on(config) -> str:
    """What the loss was on: a chat adapter's tokens; a task adapter trains its head in full beside the LoRA."""
    if config.task != "chat":
        return "; the task's head is trained in full and saved with the adapter"
    return "; loss on " + ("the assistant's turns only" if config.loss_on == "completion" else "every token")


def snippet(task: str, base: str) -> str:
    auto = _AUTO_NAMES.get(task, "AutoModel")
    if task == "chat":
        return f"""from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

adapter = "path/to/this/folder"  # or its Hub id
tokenizer = AutoTokenizer.from_pretrained(adapter)  # the chat template it was trained with
model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base}"), adapter)
messages = [{{"role": "user", "content": "Hello!"}}]
inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt", return_dict=True)
output = model.generate(**inputs, max_new_tokens=64, do_sample=False)
print(tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))"""
    return f"""from peft import PeftModel
from transformers import {auto}, AutoTokenizer

adapter = "path/to/this/folder"  # or its Hub id
tokenizer = AutoTokenizer.from_pretrained(adapter)
model = PeftModel.from_pretrained({auto}.from_pretrained("{base}"), adapter)  # the head is saved with the adapter
print(model(**tokenizer("Hello!", return_tensors="pt")).logits)"""


def write_adapter_card(out: Path, config, summary: dict, report: dict, tokenizer=None) -> Path:
    path = Path(out) / "README.md"
    path.write_text(card(config, summary, report, tokenizer), encoding="utf-8")
    return path


def make_portable(out: Path, config) -> None:
    """Name the base in adapter_config.json as anyone can load it: a packaged model by its Hub id (read back here as
    the packaged model), a Hub model by its id, never this machine's path to it; and drop the pickled
    training_args.bin the Trainer leaves beside the adapter (the checkpoints keep theirs for Resume)."""
    (out / "training_args.bin").unlink(missing_ok=True)
    path = out / "adapter_config.json"
    model = str(config.model)
    portable = _base_id(model)
    if not path.is_file() or (portable == model and (model.count("/") != 1 or Path(model).expanduser().exists())):
        return  # a base of this machine only (a folder, trained:<name>): the path is what finds it
    adapter = json.loads(path.read_text(encoding="utf-8"))
    adapter["base_model_name_or_path"] = portable
    path.write_text(json.dumps(adapter, indent=2, sort_keys=True), encoding="utf-8")


def _base_id(model: str) -> str:
    """The base's Hub id where one is known (a packaged model's upstream), else what the config names."""
    try:
        from services.models import packs

        pack = packs.PACKS.get(model)
        if pack is not None and pack.hub_id:
            return pack.hub_id
    except Exception as err:  # the card must not fail a finished training
        logger.debug("no upstream id for %s: %s", model, err)
    return model


def _pipeline_tag(task: str) -> str:
    return {"chat": "text-generation", "causal-lm": "text-generation", "summarization": "summarization"}.get(
        task, "token-classification" if task == "token-classification" else "text-classification"
    )


def _cell(value) -> str:
    return json.dumps(str(value), ensure_ascii=False)[1:-1].replace("|", "\\|")[:200]


def _section(title: str, header: str, rule: str, rows: str) -> str:
    return f"\n## {title}\n\n{header}\n{rule}\n{rows}\n" if rows else ""
