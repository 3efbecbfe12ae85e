"""HF Playground: the Gradio app. `build_app()` only assembles the tabs; `python app.py` serves it.

Nothing heavy happens at import or build time: no model, no network, no torch import. The header fills in the
device and online mode on page load.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from services.core.config import get_settings
from services.jobs.manager import JobManager
from services.serve.api import RestApi
from tabs import header
from tabs import jobs as jobs_tab
from tabs import models as models_tab
from tabs.deploy import tab as deploy_tab
from tabs.finetune import tab as finetune_tab
from tabs.guard import RequestGuard
from tabs.inside import tab as inside_tab
from tabs.lora import tab as lora_tab
from tabs.pipelines import tab as pipelines_tab
from tabs.rag import tab as rag_tab
from tabs.session import OwnerCookieMiddleware
from tabs.tokenizers import tab as tokenizers_tab

ASSETS = Path(__file__).resolve().parent / "assets"
logger = logging.getLogger(__name__)


def build_app(manager: JobManager | None = None) -> gr.Blocks:
    """The whole UI. Pass a `JobManager` to share one (tests do); otherwise one is made from the settings."""
    manager = manager or JobManager.from_settings()
    # Gradio's cache (uploads, files handed back) loses what is older than a day, every hour.
    with gr.Blocks(title="HF Playground", delete_cache=(3600, 86400)) as demo:
        env_status = header.build()
        with gr.Tabs() as tabs:
            with gr.Tab("Pipelines", id="pipelines"):
                pipelines = pipelines_tab.build(manager)
            with gr.Tab("Tokenizers", id="tokenizers"):
                tokenizers = tokenizers_tab.build(manager)
            with gr.Tab("Fine-tune", id="finetune"):
                finetune = finetune_tab.build(manager)
            with gr.Tab("LoRA", id="lora"):
                lora = lora_tab.build(manager)
            with gr.Tab("RAG chat", id="rag"):
                rag_chat = rag_tab.build(manager)
            with gr.Tab("Deploy", id="deploy"):
                deploy = deploy_tab.build(manager)
            with gr.Tab("Inside a model", id="inside"):
                inside = inside_tab.build(manager)
            with gr.Tab("Models", id="models"):
                models = models_tab.build(manager)
            with gr.Tab("Jobs", id="jobs"):
                jobs = jobs_tab.build(manager)
        jobs_tab.follow(tabs, jobs)
        _try_in_pipelines(tabs, finetune, pipelines)
        _try_adapter(tabs, lora, pipelines, rag_chat)
        _train_from_scratch(tabs, inside, finetune)
        demo.load(header.environment_html, None, env_status, api_visibility="private")
        task_inputs = [pipelines.form.task, pipelines.form.text, pipelines.form.model]
        demo.load(pipelines.on_task, task_inputs, pipelines.task_outputs, api_visibility="private")
        demo.load(
            tokenizers.on_load, tokenizers.load_inputs, tokenizers.load_outputs, api_visibility="private",
        )  # fmt: skip
        demo.load(finetune.on_load, None, finetune.load_outputs, api_visibility="private")
        demo.load(lora.on_load, None, lora.load_outputs, api_visibility="private")
        demo.load(rag_chat.on_load, None, rag_chat.load_outputs, api_visibility="private")
        demo.load(deploy.on_load, None, deploy.load_outputs, api_visibility="private")
        demo.load(inside.on_load, None, inside.load_outputs, api_visibility="private")
        demo.load(models.listing, [models.task, models.show_all], models.table, api_visibility="private")
        demo.load(jobs.view, [jobs.selected], jobs.outputs, api_visibility="private")
    return demo


def _try_in_pipelines(tabs: gr.Tabs, finetune, pipelines) -> None:
    """ "Try it": open the Pipelines tab on the task of the model just trained, with that model selected."""
    form = pipelines.form
    # Task and model are set in one step, so the task's own change event (which picks the task's models) keeps it.
    finetune.try_it.click(
        lambda task, model_id: {tabs: gr.Tabs(selected="pipelines"), form.task: task, form.model: model_id},
        [finetune.pipeline_task, finetune.model_id],
        [tabs, form.task, form.model],
        api_visibility="private",
    ).then(pipelines.on_task, [form.task, form.text, form.model], pipelines.task_outputs, api_visibility="private")


def _train_from_scratch(tabs: gr.Tabs, inside, finetune) -> None:
    """Inside a model's "Train it from scratch": the Fine-tune form on a causal LM with the model just built (the
    form's own task change then picks the bundled stories and the suggested settings)."""
    inside.build.train.click(
        lambda made: {tabs: gr.Tabs(selected="finetune"), finetune.task: "causal-lm",
                      finetune.model: gr.update(value=(made or {}).get("id")),
                      finetune.name: f"{(made or {}).get('id', 'model').removeprefix('trained:')}-stories"},
        [inside.build.created], [tabs, finetune.task, finetune.model, finetune.name], api_visibility="private",
    )  # fmt: skip


