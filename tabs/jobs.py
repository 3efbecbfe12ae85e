"""Jobs tab: the caller's background jobs, live progress and logs, and a Cancel button.

A `gr.Timer` refreshes the view every two seconds while the page is open; since jobs belong to the owner
(cookie or account), a reloaded page finds them again.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from services.hub.check import check_online
from services.hub.push import has_env_token
from services.jobs.cleanup import clear_finished
from services.jobs.manager import JobManager, public_view
from services.jobs.store import JobRecord
from tabs.session import friendly, owner_of

_STATUS_ICON = {
    "queued": "⏳ queued",
    "running": "▶️ running",
    "succeeded": "✅ succeeded",
    "failed": "❌ failed",
    "cancelled": "⏹️ cancelled",
    "interrupted": "⚠️ interrupted",
}
_COLUMNS = ["Job", "What", "Status", "Progress", "Started", "Duration"]
# Shares of the table's width: the short columns fit their longest value on one line ("⚠️ interrupted",
# "12 min 05 s"), and the title column takes the rest and wraps.
_WIDTHS = ["13%", "35%", "15%", "11%", "13%", "13%"]


@dataclass
class JobsTab:
    table: gr.Dataframe
    selected: gr.State
    detail: gr.HTML
    panel: gr.Column  # cancel, log and result: shown once a job is selected
    logs: gr.Code
    result: gr.JSON
    cancel: gr.Button
    retry: gr.Button
    refresh: gr.Button
    clear: gr.Button  # "Clear finished": the visitor's own succeeded, failed, cancelled or interrupted jobs
    timer: gr.Timer
    view: Callable  # (selected, request, profile) -> updates; app.py runs it on page load

    @property
    def outputs(self) -> list:
        return [self.table, self.selected, self.detail, self.panel, self.logs, self.result, self.cancel, self.retry]


def _when(ts: float | None, seconds: bool = True) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%d %b %H:%M" + (":%S" if seconds else "")) if ts else "—"


def _duration(record: JobRecord) -> str:
    if not record.started_at:
        return "—"
    end = record.finished_at or dt.datetime.now().timestamp()
    seconds = int(end - record.started_at)
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def rows(records: list[JobRecord]) -> list[list[str]]:
    return [
        [
            r.id,
            public_view(r)["title"],
            _STATUS_ICON.get(r.status, r.status),
            f"{round(r.progress * 100)} %",
            _when(r.created_at, seconds=False),
            _duration(r),
        ]
        for r in records
    ]


def public(record: JobRecord) -> dict:
    """A job as API clients and the page see it (`services.jobs.manager.public_view`: no paths, commands or owner
    ids)."""
    return public_view(record)


def retryable(record: JobRecord | None) -> bool:
    """A finished command job that did not succeed can be started again."""
    return bool(record and record.done and record.status != "succeeded" and record.command)


def start_again(manager: JobManager, job_id: str, owner: str, oauth: gr.OAuthToken | None) -> str:
    """Retry one of the owner's jobs; a push gets the signed-in user's token again (else HF_TOKEN)."""
    record = manager.get(job_id, owner)
    env = {}
    if record.kind == "push":
        check_online()  # offline, the new push could only fail
        # The token was never stored: a typed one is gone, so only OAuth or HF_TOKEN can push again.
        if oauth is not None:
            env["PLAYGROUND_PUSH_TOKEN"] = oauth.token
        elif not has_env_token():
            raise gr.Error("This push used a token typed for it only, which is not kept: push again from its tab.")
    if record.kind == "train":  # continues from the last checkpoint it saved, when there is one
        from services.training.jobs import retry

        return retry(manager, record, owner, env)
    return manager.retry(record.id, owner, env)


def detail_html(record: JobRecord | None) -> str:
    if record is None:
        return (
            "<div class='pg-empty'>No jobs yet. Work you start in any tab (preparing a model, training, indexing) "
            "appears here with its progress and log.</div>"
        )
    pct = round(record.progress * 100)
    shown = public_view(record)
    error = f"<div class='pg-error'>{html.escape(shown['error'])}</div>" if record.error else ""
    return (
        f"<div class='pg-job'><div class='pg-job-head'><b>{html.escape(shown['title'])}</b>"
        f"<span class='pg-status pg-{record.status}'>{_STATUS_ICON.get(record.status, record.status)}</span></div>"
        f"<div class='pg-bar'><div style='width:{pct}%'></div></div>"
        f"<div class='pg-job-msg'>{pct} % · {html.escape(shown['message'] or '')}</div>{error}"
        f"<div class='pg-job-meta'>Job {record.id} · {record.kind} · started {_when(record.started_at)}"
        f" · {_duration(record)}</div></div>"
    )


def build(manager: JobManager) -> JobsTab:
    gr.Markdown(
        "Long work (training, preparing models, indexing documents) runs here in the background. "
        "Leave the page or reload it: your jobs keep running and are listed again when you come back."
    )
    with gr.Row():
        refresh = gr.Button("Refresh", size="sm", scale=0)
        clear = gr.Button("Clear finished", size="sm", scale=0, min_width=140)
    table = gr.Dataframe(
        headers=_COLUMNS,
        value=[],
        interactive=False,
        label="Your jobs (click one for details)",
        max_height=280,
        wrap=True,
        column_widths=_WIDTHS,
        elem_id="jobs-table",
    )
    selected = gr.State(None)
    detail = gr.HTML(detail_html(None), elem_id="job-detail")
    with gr.Column(visible=False) as panel:
        with gr.Row():
            cancel = gr.Button("Cancel job", variant="stop", size="sm", interactive=False, scale=0)
            retry = gr.Button("Start again", size="sm", visible=False, scale=0)
        with gr.Row():
            logs = gr.Code(
                label="Log (last 200 lines)",
                language=None,
                lines=10,
                max_lines=18,
                interactive=False,
                elem_id="job-log",
            )
            result = gr.JSON(label="Result, metrics and files")
    timer = gr.Timer(2.0, active=False)  # ticks only while the Jobs tab is open (see `follow`)
    tab = JobsTab(
        table, selected, detail, panel, logs, result, cancel, retry, refresh, clear, timer, view=lambda *a: {}
    )
    tab.view = _wire(tab, manager)
    return tab


def _wire(tab: JobsTab, manager: JobManager) -> Callable:
    outputs = tab.outputs

    @friendly
    def view(selected: str | None, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        records = manager.list(owner)
        ids = [r.id for r in records]
        if selected not in ids:
            selected = ids[0] if ids else None  # re-attach to the newest job after a reload
        record = next((r for r in records if r.id == selected), None)
        log_text = "\n".join(manager.logs(selected, owner)) if record else ""
        extra = {}
        if record:
            shown = public_view(record)
            parts = {"result": shown["result"], "metrics": shown["metrics"], "files": shown["artifacts"]}
            extra = {k: v for k, v in parts.items() if v}
        return {
            tab.table: rows(records),
            tab.selected: selected,
            tab.detail: detail_html(record),
            tab.panel: gr.update(visible=record is not None),
            tab.logs: log_text,
            tab.result: extra,
            tab.cancel: gr.update(interactive=bool(record and not record.done)),
            tab.retry: gr.update(visible=retryable(record)),
        }

    def pick(evt: gr.SelectData, request: gr.Request, profile: gr.OAuthProfile | None):
        job_id = evt.row_value[0] if evt.row_value else None
        return view(job_id, request, profile)

    @friendly
    def cancel(selected: str | None, request: gr.Request, profile: gr.OAuthProfile | None):
        if selected:
            manager.cancel(selected, owner_of(request, profile))
            gr.Info("Cancel requested: the job saves what it has and stops.")
        return view(selected, request, profile)

    @friendly
    def retry(selected: str | None, request: gr.Request, profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None):
        new_id = start_again(manager, selected or "", owner_of(request, profile), oauth)
        gr.Info("Started again as a new job.")
        return view(new_id, request, profile)

    @friendly
    def clear(selected: str | None, request: gr.Request, profile: gr.OAuthProfile | None):
        cleared = clear_finished(manager, owner_of(request, profile))["cleared"]
        gr.Info(
            f"Cleared {cleared} finished job{'s' if cleared != 1 else ''}."
            if cleared
            else "There are no finished jobs to clear."
        )
        return view(selected, request, profile)

    tab.refresh.click(view, [tab.selected], outputs, api_visibility="private")
    tab.clear.click(clear, [tab.selected], outputs, api_visibility="private")
    tab.timer.tick(view, [tab.selected], outputs, api_visibility="private", show_progress="hidden")
    tab.table.select(pick, None, outputs, api_visibility="private")
    tab.cancel.click(cancel, [tab.selected], outputs, api_visibility="private")
    tab.retry.click(retry, [tab.selected], outputs, api_visibility="private")
    _api(manager)
    return view


def follow(tabs: gr.Tabs, tab: JobsTab, label: str = "Jobs") -> None:
    """Refresh every two seconds only while the Jobs tab is the one on screen."""

    def on_select(selected: str | None, evt: gr.SelectData, request: gr.Request, profile: gr.OAuthProfile | None):
        visible = evt.value == label
        updates = tab.view(selected, request, profile) if visible else {}
        return {**updates, tab.timer: gr.Timer(active=visible)}

    tabs.select(on_select, [tab.selected], [tab.timer, *tab.outputs], api_visibility="private", show_progress="hidden")


def _api(manager: JobManager) -> None:
    """API-only endpoints (gradio_client), JSON in and out."""

    @friendly
    def jobs(request: gr.Request, profile: gr.OAuthProfile | None) -> list[dict]:
        """List your jobs, newest first."""
        return [public(r) for r in manager.list(owner_of(request, profile))]

    @friendly
    def job(job_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """One of your jobs, with its last 200 log lines."""
        owner = owner_of(request, profile)
        return {**public(manager.get(job_id, owner)), "logs": manager.logs(job_id, owner)}

    @friendly
    def cancel_job(job_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """Ask one of your jobs to stop (it saves its work first)."""
        return public(manager.cancel(job_id, owner_of(request, profile)))

    @friendly
    def retry_job(
        job_id: str, request: gr.Request, profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None
    ) -> dict:
        """Start one of your failed, cancelled or interrupted jobs again as a new job; returns the new job."""
        owner = owner_of(request, profile)
        return public(manager.get(start_again(manager, job_id, owner, oauth), owner))

    @friendly
    def clear_jobs(request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """Delete your finished jobs (succeeded, failed, cancelled, interrupted) and their files; jobs still queued
        or running stay. Returns {"cleared": N, "ids": [...]}."""
        return clear_finished(manager, owner_of(request, profile))

    gr.api(jobs, api_name="jobs")
    gr.api(clear_jobs, api_name="clear_jobs")
    gr.api(retry_job, api_name="retry_job")
    gr.api(job, api_name="job")
    gr.api(cancel_job, api_name="cancel_job")
