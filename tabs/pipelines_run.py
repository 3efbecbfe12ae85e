"""Running the Pipelines tab: one model or two side by side, streamed for generation, rendered per task."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from services import pipelines as pl
from services.pipelines.codegen import snippet
from tabs import pipelines_view as view
from tabs.pipelines_form import ResultPanel, collect


def render(
    panel: ResultPanel, task: str, inputs: Any, result: Any, heading: str, matrix: list[list[float]] | None = None
) -> dict:
    """Component updates that show `result` in `panel`."""
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
    if task in ("text-classification", "zero-shot-classification", "fill-mask"):
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
        rows = view.similarity_table(inputs["source_sentence"], inputs["sentences"], result)
        # gr.Label draws bars from 0 to 1: negative cosines are shown as 0 there (the table has the exact numbers).
        scores = {f"{i + 1}. {sentence}": max(score, 0.0) for i, (sentence, score) in enumerate(rows)}
        show[panel.label] = gr.update(value=scores, label="Similarity to the source sentence", visible=True)
        if matrix is not None:
            sentences = [inputs["source_sentence"], *inputs["sentences"]]
            headers, rows = view.matrix_table(sentences, matrix)
            show[panel.table] = gr.update(value=rows, headers=headers, label="Every pair", visible=True)
    return show


def run_task(
    values: dict, owner: str, first: ResultPanel, second: ResultPanel, code: gr.Code, progress: Any = None
) -> Iterator[dict]:
    task = values["task"]
    inputs, params = collect(task, values)
    model_a = (values["model"] or "").strip()
    if not model_a:
        raise gr.Error("Please choose a model (or type a Hub id) first.")
    model_b = (values["compare"] or "").strip()
    for panel, model_id in ((first, model_a), (second, model_b)):
        if not model_id:
            continue
        yield {panel.title: f"#### {model_id}\nLoading the model and running…"}
        started = time.perf_counter()
        # Load first (a no-op once cached) so a first download or conversion shows its progress.
        report = (lambda fraction, message: progress(fraction, desc=message)) if progress is not None else None
        pl.load_for(task, model_id, owner=owner, progress=report)
        if task == "text-generation":
            yield from _stream_generation(panel, model_id, inputs, params, owner, started)
            if panel is first:
                # Chat models got the text as a user message: the code does the same.
                chat = pl.uses_chat_template(model_id, owner)
                prompt = [{"role": "user", "content": inputs}] if chat else inputs
                yield {code: snippet(task, model_id, prompt, params, owner)}
            continue
        if panel is first:
            yield {code: snippet(task, model_id, inputs, params, owner)}
        result = pl.run(task, model_id, inputs, owner=owner, **params)
        took = time.perf_counter() - started
        heading = f"#### {model_id}\n⏱ {took:.2f} s{_notice(task, model_id, inputs, owner)}"
        matrix = None
        if task == "sentence-similarity":
            matrix = pl.similarity_matrix(model_id, [inputs["source_sentence"], *inputs["sentences"]], owner)
        yield render(panel, task, inputs, result, heading, matrix)


def _notice(task: str, model_id: str, inputs: Any, owner: str) -> str:
    """A visible line when the text was longer than the model reads (truncated or windowed)."""
    notice = pl.input_notice(task, model_id, inputs, owner)
    return f"\n\n⚠️ {notice}" if notice else ""


def _stream_generation(
    panel: ResultPanel, model_id: str, prompt: str, params: dict, owner: str, started: float
) -> Iterator[dict]:
    first_token = None
    shown = {panel.text: gr.update(visible=True), panel.tokens: gr.update(visible=False)}
    for key in (panel.label, panel.highlight, panel.table):
        shown[key] = gr.update(visible=False)
    yield shown
    final: dict = {}
    for event in pl.stream(model_id, prompt, owner=owner, **params):
        update = {panel.text: event["text"]}
        if first_token is None and event["text"]:
            first_token = time.perf_counter() - started
            update[panel.title] = f"#### {model_id}\nGenerating… (first token after {first_token:.2f} s)"
        final = event
        yield update
    took = time.perf_counter() - started
    tokens = final.get("tokens", [])
    rate = f" · {len(tokens) / took:.1f} tokens/s" if tokens and took > 0 else ""
    ttft = f" · first token after {first_token:.2f} s" if first_token is not None else ""
    notice = _notice("text-generation", model_id, prompt, owner)
    yield {
        panel.title: f"#### {model_id}\n⏱ {took:.2f} s{ttft}{rate}{notice}",
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
