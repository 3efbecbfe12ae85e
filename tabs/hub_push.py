"""A "Push to the Hub" panel any tab can add under something it made (a tokenizer now; models and adapters later).

The push runs as a child-process job (``python -m services push PATH --repo-id ...``) with the token handed over
in the child's environment only: it is never stored in the job record, logged or shown. On a Space the signed-in
user's OAuth token is used; elsewhere a token typed here (for this push only) or the HF_TOKEN variable.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from services.core.limits import check_text
from services.hub.check import check_online, offline_reason
from services.hub.push import PushError, check_folder, is_valid_repo_id
from services.jobs.manager import JobManager
from tabs.header import oauth_enabled
from tabs.jobs import detail_html
from tabs.session import friendly, owner_of


@dataclass
class PushPanel:
    repo_id: gr.Textbox
    token: gr.Textbox
    status: gr.HTML


def build(
    manager: JobManager,
    folder_of: Callable[[str, str], str],
    source: gr.components.Component,
    prepare: Callable[[str, str], object] | None = None,
    repo_type: str = "model",
) -> PushPanel:
    """`folder_of(value, owner)` turns the value of `source` (e.g. the picked tokenizer id) into the folder to push;
    `prepare(folder, repo_id)` writes what the repo needs besides (its model card) just before the push."""
    with gr.Accordion("Push to the Hugging Face Hub", open=False):
        with gr.Row(equal_height=True):
            repo_id = gr.Textbox(label="Repo", placeholder="your-name/my-tokenizer", scale=3, max_lines=1)
            private = gr.Checkbox(label="Private", value=True, scale=1)
        with gr.Row(equal_height=True):
            token = gr.Textbox(
                label="Token with write access (used for this push only, never stored)",
                type="password",
                visible=not oauth_enabled(),
                scale=3,
                max_lines=1,
            )
            message = gr.Textbox(label="Commit message", value="Upload from HF Playground", scale=3, max_lines=1)
            push = gr.Button("Push", variant="primary", scale=1)
        offline = gr.HTML(visible=False, elem_classes="pg-push-offline")
        status = gr.HTML()
        job = gr.State(None)
        timer = gr.Timer(1.0, active=False)

    @friendly
    def ui_push(
        value: str,
        repo: str,
        is_private: bool,
        typed: str,
        note: str,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
        oauth: gr.OAuthToken | None,
    ):
        owner = owner_of(request, profile)
        check_online()
        folder = folder_of(value, owner)
        check_folder(folder)  # a clear error now beats a failed job
        if not is_valid_repo_id((repo or "").strip()) or "/" not in (repo or ""):
            raise PushError("Type the repo as NAMESPACE/NAME, for example your-name/my-tokenizer.")
        if prepare is not None:
            prepare(folder, repo.strip())
        secret = (oauth.token if oauth else "") or (typed or "").strip()
        if not secret and oauth_enabled():
            raise PushError("Sign in with Hugging Face (top right) to push to your account.")
        # --name=value: a message that starts with '-' stays the message, never another option.
        args = ["push", "--owner", owner, f"--repo-id={(repo or '').strip()}", f"--repo-type={repo_type}",
                f"--message={check_text(note or '', 'The commit message', 500)}"]  # fmt: skip
        if is_private:
            args.append("--private")
        job_id = manager.submit_command(
            "push",
            owner,
            [*args, "--", folder],
            title=f"Push to {repo}",
            config={"repo_id": repo, "private": is_private},
            env={"PLAYGROUND_PUSH_TOKEN": secret} if secret else None,
        )
        return {job: job_id, timer: gr.Timer(active=True), status: "<div class='pg-empty'>Starting…</div>"}

    push.click(ui_push, [source, repo_id, private, token, message], [job, timer, status], api_visibility="private")
    _disable_offline(push, offline)

    follow_job(
        manager,
        job,
        timer,
        status,
        lambda r: f"✓ Pushed: {_link(r)} (commit <code>{(r.get('commit') or '')[:10]}</code>)",
    )
    return PushPanel(repo_id, token, status)


def _secret(typed: str, oauth: gr.OAuthToken | None) -> str:
    secret = (oauth.token if oauth else "") or (typed or "").strip()
    if not secret and oauth_enabled():
        raise PushError("Sign in with Hugging Face (top right) to create a Space in your account.")
    return secret


def build_space(manager: JobManager, push: PushPanel, model_id: gr.State) -> gr.HTML:
    """ "Create a demo Space" for a model pushed with `push`: a Gradio app that serves it, as a new Space repo."""
    from services.hub.spaces import space_name_for, task_of

    with gr.Accordion("Create a demo Space", open=False):
        gr.Markdown(
            "Push the model first (above), then make a small Gradio app that serves it from the Hub. "
            "The Space must be new: an existing name is refused, never overwritten. A private model needs the Space "
            "to have a token, so keep the model public for a public demo."
        )
        with gr.Row(equal_height=True):
            space_id = gr.Textbox(label="Space", placeholder="your-name/my-model-demo", scale=3, max_lines=1)
            private = gr.Checkbox(label="Private", value=False, scale=1)
            create = gr.Button("Create demo Space", scale=1)
        offline = gr.HTML(visible=False, elem_classes="pg-push-offline")
        status = gr.HTML()
        job = gr.State(None)
        timer = gr.Timer(1.0, active=False)

    def suggest(repo: str, current: str):
        if current or "/" not in (repo or ""):
            return gr.update()
        namespace, name = repo.strip().split("/", 1)
        return f"{namespace}/{space_name_for(name)}"

    push.repo_id.change(suggest, [push.repo_id, space_id], space_id, api_visibility="private")

    @friendly
    def ui_create(value, repo, space, is_private, typed, request: gr.Request, profile: gr.OAuthProfile | None,
                  oauth: gr.OAuthToken | None):  # fmt: skip
        owner = owner_of(request, profile)
        check_online()
        if not value:
            raise PushError("Train a model first, then push it: the demo serves the pushed model.")
        repo, space = (repo or "").strip(), (space or "").strip()
        if "/" not in repo or not is_valid_repo_id(repo):
            raise PushError("Type the model's repo above (NAMESPACE/NAME) and push it first.")
        if "/" not in space or not is_valid_repo_id(space):
            raise PushError("Type the Space as NAMESPACE/NAME, for example your-name/my-model-demo.")
        secret = _secret(typed, oauth)
        from services.models.catalog import resolve

        task = task_of(resolve(value, owner).location)
        args = ["demo-space", "--owner", owner, repo, "--task", task, "--space-id", space]
        if is_private:
            args.append("--private")
        job_id = manager.submit_command(
            "push", owner, args, title=f"Demo Space {space}", config={"space_id": space, "model": repo},
            env={"PLAYGROUND_PUSH_TOKEN": secret} if secret else None,
        )  # fmt: skip
        return {job: job_id, timer: gr.Timer(active=True), status: "<div class='pg-empty'>Starting…</div>"}

    create.click(ui_create, [model_id, push.repo_id, space_id, private, push.token], [job, timer, status],
                 api_visibility="private")  # fmt: skip
    _disable_offline(create, offline)

    follow_job(manager, job, timer, status, lambda r: f"✓ Space created: {_link(r)}")
    return status


def _disable_offline(button: gr.Button, note: gr.HTML) -> None:
    """On page load (the Hub probe is never run while the app is built): an offline playground cannot push, so the
    button is off and the note says why, instead of a job that would only fail."""

    def on_load():
        reason = offline_reason()
        return {
            button: gr.update(interactive=reason is None),
            note: gr.update(value=f"<div class='pg-warn'>{html.escape(reason)}</div>" if reason else "",
                            visible=reason is not None),
        }  # fmt: skip

    gr.on(None, on_load, None, [button, note], api_visibility="private", show_progress="hidden")


def _link(result: dict) -> str:
    url = html.escape(str(result.get("url", "")))
    return f"<a href='{url}' target='_blank' rel='noopener'>{url}</a>"


def follow_job(
    manager: JobManager, job: gr.State, timer: gr.Timer, status: gr.HTML, done: Callable[[dict], str]
) -> None:
    """Show a job's progress in `status` until it ends; `done(result)` says what it made (as HTML)."""

    @friendly
    def poll(job_id: str | None, request: gr.Request, profile: gr.OAuthProfile | None):
        if not job_id:
            return {timer: gr.Timer(active=False)}
        record = manager.get(job_id, owner_of(request, profile))
        text = detail_html(record)
        if record.status == "succeeded" and record.result:
            text = f"<div class='pg-ok'>{done(record.result)}</div>"
        return {status: text, timer: gr.Timer(active=not record.done)}

    timer.tick(poll, [job], [status, timer], api_visibility="private", show_progress="hidden")
