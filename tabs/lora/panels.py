"""What the LoRA tab does with an adapter once it exists: **4** compare it with its base, streamed side by side
(one copy of the base in memory: the adapter is switched off for the base's side), **5** merge it into a full
model (a job, with its logit checks), **6** push it (or the merged model) with its card and serve it in a demo
Space, and "Try it" in Pipelines and RAG chat (wired in `app.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import gradio as gr

from services.core.limits import run_gate
from services.jobs.manager import JobManager
from services.training import lora_jobs
from tabs import hub_push
from tabs.jobs import detail_html
from tabs.lora import view as lora_view
from tabs.pipelines.run import StopSignals
from tabs.session import friendly, owner_of


@dataclass
class AfterTraining:
    chosen: gr.Dropdown
    share: gr.Dropdown
    tests: gr.Dataset
    merge_name: gr.Textbox
    try_pipelines: gr.Button
    try_rag: gr.Button
    outputs: list
    show: object  # (training outputs, owner) -> updates once a job has made an adapter
    refresh: object  # owner -> updates of the pickers


def adapters_of(owner: str) -> list[str]:
    """The owner's chat adapters (trained:<name>), newest first as the catalog lists them."""
    from services.models.adapters import is_adapter
    from services.models.catalog import TRAINED_PREFIX, trained_models, trained_root

    root = trained_root(owner)
    return [e.id for e in trained_models(owner) if e.available and "text-generation" in e.tasks
            and is_adapter(root / e.id.removeprefix(TRAINED_PREFIX))]  # fmt: skip


