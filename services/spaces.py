""" "Create a demo Space": a small, self-contained Gradio app that serves a model pushed from the playground.

`space_files()` writes the three files a Space needs: `app.py` (loads the model by its Hub id and serves one
task), `requirements.txt` and a `README.md` whose YAML block is the Space configuration (sdk, app_file, models).
`create_demo_space()` pushes them as a new Space repo; a name that is already taken is refused, never overwritten.
The generated app reads its model id from `MODEL_ID` when set, so it can be tried on a local folder first.
"""

from __future__ import annotations

import re
from pathlib import Path

from services.errors import PlaygroundError

# What the demo shows for each task the fine-tune launcher trains (and the pipeline tasks they map to).
_TASKS = {
    "text-classification": "classify",
    "text-regression": "score",
    "token-classification": "entities",
    "summarization": "summarize",
    "causal-lm": "generate",
    "text-generation": "generate",
}

_HEADER = '''"""{title}: a demo of {model_id}, made with HF Playground. Run it with `python app.py`."""

import os

import gradio as gr
import torch
from transformers import AutoTokenizer

MODEL_ID = os.environ.get("MODEL_ID", {model_id!r})
tokenizer = AutoTokenizer.from_pretrained(MODEL_ID)
'''

_BODIES = {
    "classify": """from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained(MODEL_ID).eval()
MULTI_LABEL = model.config.problem_type == "multi_label_classification"


def predict(text):
    inputs = tokenizer(text, truncation=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0]
    scores = logits.sigmoid() if MULTI_LABEL else logits.softmax(-1)
    return {model.config.id2label[i]: float(s) for i, s in enumerate(scores)}


output = gr.Label(label="Prediction", num_top_classes=5)
""",
    "score": """from transformers import AutoModelForSequenceClassification

model = AutoModelForSequenceClassification.from_pretrained(MODEL_ID).eval()


def predict(text):
    inputs = tokenizer(text, truncation=True, return_tensors="pt")
    with torch.no_grad():
        return round(float(model(**inputs).logits[0, 0]), 4)


output = gr.Number(label="Predicted score")
""",
    "entities": """from transformers import AutoModelForTokenClassification

model = AutoModelForTokenClassification.from_pretrained(MODEL_ID).eval()


def predict(text):
    inputs = tokenizer(text, truncation=True, return_offsets_mapping=True, return_tensors="pt")
    offsets = inputs.pop("offset_mapping")[0].tolist()
    with torch.no_grad():
        labels = model(**inputs).logits[0].argmax(-1).tolist()
    spans = []
    for (start, end), label_id in zip(offsets, labels):
        label = model.config.id2label[label_id]
        if start == end or label == "O":
            continue
        kind = label.split("-", 1)[-1]
        if spans and spans[-1]["entity"] == kind and not label.startswith("B-") and start - spans[-1]["end"] <= 1:
            spans[-1]["end"] = end  # the next piece of the same entity
        else:
            spans.append({"entity": kind, "start": start, "end": end})
    return {"text": text, "entities": spans}


output = gr.HighlightedText(label="Entities")
""",
    "summarize": """from transformers import AutoModelForSeq2SeqLM

model = AutoModelForSeq2SeqLM.from_pretrained(MODEL_ID).eval()


def predict(text):
    inputs = tokenizer(text, truncation=True, return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(**inputs, max_new_tokens=64, num_beams=2)
    return tokenizer.decode(ids[0], skip_special_tokens=True)


output = gr.Textbox(label="Summary")
""",
    "generate": """from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained(MODEL_ID).eval()


def predict(text):
    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        ids = model.generate(
            **inputs, max_new_tokens=60, do_sample=True, top_p=0.9, pad_token_id=tokenizer.eos_token_id
        )
    return tokenizer.decode(ids[0], skip_special_tokens=True)


output = gr.Textbox(label="Continuation")
""",
}

