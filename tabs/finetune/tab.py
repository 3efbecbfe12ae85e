"""Fine-tune tab: data in (a bundled sample, your file or a Hub dataset), looked at before training, a Trainer job
with live curves, and a model out: its evaluation report, "Try it" in the Pipelines tab, push to the Hub with its
model card, and a demo Space.

The form becomes a `TrainConfig`; the job runs ``python -m services train job.yaml`` (shown as the command preview).
A timer follows the job; the owner's latest training is found again after a reload or a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import yaml

from services.data import sources as datasets
from services.data.report import analyze
from services.jobs.manager import JobManager
from services.training import jobs as training_jobs
from services.training.config import TASKS, TrainConfig, suggested
from tabs import hub_push
from tabs.finetune import charts as finetune_charts
from tabs.finetune import data as finetune_data
from tabs.finetune import run_on as run_on_block
from tabs.finetune import shared
from tabs.finetune import view as finetune_view
from tabs.jobs import detail_html
from tabs.session import friendly, owner_of

TASK_LABELS = {
    "text-classification": "Text classification (labels)",
    "text-regression": "Text regression (a score)",
    "token-classification": "Token classification (NER)",
    "summarization": "Summarization (seq2seq)",
    "causal-lm": "Causal language model (generation)",
}
SAMPLE_FOR = {
    "text-classification": "samples/sentiment",
    "text-regression": "samples/sentiment",
    "token-classification": "samples/ner",
    "summarization": "samples/summaries",
    "causal-lm": "samples/stories",
}


@dataclass
class FinetuneTab:
    job: gr.State
    model_id: gr.State  # trained:<name> once the job has made a model
    try_it: gr.Button
    pipeline_task: gr.State
    on_load: object
    load_outputs: list
    task: gr.Dropdown  # the form's task, base model and name: other tabs start a training from them
    model: gr.Dropdown
    name: gr.Textbox


def _default_name(task: str, model: str) -> str:
    short = {"text-classification": "classifier", "text-regression": "scorer", "token-classification": "ner"}
    return f"{short.get(task, task)}-{(model or 'model').split('/')[-1].split(':')[-1]}"[:60]


def build(manager: JobManager) -> FinetuneTab:
    gr.Markdown(
        "Fine-tune a model on your data with the 🤗 Trainer. **1** pick data and look at it, **2** choose the task "
        "and model, **3** train: curves update live, and the model appears as `trained:<name>` everywhere in the app."
    )
    data = finetune_data.build()
    with gr.Group():
        with gr.Row(equal_height=True):
            task = gr.Dropdown([(v, k) for k, v in TASK_LABELS.items()], value="text-classification", label="2 · Task")
            model = gr.Dropdown(
                ["all-minilm-l6-v2"], value="all-minilm-l6-v2", label="Base model", allow_custom_value=True, scale=2,
                info="Packaged, trained:<name>, a Hub id (online) or a folder",
            )  # fmt: skip
            name = gr.Textbox(label="Name of the new model", value="classifier-all-minilm-l6-v2", max_lines=1)
        with gr.Row(equal_height=True):
            text_column = gr.Dropdown(["text"], value="text", label="Text column", allow_custom_value=True)
            label_column = gr.Dropdown(
                ["label"], value="label", label="Label / target column", allow_custom_value=True
            )
            eval_split = gr.Textbox(label="Evaluation data: a share or a split name", value="0.2", max_lines=1)
            max_length = gr.Slider(16, 1024, value=128, step=8, label="max_length (tokens)")
            multi_label = gr.Checkbox(label="Several labels per row", value=False)
    with gr.Group():
        s = suggested("text-classification")
        with gr.Row(equal_height=True):
            epochs = gr.Number(s["num_train_epochs"], label="3 · Epochs", minimum=0.1, maximum=100)
            lr = gr.Number(s["learning_rate"], label="Learning rate", minimum=0)
            batch = gr.Number(s["per_device_train_batch_size"], label="Batch size", precision=0, minimum=1)
            patience = gr.Number(2, label="Early stopping patience (0 = off)", precision=0, minimum=0)
            seed = gr.Number(42, label="Seed", precision=0)
        with gr.Accordion("Advanced: any TrainingArguments field (YAML)", open=False):
            advanced = gr.Code(
                "weight_decay: 0.01\nwarmup_steps: 0.1\ngradient_accumulation_steps: 1\n", language="yaml", lines=6
            )
    with gr.Accordion("Command preview and config file", open=False):
        command = gr.Code(language="shell", lines=1, label="The job runs", elem_id="ft-command")
        config_text = gr.Code(language="yaml", lines=14, label="job.yaml", elem_id="ft-config")
        with gr.Row():
            save = gr.DownloadButton("Save config (YAML)", size="sm")
            load = gr.UploadButton("Load config (YAML)", file_types=[".yaml", ".yml"], size="sm")
    run_on = run_on_block.build("ft")
    with gr.Row():
        start = gr.Button("Start training", variant="primary", scale=3)
        cancel = gr.Button("Cancel", variant="stop", scale=1)
        resume = gr.Button("Resume from the last checkpoint", scale=1, visible=False)
    status = gr.HTML("<div class='pg-empty'>No training yet.</div>", elem_id="ft-status")
    charts = gr.HTML(elem_id="ft-charts")  # loss and evaluation curves (tabs/finetune/charts.py)
    with gr.Accordion("Log", open=False):
        logs = gr.Code(language=None, lines=8, max_lines=14, interactive=False)
    result = gr.HTML(elem_id="ft-result")
    with gr.Row():
        try_it = gr.Button("Try it in Pipelines", visible=False, scale=0, min_width=220)
    job, model_id, pipeline_task = gr.State(None), gr.State(None), gr.State("text-classification")
    timer = gr.Timer(2.0, active=False)
    push = hub_push.build(manager, _folder_of, model_id, prepare=_card_for)
    hub_push.build_space(manager, push, model_id)

    form = [data.kind, data.sample, data.file, data.hub_id, data.hub_config, data.hub_split, task, model, name,
            text_column, label_column, eval_split, max_length, multi_label, epochs, lr, batch, patience, seed,
            advanced]  # fmt: skip

    def config_of(d: dict, owner: str | None = None) -> tuple[TrainConfig, str]:
        """The form (a {component: value} dict) as a checked TrainConfig, and the new model's name."""
        source = finetune_data.source_of(d[data.kind], d[data.sample], d[data.file], d[data.hub_id], owner)
        extra = shared.advanced_settings(d[advanced])
        training = {**extra, "num_train_epochs": float(d[epochs] or 1), "learning_rate": float(d[lr] or 0),
                    "per_device_train_batch_size": int(d[batch] or 1), "seed": int(d[seed] or 0)}  # fmt: skip
        split_value = shared.split_value(d[eval_split], "0.2")
        task_ = d[task]
        target = {"text-regression": "target_column", "summarization": "summary_column"}.get(task_, "label_column")
        dataset = {"source": source, "text_column": d[text_column], "eval_split": split_value,
                   "multi_label": bool(d[multi_label])}  # fmt: skip
        if d[data.kind] == finetune_data.KINDS[2]:
            dataset.update(config=d[data.hub_config] or None, split=d[data.hub_split] or None)
        if task_ != "causal-lm":
            dataset[target] = d[label_column]
        name_ = (d[name] or "").strip()
        config = TrainConfig.from_dict(
            {"task": task_, "model": d[model], "dataset": dataset, "max_length": int(d[max_length]),
             "training": training, "early_stopping_patience": int(d[patience] or 0) or None,
             "output_dir": f"trained/{name_}"}
        )  # fmt: skip
        return config, name_

    shared.wire_preview(form, data.file, config_of, command, config_text)

    def ui_save(text: str, name_: str):
        return shared.save_config(text, name_, "finetune")

    save.click(ui_save, [config_text, name], save, api_visibility="private")

    @friendly
    def ui_load(file):
        config = TrainConfig.from_yaml_text(Path(getattr(file, "name", file)).read_text(encoding="utf-8"))
        ds = config.dataset
        known = set(datasets.SAMPLES)
        core = ("num_train_epochs", "learning_rate", "per_device_train_batch_size", "seed")
        rest = {k: v for k, v in config.training.items() if k not in core}
        return {
            task: config.task, model: config.model, name: Path(config.output_dir).name,
            data.kind: finetune_data.KINDS[0] if ds.source in known else finetune_data.KINDS[2],
            data.sample: ds.source if ds.source in known else "samples/sentiment",
            data.hub_id: "" if ds.source in known else ds.source,
            text_column: ds.text_column, label_column: ds.target(config.task) or "",
            eval_split: str(ds.eval_split), max_length: config.max_length, multi_label: ds.multi_label,
            epochs: config.training.get("num_train_epochs", 3), lr: config.training.get("learning_rate", 5e-5),
            batch: config.training.get("per_device_train_batch_size", 16), seed: config.training.get("seed", 42),
            patience: config.early_stopping_patience or 0,
            advanced: yaml.safe_dump(rest, sort_keys=False) if rest else "",
        }  # fmt: skip

    load.upload(ui_load, [load], [c for c in form if c is not data.file], api_visibility="private")

    def on_task(task_: str, model_: str, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        options = training_jobs.base_models(task_, owner)
        chosen = model_ if model_ in options else (options[0] if options else "")
        s = suggested(task_)
        sample = SAMPLE_FOR[task_]
        columns = datasets.SAMPLES.get(sample, (None, {}))[1]
        return {
            model: gr.update(choices=options, value=chosen),
            name: _default_name(task_, chosen),
            epochs: s["num_train_epochs"], lr: s["learning_rate"], batch: s["per_device_train_batch_size"],
            data.sample: sample,
            text_column: columns.get("text_column", "text"),
            label_column: gr.update(value=columns.get("label_column") or columns.get("summary_column") or "",
                                    interactive=task_ != "causal-lm"),
            multi_label: gr.update(visible=task_ == "text-classification"),
        }  # fmt: skip

    task.change(on_task, [task, model], [model, name, epochs, lr, batch, data.sample, text_column, label_column,
                multi_label], api_visibility="private")  # fmt: skip

    @friendly
    def look(kind, sample, file, hub_id, hub_config, hub_split, task_, model_, text_, label_, length, multi,
             request: gr.Request, profile: gr.OAuthProfile | None):  # fmt: skip
        owner = owner_of(request, profile)
        source = finetune_data.source_of(kind, sample, file, hub_id, owner)
        info = datasets.describe(source, config=hub_config or None, split=hub_split or None)
        names = [c["name"] for c in info["columns"]]
        text_ = text_ if text_ in names else info["suggested"].get("text_column", names[0])
        label_ = label_ if label_ in names else next((n for n in names if n != text_), "")
        update = finetune_data.preview_updates(data, info)
        update.update({text_column: gr.update(choices=names, value=text_),
                       label_column: gr.update(choices=names, value=label_)})  # fmt: skip
        try:
            label = None if task_ == "causal-lm" else label_
            report = analyze(source, task_, text_, label, model=model_, max_length=int(length),
                             multi_label=bool(multi), config=hub_config or None, owner=owner)  # fmt: skip
            update[data.report] = finetune_view.data_report_html(report)
        except Exception as err:  # the preview stays; the report says what is wrong with the mapping
            update[data.report] = f"<div class='pg-warn'>⚠️ {finetune_view._e(err)}</div>"
        return update

    data.look.click(
        look,
        [data.kind, data.sample, data.file, data.hub_id, data.hub_config, data.hub_split, task, model, text_column,
         label_column, max_length, multi_label],
        [data.table, data.columns, data.report, text_column, label_column],
        api_visibility="private",
    )  # fmt: skip

    @friendly
    def ui_start(d: dict, request: gr.Request, profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None):
        owner = owner_of(request, profile)
        config, name_ = config_of(d, owner)
        job_id = run_on_block.start(manager, run_on, d, owner, config, name_, oauth.token if oauth else None)
        return {job: job_id, timer: gr.Timer(active=True), status: "<div class='pg-empty'>Starting…</div>",
                result: "", try_it: gr.update(visible=False), resume: gr.update(visible=False)}  # fmt: skip

    start.click(ui_start, set(form) | set(run_on.inputs), [job, timer, status, result, try_it, resume],
                api_visibility="private")  # fmt: skip

    @friendly
    def ui_resume(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        new_id = training_jobs.resume(manager, job_id, owner_of(request, profile))
        return {job: new_id, timer: gr.Timer(active=True), resume: gr.update(visible=False)}

    resume.click(ui_resume, [job], [job, timer, resume], api_visibility="private")

    @friendly
    def ui_cancel(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        if job_id:
            manager.cancel(job_id, owner_of(request, profile))
            gr.Info("Stopping: the job saves a checkpoint first; Resume continues from it.")

    cancel.click(ui_cancel, [job], None, api_visibility="private")

    @friendly
    def poll(job_id, request: gr.Request, profile: gr.OAuthProfile | None, oauth: gr.OAuthToken | None = None):
        if not job_id:
            return {timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        remote = run_on_block.outputs(manager, record, owner, oauth.token if oauth else None)
        update = {
            status: detail_html(record),
            timer: gr.Timer(active=not record.done),
            charts: finetune_charts.charts_html(training_jobs.curves(manager, job_id, owner)),
            logs: "\n".join(manager.logs(job_id, owner, tail=60)),
        }
        if record.done:
            out = remote or training_jobs.outputs(manager, job_id, owner)
            update[result] = finetune_view.result_html(out)
            update[model_id] = out["model_id"]
            update[try_it] = gr.update(visible=bool(out["model_id"]))
            update[resume] = gr.update(visible=out["resumable"])
            update[pipeline_task] = _pipeline_task(out["summary"].get("task") or (record.config or {}).get("task"))
        return update

    poll_outputs = [
        status,
        timer,
        charts,
        logs,
        result,
        model_id,
        try_it,
        resume,
        pipeline_task,
    ]
    timer.tick(poll, [job], poll_outputs, api_visibility="private", show_progress="hidden")

    @friendly
    def on_load(request: gr.Request, profile: gr.OAuthProfile | None):
        """Find the owner's latest training again after a reload or restart."""
        owner = owner_of(request, profile)
        jobs = [r for r in manager.list(owner)
                if run_on_block.is_training(r) and (r.config or {}).get("task") != "chat"]  # fmt: skip
        latest = jobs[0] if jobs else None  # chat (LoRA) jobs are the LoRA tab's
        if latest is None:
            return {job: None}
        return {job: latest.id, **poll(latest.id, request, profile), timer: gr.Timer(active=True)}

    _api(manager)
    return FinetuneTab(job, model_id, try_it, pipeline_task, on_load, [job, *poll_outputs], task, model, name)


def _pipeline_task(task: str | None) -> str:
    return {"text-regression": "text-classification", "causal-lm": "text-generation"}.get(task or "", task or "")


def _folder_of(model_id: str | None, owner: str) -> str:
    if not model_id:
        raise gr.Error("Train a model first: the push sends the model this tab made.")
    from services.models.catalog import resolve

    return resolve(model_id, owner).location


def _card_for(folder: str, repo_id: str) -> None:
    training_jobs.refresh_model_card(folder, repo_id)


def _api(manager: JobManager) -> None:
    @friendly
    def preview_dataset(source: str, config: str | None, split: str | None, request: gr.Request,
                        profile: gr.OAuthProfile | None) -> dict:  # fmt: skip
        """Splits, columns with types and the first rows of a bundled sample or Hub dataset."""
        training_jobs.check_source(source, owner_of(request, profile))
        return datasets.describe(source, config=config or None, split=split or None)

    @friendly
    def analyze_dataset(source: str, task: str, text_column: str, label_column: str | None, model: str | None,
                        max_length: int, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:  # fmt: skip
        """Labels and balance, empty/duplicate rows, token lengths with the model's tokenizer."""
        owner = owner_of(request, profile)
        training_jobs.check_source(source, owner)
        return analyze(source, task, text_column, label_column or None, model=model or None,
                       max_length=int(max_length or 128), owner=owner)  # fmt: skip

    @friendly
    def finetune(config: str, name: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Start fine-tuning from a YAML config (the job.yaml keys); the model becomes trained:<name>. Returns
        the job id: follow it with /job and /finetune_result."""
        return training_jobs.start(manager, owner_of(request, profile), TrainConfig.from_yaml_text(config), name)

    @friendly
    def finetune_result(job_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """A training job's state, curves (step, series, value), summary, report and model id."""
        owner = owner_of(request, profile)
        return {
            **training_jobs.outputs(manager, job_id, owner),
            "curves": training_jobs.curves(manager, job_id, owner),
        }

    gr.api(preview_dataset, api_name="preview_dataset")
    gr.api(analyze_dataset, api_name="analyze_dataset")
    gr.api(finetune, api_name="finetune")
    gr.api(finetune_result, api_name="finetune_result")
    run_on_block.register_api(manager)


__all__ = ["TASKS", "FinetuneTab", "build"]