def build(manager: JobManager) -> AfterTraining:
    with gr.Group():
        gr.Markdown("### 4 · Compare base and adapter", elem_classes="pg-section")
        with gr.Row(equal_height=True):
            chosen = gr.Dropdown([], label="Adapter", scale=2, allow_custom_value=False,
                                 info="your chat adapters (trained:<name>)")  # fmt: skip
            seed = gr.Number(0, label="Seed", precision=0, scale=1)
            max_new = gr.Slider(8, 256, value=64, step=8, label="Max new tokens", scale=1)
            temperature = gr.Slider(0, 1.5, value=0, step=0.05, label="Temperature (0 = greedy)", scale=1)
        prompt = gr.Textbox(label="Prompt", lines=2, elem_id="lora-prompt",
                            placeholder="If today is Monday, what day will it be in 10 days?")  # fmt: skip
        tests = gr.Dataset(components=[prompt], samples=[], label="Held-back test prompts (never trained on)",
                           visible=False, elem_id="lora-tests")  # fmt: skip
        with gr.Row():
            go = gr.Button("Compare", variant="primary", scale=3)
            stop = gr.Button("Stop", scale=1)
        with gr.Row(equal_height=True):
            base_out = gr.Textbox(label="Base model (adapter off)", lines=5, interactive=False, elem_id="lora-base")
            adapter_out = gr.Textbox(label="With the adapter", lines=5, interactive=False, elem_id="lora-adapter")
    with gr.Group():
        gr.Markdown("### 5 · Merge into a full model", elem_classes="pg-section")
        with gr.Row(equal_height=True):
            merge_name = gr.Textbox(label="Name of the merged model", value="days-merged", max_lines=1, scale=3)
            merge_btn = gr.Button("Merge and check", scale=1)
        merge_status = gr.HTML(elem_id="lora-merge")
    merge_job, merge_timer = gr.State(None), gr.Timer(1.5, active=False)
    with gr.Group():
        gr.Markdown("### 6 · Share and use", elem_classes="pg-section")
        with gr.Row(equal_height=True):
            share = gr.Dropdown([], label="Model to push or serve", scale=3)
            try_pipelines = gr.Button("Try it in Pipelines", scale=1)
            try_rag = gr.Button("Try it in RAG chat", scale=1)
    push = hub_push.build(manager, _folder_of, share, prepare=_card_for)
    hub_push.build_space(manager, push, share)

    def refresh(owner: str, pick: str | None = None) -> dict:
        found = adapters_of(owner)
        value = pick if pick in found else (found[0] if found else None)
        return {
            chosen: gr.update(choices=found, value=value),
            share: gr.update(choices=found, value=value),
            try_pipelines: gr.update(interactive=bool(found)),
            try_rag: gr.update(interactive=bool(found)),
        }

    def show(out: dict, owner: str) -> dict:
        update = refresh(owner, out.get("model_id"))
        samples = (out.get("report") or {}).get("samples") or []
        update[tests] = gr.Dataset(samples=[[s["text"]] for s in samples], visible=bool(samples))
        if out.get("model_id"):
            update[merge_name] = f"{out['model_id'].removeprefix('trained:')[:50]}-merged"
        return update

    stops = StopSignals()

    @friendly
    def ui_compare(adapter, text, seed_, new_tokens, temp, request: gr.Request,
                   profile: gr.OAuthProfile | None) -> Iterator[dict]:  # fmt: skip
        from services.training.compare import compare

        owner = owner_of(request, profile)
        if not adapter:
            raise gr.Error("Train an adapter first (3 · Start training): the comparison needs one.")
        key = request.session_hash or ""
        halt = stops.arm(key)
        yield {base_out: "…", adapter_out: "…"}
        part: dict = {}
        try:
            with run_gate().hold(owner):  # one generation at a time per visitor: the model is shared by everyone
                for part in compare(adapter, text or "", owner=owner, max_new_tokens=int(new_tokens), halt=halt,
                                    temperature=float(temp or 0), seed=int(seed_ or 0)):  # fmt: skip
                    yield {base_out: _shown(part, "base"), adapter_out: _shown(part, "adapter")}
        finally:
            stops.release(key, halt)
        if part.get("stopped"):
            gr.Info("Stopped: the answers so far are kept.")

    compare_inputs = [chosen, prompt, seed, max_new, temperature]
    go.click(ui_compare, compare_inputs, [base_out, adapter_out], api_visibility="private",
             concurrency_id="inference")  # fmt: skip
    prompt.submit(ui_compare, compare_inputs, [base_out, adapter_out], api_visibility="private",
                  concurrency_id="inference")  # fmt: skip

    def ui_stop(request: gr.Request) -> None:
        stops.request(request.session_hash or "")

    stop.click(ui_stop, None, None, api_visibility="private")

    tests.click(lambda sample: sample[0], tests, prompt, api_visibility="private")

    @friendly
    def ui_merge(adapter, new_name, request: gr.Request, profile: gr.OAuthProfile | None):
        if not adapter:
            raise gr.Error("Train an adapter first: there is nothing to merge yet.")
        job_id = lora_jobs.start_merge(manager, owner_of(request, profile), adapter, (new_name or "").strip())
        return {merge_job: job_id, merge_timer: gr.Timer(active=True),
                merge_status: "<div class='pg-empty'>Merging…</div>"}  # fmt: skip

    merge_btn.click(ui_merge, [chosen, merge_name], [merge_job, merge_timer, merge_status], api_visibility="private")

    @friendly
    def merge_poll(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        if not job_id:
            return {merge_timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        if not record.done:
            return {merge_status: detail_html(record)}
        out = lora_jobs.merge_outputs(manager, job_id, owner)
        update = {merge_timer: gr.Timer(active=False), merge_status: lora_view.merge_html(out) if out["model_id"]
                  else detail_html(record)}  # fmt: skip
        if out["model_id"]:
            found = adapters_of(owner)
            update[share] = gr.update(choices=[*found, out["model_id"]], value=out["model_id"])
        return update

    merge_timer.tick(merge_poll, [merge_job], [merge_timer, merge_status, share], api_visibility="private",
                     show_progress="hidden")  # fmt: skip
    chosen.change(lambda a: gr.update(value=a) if a else gr.update(), [chosen], [share], api_visibility="private")
    outputs = [chosen, share, tests, merge_name, try_pipelines, try_rag]
    return AfterTraining(chosen, share, tests, merge_name, try_pipelines, try_rag, outputs, show, refresh)


def _shown(part: dict, side: str) -> str:
    """One side's answer so far; a finished empty one says so instead of leaving the box blank."""
    if part[side] or not part.get("done"):
        return part[side] or "…"
    return "(an empty answer: the model ended its turn at once)"


def _folder_of(model_id: str | None, owner: str) -> str:
    if not model_id:
        raise gr.Error("Train an adapter first: the push sends the adapter (or the merged model) made here.")
    from services.models.catalog import resolve

    return resolve(model_id, owner).location


def _card_for(folder: str, repo_id: str) -> None:
    """The adapter's card was written at the end of training; a merged model's when it was merged."""