def _try_adapter(tabs: gr.Tabs, lora, pipelines, rag_chat) -> None:
    """The LoRA tab's "Try it": the adapter in Pipelines (text generation) or as RAG chat's answering model."""
    form = pipelines.form
    lora.try_pipelines.click(
        lambda model_id: {tabs: gr.Tabs(selected="pipelines"), form.task: "text-generation", form.model: model_id},
        [lora.share],
        [tabs, form.task, form.model],
        api_visibility="private",
    ).then(pipelines.on_task, [form.task, form.text, form.model], pipelines.task_outputs, api_visibility="private")
    lora.try_rag.click(
        lambda model_id: {tabs: gr.Tabs(selected="rag"), rag_chat.answer_model: gr.update(value=model_id)},
        [lora.share], [tabs, rag_chat.answer_model], api_visibility="private",
    )  # fmt: skip


def launch_kwargs() -> dict:
    """Everything `launch()` needs besides host and port: style, upload limit, the owner cookie."""
    settings = get_settings()
    return {
        "theme": gr.themes.Soft(primary_hue="orange", secondary_hue="amber", neutral_hue="slate"),
        "css_paths": [ASSETS / "style.css"],
        "max_file_size": settings.max_upload_bytes,
        # The guard is outermost: an oversized or over-rate request is answered before anything else reads it.
        "app_kwargs": {
            "middleware": [
                Middleware(RequestGuard),
                Middleware(RestApi),  # /v1/..., /health, /docs: the OpenAI-compatible REST API on the same port
                Middleware(OwnerCookieMiddleware, secure=settings.on_space),
            ]
        },
    }


def main() -> None:
    logging.basicConfig(level=os.environ.get("PLAYGROUND_LOG_LEVEL", "INFO"))
    settings = get_settings()
    # Probe the Hub once at start (at most ~2 s) so the first visitor does not wait for it.
    logger.info("Playground home: %s; offline: %s", settings.home, settings.offline)
    if settings.on_space:  # jobs run library code on visitors' data: they must not read this process's secrets
        from services.core.safety import harden_process

        harden_process()
    manager = JobManager.from_settings()
    manager.sweep_uploads()  # staged uploads no job needs any more (they are never kept longer than a day)
    # Pay the ML imports (~5 s) before serving rather than in the first visitor's first request.
    import transformers.pipelines  # noqa: F401

    # Ready the packaged tokenizers once per storage folder (SmolLM2's from its GGUF, the demo Unigram from the
    # bundled corpus: ~15 s the first time, nothing afterwards), so the Tokenizers tab opens at once.
    from services.tokenizers.analysis import warm_up

    warm_up()
    # The shared demo collection of the RAG tab (the playground's own guide): embedded once (~15 s), then reused.
    from services.rag.answer import ensure_demo

    try:
        ensure_demo()
    except Exception:  # the chat still works on the visitor's own collections
        logger.exception("The RAG demo collection could not be built")

    # The fast CPU copy of SmolLM2: built once per storage folder (~10 s), so its first visitor does not wait.
    from services.models.fast_cpu import prepare

    prepare()
    demo = build_app(manager)
    demo.queue(default_concurrency_limit=8)
    # A Space restart sends SIGTERM: end like Ctrl+C, so running jobs get their grace period to save.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        demo.launch(
            server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
            server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
            **launch_kwargs(),
        )
    finally:
        manager.shutdown(timeout=settings.cancel_grace_s)
        from services.models.loading import model_cache

        model_cache().settle(timeout=30)  # a visitor's model load in progress ends before the process does


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
