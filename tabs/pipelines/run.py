"""Running the Pipelines tab: one model or two side by side, streamed for generation, rendered per task."""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from services import pipelines as pl
from services.pipelines.codegen import snippet
from tabs.pipelines import view
from tabs.pipelines.form import IDLE, ResultPanel, collect


def render(
    panel: ResultPanel,
    task: str,
    inputs: Any,
    result: Any,
    heading: str,
    matrix: list[list[float]] | None = None,
    label: str = "",
) -> dict:
    """Component updates that show `result` in `panel` (`label`: what the zero-shot bars mean)."""
    show = {c: gr.update(visible=False) for c in (panel.label, panel.highlight, panel.text, panel.tokens, panel.table)}
    show[panel.title] = heading
    show[panel.raw] = result if task != "feature-extraction" else view.feature_summary(result)
    show[panel.label] = gr.update(visible=False, label="Scores")  # labels a previous task may have renamed
    show[panel.table] = gr.update(visible=False, label=None)
    if task == "feature-extraction":
        summary = view.feature_summary(result)
        show[panel.text] = gr.update(
            value=f"{summary['tokens']} tokens × {summary['dimensions']} numbers each.\n"
            f"First token, first numbers: {summary['first token, first 8 numbers']}",
            visible=True,
        )
    if task == "zero-shot-classification":
        show[panel.label] = gr.update(value=view.as_label(result), label=label or "Scores", visible=True)
    elif task in ("text-classification", "fill-mask"):
        show[panel.label] = gr.update(value=view.as_label(result), visible=True)
    elif task == "token-classification":
        show[panel.highlight] = gr.update(
            value=view.entities_highlight(inputs, result), color_map=view.ner_colours(), visible=True
        )
        show[panel.table] = gr.update(
            value=view.entities_table(result), headers=["Entity", "Words", "Score", "Start", "End"], visible=True
        )
    elif task == "question-answering":
        answers = result if isinstance(result, list) else [result]
        show[panel.highlight] = gr.update(
            value=view.qa_highlight(inputs["context"], answers), color_map={"answer": "#ffd21e"}, visible=True
        )
        show[panel.table] = gr.update(
            value=view.qa_table(answers), headers=["Answer", "Score", "Start", "End"], visible=True
        )
    elif task in ("summarization", "translation"):
        key = "summary_text" if task == "summarization" else "translation_text"
        show[panel.text] = gr.update(value=result[0][key], visible=True)
    elif task == "sentence-similarity":
        # One numbering (the sentences as typed: 1, 2, 3; the source is S) and one unit (%) in bars and table.
        scores = view.similarity_bars(inputs["sentences"], result)
        show[panel.label] = gr.update(value=scores, label=view.SIMILARITY_LABEL, visible=True)
        if matrix is not None:
            sentences = [inputs["source_sentence"], *inputs["sentences"]]
            headers, rows = view.matrix_table(sentences, matrix)
            show[panel.table] = gr.update(value=rows, headers=headers, label=view.MATRIX_LABEL, visible=True)
    return show


@dataclass
class RunState:
    """Which panel and model a run is at, so an error is shown where it happened."""

    panel: ResultPanel
    model: str = ""


class StopSignals:
    """Stop requests per browser session. A Stop ends a generation between two tokens, so the panel can still show
    what was generated (cancelling the event would leave it half drawn). Held by the tab, behind a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, threading.Event] = {}

    def arm(self, key: str) -> threading.Event:
        event = threading.Event()  # a fresh one per run: a late Stop of the last run cannot stop this one
        with self._lock:
            self._events[key] = event
        return event

    def request(self, key: str) -> None:
        with self._lock:
            event = self._events.get(key)
        if event is not None:
            event.set()

    def release(self, key: str, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(key) is event:
                del self._events[key]


def _text(value: str) -> str:
    """A model id or a sentence as plain text inside the panel's Markdown (a typed `<x>` is not an HTML tag)."""
    return html.escape(str(value), quote=False)


def _hidden(panel: ResultPanel) -> dict:
    return {c: gr.update(visible=False) for c in (panel.label, panel.highlight, panel.text, panel.tokens, panel.table)}


def idle(panel: ResultPanel, title: str) -> dict:
    """The panel before a run: its title and what to do, nothing of an earlier run."""
    return {**_hidden(panel), panel.title: f"#### {_text(title)}\n{IDLE}", panel.raw: None}


def failed(panel: ResultPanel, model_id: str, sentence: str) -> dict:
    """The panel after an error: the sentence in it (a toast vanishes), nothing of an earlier run."""
    name = model_id or "Result"
    title = f"#### {_text(name)}\n❌ **It did not run.** {_text(sentence)}"
    return {**_hidden(panel), panel.title: title, panel.raw: None}


