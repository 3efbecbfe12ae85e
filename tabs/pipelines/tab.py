"""Pipelines tab: pick a task and a model, run it, see the result explained; compare two models; copy the code.

The callbacks turn widget values into (inputs, params), call `services.pipelines`, and render with
`tabs.pipelines.view`. Text generation streams token by token, then shows how likely each token was.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from services import pipelines as pl
from services.core.limits import check_text, run_gate
from services.jobs.manager import JobManager
from services.models import catalog as models
from services.pipelines.tasks import TASK_SPECS, spec
from tabs.pipelines import batch as pipelines_batch
from tabs.pipelines.form import (
    ALL_SETTINGS,
    COMPARE_INFO,
    MODEL_INFO,
    NO_MODEL_INFO,
    TASK_SETTINGS,
    TEXT_LABEL,
    Form,
    ResultPanel,
    Toggles,
    build_form,
    result_panel,
)
from tabs.pipelines.run import RunState, StopSignals, failed, idle, run_task
from tabs.session import friendly, owner_of


@dataclass
class PipelinesTab:
    form: Form
    first: ResultPanel
    second: ResultPanel
    code: gr.Code
    on_task: Callable  # (task, text, model, request, profile) -> updates; app.py runs it on page load
    task_outputs: list


def build(manager: JobManager) -> PipelinesTab:
    gr.Markdown(
        "Pick a task and a model, type something, press **Run**. Every result is explained; "
        "**Copy as code** gives the Python that does the same thing with transformers."
    )
    form, toggles = build_form()
    with gr.Row():
        example = gr.Button("Example", size="sm", scale=0, min_width=110)
        run_btn = gr.Button("Run", variant="primary", scale=1)
        stop = gr.Button("Stop", variant="stop", scale=0, min_width=110)
    with gr.Row(equal_height=False):
        first = result_panel("Result")
        with gr.Column(visible=False) as second_column:
            second = result_panel("Compared with")
    with gr.Accordion("Copy as code", open=False):
        code = gr.Code(language="python", show_label=False, interactive=False)
    pipelines_batch.build(form, manager)
    on_task = _wire(form, toggles, first, second, second_column, code, example, run_btn, stop)
    api()
    return PipelinesTab(form, first, second, code, on_task, _task_outputs(form, toggles, first, second))


def _wire(form: Form, toggles: Toggles, first, second, second_column, code, example, run_btn, stop) -> Callable:
    @friendly
    def on_task(
        task: str, text: str | None, model: str | None, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> dict:
        s = spec(task)
        owner = owner_of(request, profile)
        entries = models.catalog(task, owner=owner)
        choices = [e.id for e in entries]
        default = s.offline_model if s.offline_model in choices else (choices[0] if choices else None)
        # A chosen model that can do the new task stays (also what "Try it in Pipelines" set with the task).
        default = model if model in choices else default
        note = (
            ""
            if choices
            else (
                "\n\n*No model for this task is available offline: type a Hub id when the playground is online, or "
                "train one in the Fine-tune tab.*"
            )
        )
        updates = {
            form.model: gr.update(choices=choices, value=default, info=MODEL_INFO if choices else NO_MODEL_INFO),
            form.compare: gr.update(choices=["", *choices], value="", info=COMPARE_INFO if choices else NO_MODEL_INFO),
            form.multi_label: gr.update(value=False),  # the single-label view first: its scores are comparable
            form.explanation: f"**{s.label}.** {s.explanation}{note}",
            form.context: gr.update(visible="context" in s.inputs, value=s.example.get("context", "")),
            form.labels: gr.update(visible="labels" in s.inputs, value=s.example.get("labels", "")),
            form.sentences: gr.update(visible="sentences" in s.inputs, value=s.example.get("sentences", "")),
            toggles.languages: gr.update(visible="languages" in s.inputs),
            toggles.settings: gr.update(visible=bool(TASK_SETTINGS.get(task))),
            # Keep what the visitor typed; replace only an empty box or another task's example.
            form.text: gr.update(
                value=s.example.get("text", "") if not text or text in _EXAMPLE_TEXTS else text,
                label=TEXT_LABEL.get(task, "Text"),
            ),
        }
        for name in ALL_SETTINGS:
            updates[getattr(form, name)] = gr.update(visible=name in TASK_SETTINGS.get(task, ()))
        # Nothing of the last task's run stays: its model, timings, result or error.
        return {**updates, **idle(first, "Result"), **idle(second, "Compared with")}

    def fill_example(task: str) -> dict:
        s = spec(task)
        return {
            form.text: s.example.get("text", ""),
            form.context: s.example.get("context", ""),
            form.labels: s.example.get("labels", ""),
            form.sentences: s.example.get("sentences", ""),
        }

    def on_compare(compare: str | None) -> dict:
        return {second_column: gr.update(visible=bool(compare))}

    stops = StopSignals()

    @friendly
    def attempt(values: dict, request: gr.Request, profile, progress, state: RunState, halt) -> Iterator[dict]:
        owner = owner_of(request, profile)
        with run_gate().hold(owner):  # one run at a time per visitor: the models are shared with everyone
            yield from run_task(values, owner, first, second, code, progress, state, halt)

    def on_run(
        data: dict, request: gr.Request, profile: gr.OAuthProfile | None, progress: gr.Progress = gr.Progress()
    ) -> Iterator[dict]:
        values = {name: data[getattr(form, name)] for name in Form.names()}
        state = RunState(first, (values["model"] or "").strip())
        key = request.session_hash or ""
        halt = stops.arm(key)
        try:
            yield from attempt(values, request, profile, progress, state, halt)
        except gr.Error as err:
            # The sentence goes in the panel where it happened (a toast vanishes after a few seconds).
            gr.Warning(err.message)
            yield failed(state.panel, state.model, err.message)
        finally:
            stops.release(key, halt)

    def on_stop(request: gr.Request) -> None:
        stops.request(request.session_hash or "")

    # A set of inputs makes Gradio pass one {component: value} dict.
    run_event = run_btn.click(
        on_run,
        set(form.values()),
        [*first.components(), *second.components(), code],
        api_visibility="private",
        concurrency_id="inference",
        concurrency_limit=2,
    )
    # Stop asks the run to end after the current token, so the tokens so far are still shown (see StopSignals).
    stop.click(on_stop, None, None, api_visibility="private", concurrency_limit=None)
    # A task switch ends a run of the previous task: its result would land under the new one.
    form.task.change(
        on_task,
        [form.task, form.text, form.model],
        _task_outputs(form, toggles, first, second),
        api_visibility="private",
        cancels=[run_event],
    )
    example.click(
        fill_example, [form.task], [form.text, form.context, form.labels, form.sentences], api_visibility="private"
    )
    form.compare.change(on_compare, [form.compare], [second_column], api_visibility="private")
    return on_task


def _task_outputs(form: Form, toggles: Toggles, first: ResultPanel, second: ResultPanel) -> list:
    outputs = [
        form.model,
        form.compare,
        form.explanation,
        form.context,
        form.labels,
        form.sentences,
        toggles.languages,
        toggles.settings,
        form.text,
        *[getattr(form, name) for name in ALL_SETTINGS],
    ]
    for panel in (first, second):
        outputs += [panel.title, panel.label, panel.highlight, panel.text, panel.tokens, panel.table, panel.raw]
    return outputs


_EXAMPLE_TEXTS = {spec.example.get("text") for spec in TASK_SPECS.values()}

# Settings a caller of the public API may never set: they decide what code runs and whose files are read.
_FORBIDDEN_SETTINGS = {"trust_remote_code", "allow_pickle", "owner", "with_scores"}


def _settings(params: str | None) -> dict:
    """The JSON `params` of an API call, as a dict without the forbidden keys."""
    if isinstance(params, str):
        check_text(params, "params", 100_000)  # a JSON object of settings is a few lines
    try:
        settings = json.loads(params) if params else {}
    except ValueError as err:
        raise gr.Error(f"params is not valid JSON: {err}.") from err
    if not isinstance(settings, dict):
        raise gr.Error('params must be a JSON object, like {"top_k": 3}.')
    refused = sorted(_FORBIDDEN_SETTINGS & set(settings))
    if refused:
        raise gr.Error(f"These settings cannot be set through the API: {', '.join(refused)}.")
    return settings


def api(run_fn: Callable = pl.run) -> None:
    """API-only endpoints: the `services.pipelines.run` contract, and streamed generation."""

    @friendly
    def run(
        task: str, model: str, inputs: str, params: str | None, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> Any:
        """Run TASK with MODEL. `inputs`: text, or JSON ({"question","context"} for QA); `params`: a JSON object."""
        parsed = pl.parse_inputs(inputs) if isinstance(inputs, str) else inputs
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            return run_fn(task, model, parsed, owner=owner, **_settings(params))

    @friendly
    def generate(
        model: str, prompt: str, params: str | None, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> Iterator[str]:
        """Stream generated text (the whole text so far at each step)."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            for event in pl.stream(model, prompt, owner=owner, with_scores=False, **_settings(params)):
                yield event["text"]

    gr.api(run, api_name="run", concurrency_id="inference", concurrency_limit=2)
    gr.api(generate, api_name="generate", concurrency_id="inference", concurrency_limit=2)
