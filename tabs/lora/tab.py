"""LoRA tab: parameter-efficient fine-tuning of a chat model that you can see. **1** data (a bundled chat sample,
your file or a Hub dataset) with its statistics and the loss mask token by token, **2** the model and the adapter
with the trainable share and a memory/time estimate, **3** a trl `SFTTrainer` + peft job with live curves, then
**4** base vs adapter streamed side by side, **5** merge and **6** share (`tabs/lora/panels.py`).

The form becomes a `TrainConfig` with `task: chat` and a `lora:` block; the job runs ``python -m services train
job.yaml`` exactly as the Fine-tune tab's does. A reload finds the owner's latest LoRA job again.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import yaml

from services.data import sources as datasets
from services.jobs.manager import JobManager
from services.training import jobs as training_jobs
from services.training.config import LORA_INITS, TrainConfig, suggested
from tabs.finetune import data as finetune_data
from tabs.finetune import run_on as run_on_block
from tabs.finetune import shared
from tabs.jobs import detail_html
from tabs.lora import api as lora_api
from tabs.lora import panels
from tabs.lora import view as lora_view
from tabs.session import friendly, owner_of

AUTO = "(found automatically)"


@dataclass
class LoraTab:
    chosen: gr.Dropdown  # the adapter the compare and merge panels work on
    share: gr.Dropdown  # what "push" and "Try it" use: that adapter, or the model merged from it
    try_pipelines: gr.Button
    try_rag: gr.Button
    on_load: object
    load_outputs: list


def _adapter_name(sample: str | None) -> str:
    return f"{(sample or 'chat').removeprefix('samples/').removeprefix('chat-')}-adapter"


def build(manager: JobManager) -> LoraTab:
    gr.Markdown(
        "**LoRA** trains a few small matrices beside a model's frozen weights instead of the weights themselves: "
        "a fraction of a percent of the parameters, an adapter of a few MB, on a CPU or a small GPU. **1** pick "
        "conversations and look at which tokens the model learns, **2** size the adapter, **3** train with live "
        "curves, **4** compare base and adapter on the same prompt, **5** merge, **6** share."
    )
    data = finetune_data.build(datasets.chat_sample_ids(), prefix="lora")
    first_name = _adapter_name(datasets.chat_sample_ids()[0])
    mask_view = gr.HTML(elem_id="lora-mask")
    with gr.Group():
        with gr.Row(equal_height=True):
            model = gr.Dropdown(["smollm2-135m-instruct"], value="smollm2-135m-instruct", label="2 · Chat model",
                                allow_custom_value=True, scale=2,
                                info="Packaged, trained:<name>, a Hub id (online) or a folder")  # fmt: skip
            name = gr.Textbox(label="Name of the adapter", value=first_name, max_lines=1)
            eval_split = gr.Textbox(label="Evaluation data: a share or a split name", value="0.1", max_lines=1)
            max_length = gr.Slider(32, 2048, value=256, step=32, label="max_length (tokens)")
            loss_on = gr.Radio([("assistant turns", "completion"), ("all tokens", "all")], value="completion",
                               label="Train on")  # fmt: skip
        with gr.Accordion("Columns", open=False), gr.Row():
            messages_col = gr.Dropdown([AUTO], value=AUTO, label="messages column", allow_custom_value=True)
            prompt_col = gr.Dropdown([AUTO], value=AUTO, label="prompt / instruction column", allow_custom_value=True)
            completion_col = gr.Dropdown([AUTO], value=AUTO, label="completion / output column",
                                         allow_custom_value=True)  # fmt: skip
        with gr.Row(equal_height=True):
            r = gr.Slider(1, 128, value=16, step=1, label="r: the adapter's rank")
            alpha = gr.Number(32, label="alpha", minimum=0.01, info="update scale: alpha / r")
            dropout = gr.Slider(0, 0.5, value=0.05, step=0.01, label="dropout")
            targets = gr.Dropdown(
                ["all-linear"],
                value=["all-linear"],
                multiselect=True,
                scale=2,
                label="Target modules",
                info="the model's own linear layers (see the estimate)",
            )
            init = gr.Dropdown(list(LORA_INITS), value="default", label="init", info="pissa / olora start from "
                               "the weights' main directions")  # fmt: skip
        with gr.Row(equal_height=True):
            use_dora = gr.Checkbox(label="DoRA (a learned magnitude per output)", value=False)
            use_rslora = gr.Checkbox(label="rsLoRA (scale alpha / √r)", value=False)
            quant = gr.Radio([("none", ""), ("4-bit (QLoRA)", "4bit"), ("8-bit", "8bit")], value="",
                             label="Quantize the base", info="needs a CUDA GPU with bitsandbytes")  # fmt: skip
    with gr.Group():
        s = suggested("chat")
        with gr.Row(equal_height=True):
            epochs = gr.Number(s["num_train_epochs"], label="3 · Epochs", minimum=0.1, maximum=100)
            lr = gr.Number(s["learning_rate"], label="Learning rate", minimum=0)
            batch = gr.Number(s["per_device_train_batch_size"], label="Batch size", precision=0, minimum=1)
            patience = gr.Number(0, label="Early stopping patience (0 = off)", precision=0, minimum=0)
            seed = gr.Number(42, label="Seed", precision=0)
        with gr.Accordion("Advanced: any SFTConfig / TrainingArguments field (YAML)", open=False):
            advanced = gr.Code("warmup_steps: 0.05\ngradient_accumulation_steps: 1\n", language="yaml", lines=5)
    with gr.Row():
        estimate_btn = gr.Button("Estimate memory and time", scale=1)
    estimate_view = gr.HTML(elem_id="lora-estimate")
    with gr.Accordion("Command preview and config file", open=False):
        command = gr.Code(language="shell", lines=1, label="The job runs", elem_id="lora-command")
        config_text = gr.Code(language="yaml", lines=16, label="job.yaml", elem_id="lora-config")
        with gr.Row():
            save = gr.DownloadButton("Save config (YAML)", size="sm")
            load = gr.UploadButton("Load config (YAML)", file_types=[".yaml", ".yml"], size="sm")
    run_on = run_on_block.build("lora")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", scale=3)
        cancel = gr.Button("Cancel", variant="stop", scale=1)
        resume = gr.Button("Resume from the last checkpoint", scale=1, visible=False)
    status = gr.HTML("<div class='pg-empty'>No LoRA training yet.</div>", elem_id="lora-status")
    charts = gr.HTML(elem_id="lora-charts")
    with gr.Accordion("Log", open=False):
        logs = gr.Code(language=None, lines=8, max_lines=14, interactive=False)
    result = gr.HTML(elem_id="lora-result")
    job, estimate_state = gr.State(None), gr.State(None)
    timer = gr.Timer(2.0, active=False)
    after = panels.build(manager)

    form = [data.kind, data.sample, data.file, data.hub_id, data.hub_config, data.hub_split, model, name, eval_split,
            max_length, loss_on, messages_col, prompt_col, completion_col, r, alpha, dropout, targets, init,
            use_dora, use_rslora, quant, epochs, lr, batch, patience, seed, advanced]  # fmt: skip

    def config_of(d: dict, owner: str | None = None) -> tuple[TrainConfig, str]:
        source = finetune_data.source_of(d[data.kind], d[data.sample], d[data.file], d[data.hub_id], owner)
        extra = shared.advanced_settings(d[advanced])
        dataset = {"source": source, "eval_split": shared.split_value(d[eval_split], "0.1")}
        for key, widget in (("messages_column", messages_col), ("prompt_column", prompt_col),
                            ("completion_column", completion_col)):  # fmt: skip
            if d[widget] and d[widget] != AUTO:
                dataset[key] = d[widget]
        if d[data.kind] == finetune_data.KINDS[2]:
            dataset.update(config=d[data.hub_config] or None, split=d[data.hub_split] or None)
        chosen = [t for t in d[targets] or [] if t]
        lora = {
            "r": int(d[r] or 0),
            "alpha": float(d[alpha] or 0),
            "dropout": float(d[dropout] or 0),
            "target_modules": "all-linear" if not chosen or "all-linear" in chosen else chosen,
            "use_dora": bool(d[use_dora]),
            "use_rslora": bool(d[use_rslora]),
            "init": d[init] or "default",
        }
        training = {**extra, "num_train_epochs": float(d[epochs] or 1), "learning_rate": float(d[lr] or 0),
                    "per_device_train_batch_size": int(d[batch] or 1), "seed": int(d[seed] or 0)}  # fmt: skip
        name_ = (d[name] or "").strip()
        config = TrainConfig.from_dict(
            {"task": "chat", "model": d[model], "dataset": dataset, "max_length": int(d[max_length]),
             "loss_on": d[loss_on] or "completion", "lora": lora, "quantization": d[quant] or None,
             "training": training, "early_stopping_patience": int(d[patience] or 0) or None,
             "output_dir": f"trained/{name_}"}
        )  # fmt: skip
        return config, name_

    shared.wire_preview(form, data.file, config_of, command, config_text)
    data.sample.change(_adapter_name, [data.sample], [name], api_visibility="private")

    def ui_save(text: str, name_: str):
        return shared.save_config(text, name_, "lora")

    save.click(ui_save, [config_text, name], save, api_visibility="private")

    @friendly
    def ui_load(file):
        from pathlib import Path

        config = TrainConfig.from_yaml_text(Path(getattr(file, "name", file)).read_text(encoding="utf-8"))
        if config.task != "chat" or config.lora is None:
            raise gr.Error("This tab loads LoRA chat configs (task: chat with a lora: section).")
        ds, lo, t = config.dataset, config.lora, config.training
        known = ds.source in datasets.chat_sample_ids()
        core = ("num_train_epochs", "learning_rate", "per_device_train_batch_size", "seed")
        rest = {k: v for k, v in t.items() if k not in core}
        return {
            data.kind: finetune_data.KINDS[0] if known else finetune_data.KINDS[2],
            data.sample: ds.source if known else datasets.chat_sample_ids()[0],
            data.hub_id: "" if known else ds.source,
            model: config.model, name: Path(config.output_dir).name, eval_split: str(ds.eval_split),
            max_length: config.max_length, loss_on: config.loss_on, messages_col: ds.messages_column or AUTO,
            prompt_col: ds.prompt_column or AUTO, completion_col: ds.completion_column or AUTO, r: lo.r,
            alpha: lo.alpha, dropout: lo.dropout, init: lo.init, use_dora: lo.use_dora, use_rslora: lo.use_rslora,
            targets: gr.update(value=["all-linear"] if lo.target_modules == "all-linear" else lo.target_modules),
            quant: config.quantization or "", epochs: t.get("num_train_epochs", 2), lr: t.get("learning_rate", 3e-4),
            batch: t.get("per_device_train_batch_size", 8), seed: t.get("seed", 42),
            patience: config.early_stopping_patience or 0,
            advanced: yaml.safe_dump(rest, sort_keys=False) if rest else "",
        }  # fmt: skip

    load.upload(ui_load, [load], [c for c in form if c is not data.file], api_visibility="private")

    @friendly
    def look(d: dict, request: gr.Request, profile: gr.OAuthProfile | None):
        """Preview, statistics and the loss mask, then the estimate (its target modules fill the picker)."""
        from services.training.mask import loss_mask

        owner = owner_of(request, profile)
        source = finetune_data.source_of(d[data.kind], d[data.sample], d[data.file], d[data.hub_id], owner)
        training_jobs.check_source(source, owner)
        info = datasets.describe(source, config=d[data.hub_config] or None, split=d[data.hub_split] or None)
        update = finetune_data.preview_updates(data, info)
        names = [AUTO, *(c["name"] for c in info["columns"])]
        try:
            config, _ = config_of(d, owner)
            mask = loss_mask(config, owner)
        except Exception as err:  # the preview stays; the sentence says what is wrong with the mapping
            update[mask_view] = f"<div class='pg-warn'>⚠️ {lora_view._e(getattr(err, 'message', err))}</div>"
            update.update({w: gr.update(choices=names) for w in (messages_col, prompt_col, completion_col)})
            update[data.report] = ""
            return update
        found = mask["columns"]
        update[mask_view] = lora_view.mask_html(mask)
        update[data.report] = ""
        update[messages_col] = gr.update(choices=names, value=found.get("messages", AUTO))
        update[prompt_col] = gr.update(choices=names, value=found.get("prompt", AUTO))
        update[completion_col] = gr.update(choices=names, value=found.get("completion", AUTO))
        return update

    data.look.click(look, set(form), [data.table, data.columns, data.report, mask_view, messages_col, prompt_col,
                                      completion_col], api_visibility="private")  # fmt: skip

    @friendly
    def ui_estimate(d: dict, request: gr.Request, profile: gr.OAuthProfile | None):
        from services.training.estimate import estimate

        owner = owner_of(request, profile)
        config, _ = config_of(d, owner)
        training_jobs.check_source(config.dataset.source, owner)
        est = estimate(config, owner)
        return {estimate_view: lora_view.estimate_html(est), estimate_state: est,
                targets: gr.update(choices=est["linear_layers"])}  # fmt: skip

    estimate_btn.click(ui_estimate, set(form), [estimate_view, estimate_state, targets], api_visibility="private")

    @friendly
    def ui_start(d: dict, request: gr.Request, profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None):
        from services.training.estimate import estimate

        owner = owner_of(request, profile)
        config, name_ = config_of(d, owner)
        fresh = estimate(config, owner)  # the estimate of what actually runs, for the measured correction
        job_id = run_on_block.start(manager, run_on, d, owner, config, name_, oauth.token if oauth else None)
        return {job: job_id, timer: gr.Timer(active=True), status: "<div class='pg-empty'>Starting…</div>",
                result: "", resume: gr.update(visible=False), estimate_state: fresh,
                estimate_view: lora_view.estimate_html(fresh)}  # fmt: skip

    start.click(ui_start, set(form) | set(run_on.inputs), [job, timer, status, result, resume, estimate_state,
                                                    estimate_view], api_visibility="private")  # fmt: skip

    @friendly
    def ui_resume(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        return {job: training_jobs.resume(manager, job_id, owner_of(request, profile)),
                timer: gr.Timer(active=True), resume: gr.update(visible=False)}  # fmt: skip

    resume.click(ui_resume, [job], [job, timer, resume], api_visibility="private")

    @friendly
    def ui_cancel(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        if job_id:
            manager.cancel(job_id, owner_of(request, profile))
            gr.Info("Stopping: the job saves the adapter's last checkpoint first; Resume continues from it.")

    cancel.click(ui_cancel, [job], None, api_visibility="private")

    @friendly
    def poll(job_id, est, request: gr.Request, profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None = None):
        from services.training.estimate import corrected

        if not job_id:
            return {timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        remote = run_on_block.outputs(manager, record, owner, oauth.token if oauth else None)
        events = training_jobs.metric_events(manager, job_id, owner)
        measured = training_jobs.measured(manager, job_id, owner, events)
        update = {
            status: detail_html(record),
            timer: gr.Timer(active=not record.done),
            charts: lora_view.curves_html(
                training_jobs.curves(manager, job_id, owner, events), measured["tokens_per_second"]
            ),
            logs: "\n".join(manager.logs(job_id, owner, tail=60)),
        }
        if measured.get("seconds_per_step") and est:
            update[estimate_view] = lora_view.estimate_html(est, corrected(est, measured))
        if record.done:
            out = remote or training_jobs.outputs(manager, job_id, owner)
            update[result] = lora_view.result_html(out)
            update[resume] = gr.update(visible=out["resumable"])
            update.update(after.show(out, owner))
        return update

    poll_outputs = [status, timer, charts, logs, estimate_view, result, resume, *after.outputs]
    timer.tick(poll, [job, estimate_state], poll_outputs, api_visibility="private", show_progress="hidden")

    @friendly
    def on_load(request: gr.Request, profile: gr.OAuthProfile | None):
        """The owner's latest LoRA job again after a reload or restart, and their adapters in the pickers."""
        owner = owner_of(request, profile)
        update = after.refresh(owner)
        latest = next((rec for rec in manager.list(owner) if run_on_block.is_training(rec)
                       and (rec.config or {}).get("task") == "chat"), None)  # fmt: skip
        if latest is None:
            return update
        return {**update, job: latest.id, **poll(latest.id, None, request, profile), timer: gr.Timer(active=True)}

    lora_api.register(manager)
    return LoraTab(after.chosen, after.share, after.try_pipelines, after.try_rag, on_load, [job, *poll_outputs])