def run_task(
    values: dict,
    owner: str,
    first: ResultPanel,
    second: ResultPanel,
    code: gr.Code,
    progress: Any = None,
    state: RunState | None = None,
    halt: threading.Event | None = None,
) -> Iterator[dict]:
    state = state or RunState(first)
    task = values["task"]
    model_a = (values["model"] or "").strip()
    model_b = (values["compare"] or "").strip()
    state.model = model_a
    inputs, params = collect(task, values)
    if not model_a:
        raise gr.Error("Please choose a model (or type a Hub id) first.")
    # Both panels leave their last run at once: one is loading, the other waits or is idle.
    waiting = f"#### {_text(model_b)}\nWaiting for the first model…" if model_b else f"#### Compared with\n{IDLE}"
    yield {**idle(first, model_a), **idle(second, "Compared with"), second.title: waiting}
    for panel, model_id in ((first, model_a), (second, model_b)):
        if not model_id:
            continue
        state.panel, state.model = panel, model_id
        yield {panel.title: f"#### {_text(model_id)}\nLoading the model and running…"}
        started = time.perf_counter()
        # Load first (a no-op once cached) so a first download or conversion shows its progress.
        report = (lambda fraction, message: progress(fraction, desc=message)) if progress is not None else None
        pl.load_for(task, model_id, owner=owner, progress=report)
        if halt is not None and halt.is_set():
            yield {panel.title: f"#### {_text(model_id)}\n⏹ You stopped it before it ran."}
            return
        if task == "text-generation":
            yield from _stream_generation(panel, model_id, inputs, params, owner, started, halt)
            if panel is first:
                # Chat models got the text as a user message: the code does the same.
                chat = pl.uses_chat_template(model_id, owner)
                prompt = [{"role": "user", "content": inputs}] if chat else inputs
                yield {code: snippet(task, model_id, prompt, params, owner)}
            if halt is not None and halt.is_set():
                return  # a Stop ends the whole run, the compared model included
            continue
        if panel is first:
            yield {code: snippet(task, model_id, inputs, params, owner)}
        result = pl.run(task, model_id, inputs, owner=owner, **params)
        took = time.perf_counter() - started
        label, meaning = _zero_shot_meaning(task, model_id, params, owner)
        heading = f"#### {_text(model_id)}\n⏱ {took:.2f} s{_notice(task, model_id, inputs, owner)}{meaning}"
        matrix = None
        if task == "sentence-similarity":
            matrix = pl.similarity_matrix(model_id, [inputs["source_sentence"], *inputs["sentences"]], owner)
        yield render(panel, task, inputs, result, heading, matrix, label)


def _zero_shot_meaning(task: str, model_id: str, params: dict, owner: str) -> tuple[str, str]:
    """(bar label, a line under the heading): what zero-shot scores mean, so independent similarities are not
    read as confident probabilities."""
    if task != "zero-shot-classification":
        return "", ""
    multi = bool(params.get("multi_label"))
    if not pl.zero_shot_by_embedding(model_id, owner):
        return ("Each label on its own (several may be true)" if multi else "Scores (they add up to 100 %)"), ""
    if not multi:
        return "Closest label in meaning (the scores add up to 100 %)", ""
    return "Similarity of the text to each label (not a probability)", f"\n\nℹ️ {view.MULTI_LABEL_NOTE}"


def _notice(task: str, model_id: str, inputs: Any, owner: str) -> str:
    """A visible line when the text was longer than the model reads (truncated or windowed)."""
    notice = pl.input_notice(task, model_id, inputs, owner)
    return f"\n\n⚠️ {notice}" if notice else ""


def _stream_generation(
    panel: ResultPanel,
    model_id: str,
    prompt: str,
    params: dict,
    owner: str,
    started: float,
    halt: threading.Event | None = None,
) -> Iterator[dict]:
    first_token = None
    shown = {panel.text: gr.update(visible=True), panel.tokens: gr.update(visible=False)}
    for key in (panel.label, panel.highlight, panel.table):
        shown[key] = gr.update(visible=False)
    yield shown
    final: dict = {}
    for event in pl.stream(model_id, prompt, owner=owner, halt=halt, **params):
        update = {panel.text: event["text"]}
        if first_token is None and event["text"]:
            first_token = time.perf_counter() - started
            update[panel.title] = f"#### {_text(model_id)}\nGenerating… (first token after {first_token:.2f} s)"
        final = event
        yield update
    took = time.perf_counter() - started
    tokens = final.get("tokens", [])
    rate = f" · {len(tokens) / took:.1f} tokens/s" if tokens and took > 0 else ""
    ttft = f" · first token after {first_token:.2f} s" if first_token is not None else ""
    notice = _notice("text-generation", model_id, prompt, owner)
    shown = [t for t in tokens if not t.get("special")]
    stopped = f"⏹ You stopped it after {len(shown)} tokens · " if final.get("stopped") else ""
    yield {
        panel.title: f"#### {_text(model_id)}\n{stopped}⏱ {took:.2f} s{ttft}{rate}{notice}",
        panel.tokens: gr.update(value=view.token_html(tokens), visible=bool(tokens)),
        panel.raw: _generation_schema(model_id, prompt, final.get("text", ""), owner),
    }


def _generation_schema(model_id: str, prompt: str, text: str, owner: str) -> list[dict]:
    """What transformers 4.x's text-generation pipeline returned: the prompt plus the new text, or for a chat the
    messages with the assistant's reply appended."""
    if pl.uses_chat_template(model_id, owner):
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": text}]
        return [{"generated_text": messages}]
    return [{"generated_text": prompt + text}]
