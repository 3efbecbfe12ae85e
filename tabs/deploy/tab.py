"""Deploy tab: every model here as an OpenAI-compatible endpoint, with ready snippets, a request tried in the page,
and the model exported as a standalone server (a zip, or a Docker Space through the push panel).

The endpoints live on this same server (`services.serve.api`); the visitor's own API key (a playground key that
names them, signed by the server) lets any client act as them: their `trained:` models, nobody else's. "Send" makes
the real HTTP request to this server with that key, so what the page shows is exactly what a client gets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from services.jobs.manager import JobManager
from services.models.catalog import catalog, resolve
from services.serve import snippets
from services.serve.auth import api_key
from tabs import hub_push
from tabs.deploy import export_panel, fast_panel, model_folder
from tabs.session import friendly, owner_of

_INTRO = (
    "Every model of the playground is also an **OpenAI-compatible API** on this server: chat models at "
    "`/v1/chat/completions`, sentence-embedding models at `/v1/embeddings` (and `/rerank`), classifiers at "
    "`/predict`. Any client that speaks OpenAI's format (the `openai` package, LangChain, curl) works as it is. "
    "All endpoints are documented at [`/docs`](/docs)."
)


@dataclass
class DeployTab:
    model: gr.Dropdown
    on_load: Callable
    load_outputs: list


def _base_url(request: gr.Request) -> str:
    """The server's address as the visitor's browser sees it (a Space's proxy says so in its headers)."""
    headers = request.headers
    host = headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1:7860"
    scheme = headers.get("x-forwarded-proto") or ("https" if host.endswith(".hf.space") else "http")
    return f"{scheme.split(',')[0].strip()}://{host.split(',')[0].strip()}"


def _served(owner: str) -> list[str]:
    """The models the REST API can serve for this visitor, chat models first."""
    order = {"chat": 0, "embeddings": 1, "classification": 2}
    entries = []
    for entry in catalog(owner=owner):
        try:
            entries.append((order[snippets.kind_of(entry.tasks)], entry.id))
        except Exception:  # a model the API does not serve (fill-mask, translation...)
            continue
    return [model for _, model in sorted(entries, key=lambda e: e[0])]


def describe(model: str, owner: str, base_url: str) -> dict:
    """What the tab shows for one model: its kind, endpoint, snippets and the visitor's own key."""
    model = (model or "").strip()
    kind = snippets.kind_of(resolve(model, owner).tasks)
    return {"model": model, "kind": kind, "endpoint": base_url.rstrip("/") + snippets.KINDS[kind],
            "key": api_key(owner), "snippets": snippets.snippets(base_url, model, kind)}  # fmt: skip


def build(manager: JobManager) -> DeployTab:
    gr.Markdown(_INTRO)
    with gr.Row(equal_height=True):
        model = gr.Dropdown([], label="Model", allow_custom_value=True, scale=2, elem_id="deploy-model")
        key = gr.Textbox(label="Your API key (send it as 'Authorization: Bearer …'; it is yours only)",
                         type="password", buttons=["copy"], interactive=False, scale=3,
                         elem_id="deploy-key")  # fmt: skip
    endpoint = gr.Markdown(elem_id="deploy-endpoint")
    with gr.Tabs():
        with gr.Tab("curl"):
            curl = gr.Code(language="shell", show_label=False, interactive=False)
        with gr.Tab("Python (openai)"):
            python = gr.Code(language="python", show_label=False, interactive=False)
        with gr.Tab("JavaScript"):
            javascript = gr.Code(language="javascript", show_label=False, interactive=False)
    with gr.Accordion("Try a request", open=True):
        with gr.Row(equal_height=True):
            text = gr.Textbox(value="Hello! What can you do?", label="Text to send", scale=4, max_lines=4)
            send = gr.Button("Send", variant="primary", scale=1)
        answer = gr.Code(language="json", label="The server's answer", interactive=False, elem_id="deploy-answer",
                         wrap_lines=True)  # fmt: skip
    _bundle_panel(manager, model)
    export_panel.build(manager, model)
    fast_panel.build(manager)

    @friendly
    def show(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None):
        if not (model_id or "").strip():
            return {endpoint: "Pick a model."}
        info = describe(model_id, owner_of(request, profile), _base_url(request))
        parts = info["snippets"]
        said = (
            f"**{info['kind'].capitalize()}** endpoint: `POST {info['endpoint']}`. Copy your key (the button "
            "on its right) into the `PLAYGROUND_API_KEY` environment variable, then run a snippet."
        )
        return {endpoint: said, key: info["key"],
                curl: parts["curl"], python: parts["python"], javascript: parts["javascript"]}  # fmt: skip

    @friendly
    def on_load(request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        choices = _served(owner)
        first = choices[0] if choices else None
        return {model: gr.Dropdown(choices=choices, value=first), key: api_key(owner),
                **(show(first, request, profile) if first else {})}  # fmt: skip

    @friendly
    def try_it(model_id: str, message: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        import httpx

        owner = owner_of(request, profile)
        info = describe(model_id, owner, _base_url(request))
        host, port = request.request.scope.get("server") or ("127.0.0.1", 7860)
        path = snippets.KINDS[info["kind"]]
        body = snippets.request_body(info["kind"], info["model"], (message or "").strip() or "Hello!")
        response = httpx.post(f"http://{host}:{port}{path}", json=body, timeout=180,
                              headers={"authorization": f"Bearer {info['key']}"})  # fmt: skip
        shown = response.json()
        if info["kind"] == "embeddings" and response.status_code == 200:
            for row in shown.get("data", []):
                vector = row["embedding"]
                row["embedding"] = [*vector[:8], f"... {len(vector) - 8} more numbers"]
        return f"// HTTP {response.status_code}\n" + json.dumps(shown, indent=2, ensure_ascii=False)

    outputs = [endpoint, key, curl, python, javascript]
    model.change(show, [model], outputs, api_visibility="private").then(
        lambda: "", None, answer, api_visibility="private"
    )  # an answer of the model picked before would mislead
    send.click(try_it, [model, text], answer, api_visibility="private")

    @friendly
    def deploy_info(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """For one model: its kind, endpoint URL, your API key and ready curl / Python / JavaScript snippets."""
        return describe(model_id, owner_of(request, profile), _base_url(request))

    gr.api(deploy_info, api_name="deploy_info")
    return DeployTab(model, on_load, [model, *outputs])


def _bundle_folder(model_id: str, owner: str) -> Path:
    """The bundle for one model, (re)built in the visitor's own folder (named by a keyed hash of their owner id)."""
    from services.serve.bundle import build as build_bundle

    target = model_folder("bundles", owner, model_id)
    return Path(build_bundle((model_id or "").strip(), target, owner=owner)["folder"])


def _bundle_panel(manager: JobManager, model: gr.Dropdown) -> gr.File:
    with gr.Accordion("Export as a server", open=False):
        gr.Markdown(
            "A folder that serves this one model with the same endpoints, without the playground: `server.py` "
            "(FastAPI + uvicorn), pinned `requirements.txt`, a `Dockerfile` and a README with examples. Run it "
            "with `uvicorn server:app`, or push it as a Docker Space below."
        )
        make = gr.Button("Build the server bundle (zip)", elem_id="deploy-bundle")
        zipped = gr.File(label="The server bundle", visible=False)
        # Pushed as a Docker Space (the bundle's README says `sdk: docker`), rebuilt from the model picked.
        hub_push.build(manager, lambda value, owner: str(_bundle_folder(value, owner)), model, repo_type="space")

    @friendly
    def deploy_bundle(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """A zip of a standalone server for one model (server.py, requirements.txt, Dockerfile, README, model)."""
        from services.serve.bundle import zip_bundle

        return str(zip_bundle(_bundle_folder(model_id, owner_of(request, profile))))

    make.click(deploy_bundle, [model], zipped, api_name="deploy_bundle").success(
        lambda: gr.update(visible=True), None, zipped, api_visibility="private"
    )
    return zipped
