"""The Pipelines tab's form: its widgets, the result panels, and how widget values become (inputs, params).

The sliders offer no more than the caps of `services.core.limits` allow (tokens to generate, beams, top_k), so what the
form can ask is what the services accept.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import gradio as gr

from services.core.limits import get_limits
from services.pipelines.tasks import TASK_SPECS
from tabs.pipelines import view

LANG_CHOICES = [
    ("English", "en"),
    ("French", "fr"),
    ("German", "de"),
    ("Spanish", "es"),
    ("Italian", "it"),
    ("Portuguese", "pt"),
    ("Dutch", "nl"),
    ("Romanian", "ro"),
    ("Chinese", "zh"),
    ("Japanese", "ja"),
]
TASK_CHOICES = [(s.label, s.id) for s in TASK_SPECS.values()]
TEXT_LABEL = {"question-answering": "Question", "sentence-similarity": "Source sentence"}
IDLE = "*Press **Run** to see the result here.*"
MODEL_INFO = "A catalog model, a Hub id, trained:<name>, or a folder"
COMPARE_INFO = "Run the same input through a second model, side by side"
# An empty picker would open to nothing: its info line says why and what to do instead.
NO_MODEL_INFO = "No model for this task here yet: train one in the Fine-tune tab, or type a Hub id (online)"


@dataclass
class ResultPanel:
    """What one model's run shows; the compare column has a second one."""

    title: gr.Markdown
    label: gr.Label
    highlight: gr.HighlightedText
    text: gr.Textbox
    tokens: gr.HTML
    table: gr.Dataframe
    raw: gr.JSON

    def components(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]


@dataclass
class Form:
    task: gr.Dropdown
    model: gr.Dropdown
    compare: gr.Dropdown
    explanation: gr.Markdown
    text: gr.Textbox
    context: gr.Textbox
    labels: gr.Textbox
    sentences: gr.Textbox
    src_lang: gr.Dropdown
    tgt_lang: gr.Dropdown
    top_k: gr.Slider
    max_answer_len: gr.Slider
    handle_impossible_answer: gr.Checkbox
    aggregation_strategy: gr.Dropdown
    multi_label: gr.Checkbox
    max_new_tokens: gr.Slider
    temperature: gr.Slider
    top_p: gr.Slider
    top_k_sampling: gr.Slider
    repetition_penalty: gr.Slider
    num_beams: gr.Slider
    seed: gr.Number

    def values(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]

    @staticmethod
    def names() -> list[str]:
        return [f.name for f in fields(Form)]


def result_panel(title: str) -> ResultPanel:
    with gr.Column():
        heading = gr.Markdown(f"#### {title}\n{IDLE}", elem_classes=["pg-result-title"])
        label = gr.Label(label="Scores", num_top_classes=8, visible=False)
        highlight = gr.HighlightedText(
            label="In the text",
            visible=False,
            combine_adjacent=False,
            show_legend=True,
            color_map=view.ner_colours(),
        )
        text = gr.Textbox(label="Output", lines=6, visible=False, buttons=["copy"], interactive=False)
        tokens = gr.HTML(visible=False)
        table = gr.Dataframe(visible=False, interactive=False, wrap=True, max_height=260)
        with gr.Accordion("Raw output (transformers 4.x format)", open=False):
            raw = gr.JSON(show_label=False)
    return ResultPanel(heading, label, highlight, text, tokens, table, raw)


@dataclass
class Toggles:
    """Layout blocks shown or hidden with the task."""

    languages: gr.Row
    settings: gr.Accordion


