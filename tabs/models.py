"""Models tab: what can run here now, and a button that gets a model ready in the background.

"Prepare" runs ``python -m services prepare MODEL`` as a child-process job: converting the packaged GGUF
model or downloading a Hub model happens outside the app process, with progress in the Jobs tab.
"Download model (zip)" gives a visitor their own trained model (also the `/download_model` API).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from services.jobs.manager import JobManager
from services.models import catalog as models
from services.pipelines.download import trained_zip
from tabs.session import friendly, owner_of

_ALL = "All tasks"
_SOURCE = {"packaged": "📦 packaged", "hub": "🤗 Hub", "trained": "🛠️ trained here", "local": "📁 folder"}


@dataclass
class ModelsTab:
    task: gr.Dropdown
    show_all: gr.Checkbox
    table: gr.Dataframe
    model_id: gr.Textbox
    prepare: gr.Button
    download: gr.Button
    zipped: gr.File
    status: gr.Markdown
    listing: Callable  # (task, show_all, request, profile) -> rows; app.py runs it on page load


def table_rows(entries: list[models.ModelEntry]) -> list[list[str]]:
    return [
        [
            e.id,
            _SOURCE.get(e.source, e.source),
            ", ".join(e.tasks),
            "yes" if e.available else f"no: {e.reason}",
            e.description,
        ]
        for e in entries
    ]


def build(manager: JobManager) -> ModelsTab:
    gr.Markdown(
        "Every tab can use these models. **Packaged** models ship with the playground and work offline; "
        "**Hub** models are downloaded on first use; models you **train here** appear as `trained:<name>`. "
        "You can also type any Hub id (like `openai-community/gpt2`) wherever a model is asked for."
    )
    with gr.Row():
        task = gr.Dropdown([_ALL, *models.TASKS], value=_ALL, label="Task", scale=2)
        show_all = gr.Checkbox(False, label="Also show models that cannot be used right now", scale=1)
    table = gr.Dataframe(
        headers=["Model", "Source", "Tasks", "Ready to use", "About"],
        value=[],
        interactive=False,
        wrap=True,
        max_height=360,
        elem_id="models-table",
        column_widths=["22%", "11%", "18%", "12%", "37%"],
    )
    with gr.Row(equal_height=True):
        model_id = gr.Textbox(label="Model", placeholder="click a row above, or type a Hub id", scale=3)
        prepare = gr.Button("Prepare in the background", variant="primary", scale=1)
        download = gr.Button("Download model (zip)", scale=1)
    zipped = gr.File(label="Your model, zipped: unzip it and load the folder with transformers", visible=False)
    status = gr.Markdown("")
    tab = ModelsTab(task, show_all, table, model_id, prepare, download, zipped, status, listing=lambda *a: [])
    tab.listing = _wire(tab, manager)
    return tab


def _wire(tab: ModelsTab, manager: JobManager) -> Callable:
    @friendly
    def listing(task: str, show_all: bool, request: gr.Request, profile: gr.OAuthProfile | None):
        entries = models.catalog(
            None if task == _ALL else task,
            owner=owner_of(request, profile),
            available_only=False if show_all else None,
        )
        return table_rows(entries)

    def pick(evt: gr.SelectData) -> str:
        return evt.row_value[0] if evt.row_value else ""

    @friendly
    def prepare(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        job_id = start_prepare(manager, model_id, owner_of(request, profile))
        return f"Started job `{job_id}`: follow it in the **Jobs** tab."

    for trigger in (tab.task.change, tab.show_all.change):
        trigger(listing, [tab.task, tab.show_all], tab.table, api_visibility="private")
    tab.table.select(pick, None, tab.model_id, api_visibility="private")
    tab.prepare.click(prepare, [tab.model_id], tab.status, api_visibility="private")

    @friendly
    def list_models(task: str | None, request: gr.Request, profile: gr.OAuthProfile | None) -> list[dict]:
        """The catalog (packaged, trained-by-you and recommended Hub models), optionally for one task."""
        return [e.to_dict() for e in models.catalog(task or None, owner=owner_of(request, profile))]

    @friendly
    def prepare_model(model: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Start a job that makes a model ready (convert or download, then a test load); returns the job id."""
        return start_prepare(manager, model, owner_of(request, profile))

    @friendly
    def download_model(model: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """A zip of a model you trained here (trained:<name>): one folder to load with from_pretrained."""
        return str(trained_zip(model, owner_of(request, profile)))

    # The API is the click itself (a file output, which gr.api cannot return); the UI then shows the file.
    tab.download.click(download_model, [tab.model_id], tab.zipped, api_name="download_model").success(
        lambda: gr.update(visible=True), None, tab.zipped, api_visibility="private"
    )
    gr.api(list_models, api_name="models")
    gr.api(prepare_model, api_name="prepare_model")
    return listing


def start_prepare(manager: JobManager, model_id: str, owner: str) -> str:
    """Check the id now (a clear error at once beats a failed job), then prepare it as a child-process job."""
    model_id = (model_id or "").strip()
    resolved = models.resolve(model_id, owner)
    # The child resolves again: hand it what was checked here (an absolute path for a folder).
    target = resolved.location if resolved.source == "local" else resolved.id
    return manager.submit_command(
        "prepare",
        owner,
        ["prepare", "--owner", owner, "--", target],
        title=f"Prepare {resolved.id}",
        config={"model": model_id},
        needs_gpu=False,
    )
