"""The Pipelines tab's "Run on a file" panel: upload CSV/JSONL/TXT, pick the column, run the current task and
model over every row as a background job, follow its progress, preview and download the results."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from services.jobs.manager import JobManager
from services.pipelines import batch
from tabs.jobs import detail_html
from tabs.pipelines.form import Form, collect
from tabs.session import friendly, owner_of


@dataclass
class BatchPanel:
    file: gr.File
    column: gr.Dropdown
    context_column: gr.Dropdown
    preview: gr.Dataframe
    start: gr.Button
    job: gr.State
    status: gr.HTML
    results: gr.Dataframe
    download: gr.File
    timer: gr.Timer


def build(form: Form, manager: JobManager) -> BatchPanel:
    with gr.Accordion("Run on a file (batch)", open=False):
        gr.Markdown(
            "Upload a CSV, TSV, JSONL or TXT file (one text per line), choose the column that holds the text, and "
            "run the task and model chosen above on every row. It runs in the background (see the Jobs tab too); "
            "the results come back as a CSV with your columns plus the model's."
        )
        with gr.Row():
            file = gr.File(label="File", file_types=list(batch.SUPPORTED), type="filepath", scale=2)
            with gr.Column(scale=1):
                column = gr.Dropdown([], label="Text column (the question, for QA)")
                context_column = gr.Dropdown([], label="Context column (QA only)", visible=False)
                start = gr.Button("Run on every row", variant="primary")
        preview = gr.Dataframe(label="First rows of your file", visible=False, interactive=False, max_height=200)
        status = gr.HTML()
        results = gr.Dataframe(label="First results", visible=False, interactive=False, max_height=300, wrap=True)
        download = gr.File(label="All results (CSV)", visible=False)
    panel = BatchPanel(
        file,
        column,
        context_column,
        preview,
        start,
        gr.State(None),
        status,
        results,
        download,
        gr.Timer(1.0, active=False),
    )
    _wire(panel, form, manager)
    return panel


def _wire(panel: BatchPanel, form: Form, manager: JobManager) -> None:
    @friendly
    def on_upload(path: str | None, task: str) -> dict:
        if not path:
            return {panel.column: gr.update(choices=[], value=None), panel.preview: gr.update(visible=False)}
        columns, rows = batch.read_rows(path)
        guess = next((c for c in columns if c.lower() in ("text", "sentence", "review", "question")), columns[0])
        context = next((c for c in columns if c.lower() in ("context", "passage")), None)
        head = [[str(r.get(c, ""))[:200] for c in columns] for r in rows[:5]]
        return {
            panel.column: gr.update(choices=columns, value=guess),
            panel.context_column: gr.update(choices=columns, value=context, visible=task == "question-answering"),
            panel.preview: gr.update(
                value=head, headers=columns, visible=True, label=f"First rows of your file ({len(rows):,} rows)"
            ),
        }

    @friendly
    def on_start(data: dict, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        values = {name: data[getattr(form, name)] for name in Form.names()}
        path, column = data[panel.file], data[panel.column]
        if not path:
            raise gr.Error("Please upload a file first.")
        if not column:
            raise gr.Error("Please choose the column that holds the text.")
        task = values["task"]
        _, params = collect(task, values)  # the settings of the form above; its text box is not used
        job_id = batch.start_batch(
            manager,
            owner_of(request, profile),
            task,
            values["model"],
            path,
            column,
            params,
            data[panel.context_column],
        )
        return {
            panel.job: job_id,
            panel.timer: gr.Timer(active=True),
            panel.status: "<div class='pg-empty'>Starting…</div>",
            panel.results: gr.update(visible=False),
            panel.download: gr.update(visible=False),
        }

    @friendly
    def poll(job_id: str | None, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        if not job_id:
            return {panel.timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        update = {panel.status: detail_html(record), panel.timer: gr.Timer(active=not record.done)}
        if record.status == "succeeded" and record.artifacts:
            source = Path(record.artifacts[0]["path"])
            # Hand Gradio a private copy (the jobs folder itself is never served), one per job: polls reuse it.
            copy = Path(tempfile.gettempdir()) / "playground-batch" / job_id / source.name
            if not copy.exists():
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, copy)
            columns, rows = batch.read_rows(copy)
            head = [[str(r.get(c, ""))[:300] for c in columns] for r in rows[:20]]
            update[panel.results] = gr.update(value=head, headers=columns, visible=True)
            update[panel.download] = gr.update(value=str(copy), visible=True)
        return update

    def on_task(task: str) -> dict:
        return {panel.context_column: gr.update(visible=task == "question-answering")}

    form.task.change(on_task, [form.task], [panel.context_column], api_visibility="private")
    panel.file.change(
        on_upload,
        [panel.file, form.task],
        [panel.column, panel.context_column, panel.preview],
        api_visibility="private",
    )
    inputs = {*form.values(), panel.file, panel.column, panel.context_column}
    outputs = [panel.job, panel.timer, panel.status, panel.results, panel.download]
    panel.start.click(on_start, inputs, outputs, api_visibility="private")
    panel.timer.tick(
        poll,
        [panel.job],
        [panel.status, panel.timer, panel.results, panel.download],
        api_visibility="private",
        show_progress="hidden",
    )