_FOOTER = """
demo = gr.Interface(
    fn=predict,
    inputs=gr.Textbox(label="Text", lines=4),
    outputs=output,
    title={title!r},
    description={description!r},
    examples={examples!r},
    flagging_mode="never",
)

if __name__ == "__main__":
    demo.launch()
"""

_EXAMPLES = {
    "classify": ["I loved every minute of it.", "The battery died after two days."],
    "score": ["A quiet, well-made little film.", "Terrible service and cold food."],
    "entities": ["Ada Lovelace worked with Charles Babbage in London."],
    "summarize": [
        "The town council met on Tuesday and agreed to open the new library in spring, after two years of work."
    ],
    "generate": ["Once upon a time"],
}


def task_of(folder: str | Path) -> str:
    """The task of a model fine-tuned here (from the summary it saved), else guessed from its config."""
    import json

    folder = Path(folder)
    summary = folder / "playground-model.json"
    if summary.is_file():
        return json.loads(summary.read_text()).get("task", "text-classification")
    config = json.loads((folder / "config.json").read_text()) if (folder / "config.json").is_file() else {}
    architecture = " ".join(config.get("architectures") or [])
    for marker, task in (
        ("TokenClassification", "token-classification"),
        ("SequenceClassification", "text-classification"),
        ("ConditionalGeneration", "summarization"),
        ("CausalLM", "causal-lm"),
        ("LMHead", "causal-lm"),
    ):
        if marker in architecture:
            return task
    raise PlaygroundError("This model's task is unknown: a demo Space can be made for models trained here.")


def space_name_for(model_id: str) -> str:
    """A default Space name: the model's name with `-demo`."""
    return re.sub(r"[^A-Za-z0-9._-]", "-", model_id.split("/")[-1])[:80] + "-demo"


def space_files(model_id: str, task: str, title: str | None = None, examples: list[str] | None = None) -> dict:
    """The files of a demo Space for `model_id` (a Hub repo id), as {name: text}."""
    from importlib.metadata import version

    kind = _TASKS.get(task)
    if kind is None:
        raise PlaygroundError(
            f"A demo Space can be made for {', '.join(sorted(_TASKS))} models; this one does '{task}'."
        )
    title = (title or "").strip() or f"{model_id.split('/')[-1]} demo"
    description = f"Try [{model_id}](https://huggingface.co/{model_id}), fine-tuned with HF Playground."
    app = (
        _HEADER.format(title=title.replace('"', "'"), model_id=model_id)
        + "\n"
        + _BODIES[kind]
        + _FOOTER.format(title=title, description=description, examples=examples or _EXAMPLES[kind])
    )
    requirements = f"transformers>={version('transformers').split('.')[0]}\ntorch\nsentencepiece\n"
    readme = f"""---
title: {_yaml_text(title)}
emoji: 🤗
colorFrom: yellow
colorTo: red
sdk: gradio
sdk_version: {version("gradio")}
app_file: app.py
pinned: false
models:
- {model_id}
tags:
- hf-playground
---

# {title}

A demo of [{model_id}](https://huggingface.co/{model_id}) ({task}), generated by HF Playground.
`app.py` loads the model with 🤗 Transformers and serves it with Gradio; run it locally with
`pip install -r requirements.txt gradio && python app.py`.
"""
    return {"app.py": app, "requirements.txt": requirements, "README.md": readme}


def _yaml_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_space(folder: str | Path, model_id: str, task: str, title: str | None = None) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in space_files(model_id, task, title).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def create_demo_space(
    folder: str | Path,
    model_id: str,
    task: str,
    space_id: str,
    *,
    title: str | None = None,
    private: bool = False,
    token: str | None = None,
    progress=None,
) -> dict:
    """Write the demo into `folder` and push it as a new Space; a Space that already exists is refused."""
    from services.hub import push

    write_space(folder, model_id, task, title)
    return push(
        folder,
        space_id,
        repo_type="space",
        private=private,
        message=f"Demo of {model_id} from HF Playground",
        token=token,
        new_repo=True,
        progress=progress,
    )
