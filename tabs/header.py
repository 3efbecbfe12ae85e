"""The header: what the playground is, and where it runs (device, online/offline, who is signed in)."""

from __future__ import annotations

import html
import os

import gradio as gr

from services.core.system import describe


def oauth_enabled() -> bool:
    """A Space with `hf_oauth: true` in its README gets OAUTH_CLIENT_ID; only then is sign-in offered."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def build() -> gr.HTML:
    with gr.Row(elem_id="pg-header", equal_height=True):
        with gr.Column(scale=4):
            gr.HTML(
                "<div class='pg-title'><span class='pg-logo'>🤗</span><div><h1>HF Playground</h1>"
                "<p>Try pipelines, look inside tokenizers, fine-tune and chat with your documents: "
                "the Hugging Face stack in your browser.</p></div></div>"
            )
        with gr.Column(scale=2, min_width=260):
            status = gr.HTML("<div class='pg-env'>Checking the machine…</div>", elem_id="pg-env")
            if oauth_enabled():
                gr.LoginButton(size="sm")
    return status


def environment_html(profile: gr.OAuthProfile | None) -> str:
    info = describe()
    device = "GPU" if info["device"] == "cuda" else info["device"].upper()
    mode = "packaged models only" if info["offline"] else "any Hub model"  # the chip before it says which
    user = f"signed in as <b>{html.escape(profile.username)}</b>" if profile else "not signed in"
    badge = "pg-offline" if info["offline"] else "pg-online"
    return (
        f"<div class='pg-env'><div><span class='pg-chip'>{device}</span> {html.escape(info['device_name'])}</div>"
        f"<div><span class='pg-chip {badge}'>{'offline' if info['offline'] else 'online'}</span> {mode}</div>"
        + (f"<div>{user}</div>" if oauth_enabled() else "")
        + "</div>"
    )