def build_form() -> tuple[Form, Toggles]:
    with gr.Row(equal_height=True):
        # Wide enough for the longest task name ("Sentence similarity / embeddings").
        task = gr.Dropdown(TASK_CHOICES, value="text-generation", label="Task", scale=3, min_width=300)
        model = gr.Dropdown([], label="Model", allow_custom_value=True, scale=3, info=MODEL_INFO, elem_id="pl-model")
        compare = gr.Dropdown(
            [],
            label="Compare with (optional)",
            allow_custom_value=True,
            scale=3,
            info=COMPARE_INFO,
            elem_id="pl-compare",
        )
    explanation = gr.Markdown(elem_classes=["pg-explain"])
    text = gr.Textbox(label="Text", lines=4, elem_id="pl-text")
    context = gr.Textbox(label="Context (the text the answer is taken from)", lines=6, visible=False)
    labels = gr.Textbox(label="Candidate labels, separated by commas", visible=False)
    sentences = gr.Textbox(label="Sentences to compare with it, one per line", lines=4, visible=False)
    with gr.Row(visible=False) as languages:
        src_lang = gr.Dropdown(LANG_CHOICES, value="en", label="From", allow_custom_value=True)
        tgt_lang = gr.Dropdown(LANG_CHOICES, value="fr", label="To", allow_custom_value=True)
    limits = get_limits()
    top_k_cap, answer_cap, new_tokens = (
        min(10, limits.top_k),
        min(100, limits.sequence_tokens),
        min(512, limits.new_tokens),
    )
    with gr.Accordion("Settings", open=False) as settings:
        with gr.Row():
            top_k = gr.Slider(1, top_k_cap, value=min(3, top_k_cap), step=1, label="How many results (top_k)")
            max_answer_len = gr.Slider(
                1, answer_cap, value=min(15, answer_cap), step=1, label="Longest answer, in tokens"
            )
            handle_impossible_answer = gr.Checkbox(False, label="Allow 'no answer'")
            aggregation_strategy = gr.Dropdown(
                ["none", "simple", "first", "average", "max"],
                value="first",
                label="Group word pieces into",
                info="first: each word takes its first piece's label, as NER models are trained",
            )
            multi_label = gr.Checkbox(False, label="Several labels may be true")
        with gr.Row():
            max_new_tokens = gr.Slider(1, new_tokens, value=min(128, new_tokens), step=1, label="Max new tokens")
            temperature = gr.Slider(0, 2, value=0, step=0.05, label="Temperature (0 = always the likeliest)")
            top_p = gr.Slider(0.05, 1, value=1, step=0.05, label="top_p")
            top_k_sampling = gr.Slider(0, limits.top_k, value=limits.top_k, step=1, label="top_k (sampling)")
            repetition_penalty = gr.Slider(1, 2, value=1.0, step=0.05, label="Repetition penalty")
            num_beams = gr.Slider(1, limits.beams, value=1, step=1, label="Beams")
            seed = gr.Number(0, label="Seed (0 = a new random draw each run)", precision=0, minimum=0)
    form = Form(
        task,
        model,
        compare,
        explanation,
        text,
        context,
        labels,
        sentences,
        src_lang,
        tgt_lang,
        top_k,
        max_answer_len,
        handle_impossible_answer,
        aggregation_strategy,
        multi_label,
        max_new_tokens,
        temperature,
        top_p,
        top_k_sampling,
        repetition_penalty,
        num_beams,
        seed,
    )
    return form, Toggles(languages, settings)


TASK_SETTINGS = {
    "text-classification": ("top_k",),
    "token-classification": ("aggregation_strategy",),
    "question-answering": ("top_k", "max_answer_len", "handle_impossible_answer"),
    "zero-shot-classification": ("multi_label",),
    "fill-mask": ("top_k",),
    "summarization": ("max_new_tokens", "num_beams"),
    "translation": ("max_new_tokens", "num_beams"),
    "text-generation": ("max_new_tokens", "temperature", "top_p", "top_k_sampling", "repetition_penalty", "seed"),
}
_INTEGER_SETTINGS = {"top_k", "top_k_sampling", "max_answer_len", "max_new_tokens", "num_beams", "seed"}
ALL_SETTINGS = sorted({s for group in TASK_SETTINGS.values() for s in group})


def collect(task: str, values: dict[str, Any]) -> tuple[Any, dict]:
    """Widget values -> (inputs, params) for `services.pipelines.run`, only the settings this task uses."""
    text = values["text"] or ""
    if task == "question-answering":
        inputs: Any = {"question": text, "context": values["context"] or ""}
    elif task == "sentence-similarity":
        sentences = [s.strip() for s in (values["sentences"] or "").splitlines() if s.strip()]
        inputs = {"source_sentence": text, "sentences": sentences}
    else:
        inputs = text
    params: dict[str, Any] = {}
    for name in TASK_SETTINGS.get(task, ()):
        value = values[name]
        if name == "top_k_sampling":
            name = "top_k"
        if name in _INTEGER_SETTINGS and isinstance(value, float):
            value = int(value)
        params[name] = value
    if task == "zero-shot-classification":
        params["candidate_labels"] = [x.strip() for x in (values["labels"] or "").split(",") if x.strip()]
        if not params["candidate_labels"]:
            raise gr.Error("Please type at least one candidate label, for example: sports, politics, cooking.")
    if task == "translation":
        params["src_lang"], params["tgt_lang"] = values["src_lang"], values["tgt_lang"]
    if task == "text-generation":
        # Greedy decoding (temperature 0) ignores the sampling settings and the seed: leave them out.
        if not params.get("temperature"):
            params = {k: v for k, v in params.items() if k not in ("temperature", "top_p", "top_k", "seed")}
        if not params.get("seed"):  # 0 or empty: no fixed seed
            params.pop("seed", None)
        if params.get("repetition_penalty") == 1:
            params.pop("repetition_penalty")
    if task in ("summarization", "translation") and params.get("num_beams") == 1:
        params.pop("num_beams")
    if task == "token-classification" and params.get("aggregation_strategy") == "none":
        params.pop("aggregation_strategy")
    return inputs, params
