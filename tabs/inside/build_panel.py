"""The "Build your own" panel of the Inside a model tab: a model's config with its sizes as numbers to change, the
parameter count and memory recomputed as they change (nothing is allocated: `services.inside.build.estimate`),
then the model created with random weights as `trained:<name>` and, for a text generator, trained from scratch in
the Fine-tune tab on the bundled stories (app.py wires that button to the Fine-tune form).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from services.core.limits import run_gate
from services.inside import build as builder
from services.jobs.manager import JobManager
from tabs.inside.render import e, groups_html, memory_html
from tabs.session import friendly, owner_of

# (config field, label, what it changes) in the order a student reads them.
FIELDS = (
    ("num_hidden_layers", "Layers", "transformer blocks, one after the other"),
    ("num_attention_heads", "Attention heads", "must divide the hidden size"),
    ("num_key_value_heads", "Key/value heads", "must divide the heads (fewer: grouped-query attention)"),
    ("hidden_size", "Hidden size", "numbers per token"),
    ("intermediate_size", "MLP size", "the width inside each block's MLP"),
    ("vocab_size", "Vocabulary", "tokens the model knows"),
    ("max_position_embeddings", "Positions", "the longest text it reads"),
)


@dataclass
class BuildPanel:
    numbers: list[gr.Number]
    tokenizer: gr.Dropdown
    created: gr.State  # the created model's {"id", "finetune_config"}
    train: gr.Button
    fill: Callable
    fill_outputs: list
    runs: Callable  # the visitor's causal-LM trainings for the comparison, on page load
    runs_outputs: list


def _changes(values: tuple, base: dict) -> dict:
    """The numbers that differ from the model's own config."""
    changes = {}
    for (name, _, _), value in zip(FIELDS, values, strict=True):
        if value is None or name not in base:
            continue
        if int(value) != base[name]:
            changes[name] = int(value)
    return changes


def estimate_html(info: dict) -> str:
    before, total = info["parameters_before"], info["total_parameters"]
    change = total - before
    moved = f" ({'+' if change >= 0 else ''}{change:,} from {before:,})" if change else " (the model as it is)"
    changed = ", ".join(f"<code>{e(k)}</code> = {v:,}" for k, v in info["changes"].items()) or "nothing changed yet"
    warnings = "".join(f"<div class='pg-warn'>{e(w)}</div>" for w in info.get("warnings", []))
    return (f"<div class='pg-in-estimate'><p><b>{total:,} parameters</b>{moved} · a <code>"
            f"{e(info['architecture'])}</code> · changed: {changed}</p>{warnings}{groups_html(info['groups'])}"
            f"{memory_html(info['memory'])}</div>")  # fmt: skip


def build(manager: JobManager, model: gr.Dropdown) -> BuildPanel:
    gr.Markdown(
        "Start from the model above and change its shape. The parameter count and the memory follow as you type; "
        "**Create** makes the model with random weights as one of your models, and a text generator can then be "
        "trained from scratch in the Fine-tune tab. Its loss curve beside a fine-tuned model's shows why "
        "pretraining matters: random weights know nothing yet."
    )
    with gr.Row():
        numbers = [gr.Number(label=label, info=info, precision=0, minimum=1, elem_id=f"in-b-{name}", interactive=True)
                   for name, label, info in FIELDS]  # fmt: skip
    tokenizer = gr.Dropdown([("The model's own", "")], value="", label="Tokenizer (one you trained: its vocabulary)",
                            elem_id="in-b-tokenizer")  # fmt: skip
    estimate = gr.HTML("<div class='pg-empty'>Press Look inside to start from that model.</div>",
                       elem_id="in-estimate")  # fmt: skip
    with gr.Row(equal_height=True):
        name = gr.Textbox(label="Name of the new model", value="my-tiny-model", max_lines=1, scale=3,
                          elem_id="in-b-name")  # fmt: skip
        create = gr.Button("Create it with random weights", variant="primary", scale=2, elem_id="in-b-create")
    result = gr.HTML(elem_id="in-b-result")
    train = gr.Button("Train it from scratch in Fine-tune", visible=False, elem_id="in-b-train")
    created = gr.State(None)
    with gr.Accordion("Copy as code", open=False):
        code = gr.Code(language="python", interactive=False, elem_id="in-b-code")
    with gr.Accordion("Why pretraining matters: two trainings side by side", open=False):
        gr.Markdown(
            "Train your random model on the stories (the button above), and fine-tune a pretrained model on the "
            "same stories (Fine-tune tab, task *Causal language model*, base model `smollm2-135m-instruct`). Then "
            "pick both runs: the pretrained one starts where the random one may never get."
        )
        with gr.Row(equal_height=True):
            first = gr.Dropdown([], label="A training", scale=3, elem_id="in-b-first")
            second = gr.Dropdown([], label="Another training", scale=3, elem_id="in-b-second")
            refresh = gr.Button("Refresh the list", scale=1, elem_id="in-b-refresh")
        compared = gr.HTML(elem_id="in-b-compare")

    @friendly
    def fill(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        config = builder.config_for(model_id, owner)["fields"]
        updates = {n: gr.Number(value=config.get(f), visible=f in config) for (f, _, _), n in zip(FIELDS, numbers,
                   strict=True)}  # fmt: skip
        info = builder.estimate(model_id, {}, owner)
        return {estimate: estimate_html(info), **updates, code: _code(model_id, owner, {})}

    def _code(model_id: str, owner: str, changes: dict) -> str:
        from services.inside.snippets import snippets

        return snippets(model_id, owner=owner, changes=changes)["build"]

    def recount(model_id: str, tokenizer_: str, layers, heads, kv_heads, hidden, mlp, vocab, positions,
                request: gr.Request, profile: gr.OAuthProfile | None):  # fmt: skip
        owner = owner_of(request, profile)
        try:
            changes = _changes((layers, heads, kv_heads, hidden, mlp, vocab, positions), _base(model_id, owner))
            info = builder.estimate(model_id, changes, owner, tokenizer_ or None)
        except Exception as err:  # a change that cannot work: its sentence, where the estimate was
            return {estimate: f"<div class='pg-warn'>⚠️ {e(getattr(err, 'message', None) or err)}</div>"}
        return {estimate: estimate_html(info), code: _code(model_id, owner, changes)}

    @friendly
    def make(model_id: str, tokenizer_: str, name_: str, layers, heads, kv_heads, hidden, mlp, vocab, positions,
             request: gr.Request, profile: gr.OAuthProfile | None):  # fmt: skip
        owner = owner_of(request, profile)
        values = (layers, heads, kv_heads, hidden, mlp, vocab, positions)
        changes = _changes(values, _base(model_id, owner))
        with run_gate().hold(owner):  # up to 200M random weights: one such run per visitor at a time, as a model run
            made = builder.create(model_id, changes, (name_ or "").strip(), owner, tokenizer_ or None)
        then = (" Train it from scratch on the bundled stories with the button below: the Fine-tune tab opens on it."
                if made["finetune_config"] else "")  # fmt: skip
        said = (f"<div class='pg-ok'>Created <b>{e(made['id'])}</b> with {made['total_parameters']:,} random weights: "
                f"it is one of your models in every tab now.{then}</div>")  # fmt: skip
        return {result: said, created: {"id": made["id"], "finetune_config": made["finetune_config"]},
                train: gr.update(visible=made["finetune_config"] is not None)}  # fmt: skip

    inputs = [model, tokenizer, *numbers]
    for number in numbers:
        number.change(recount, inputs, [estimate, code], api_visibility="private", show_progress="hidden")
    tokenizer.change(recount, inputs, [estimate, code], api_visibility="private", show_progress="hidden")
    create.click(make, [model, tokenizer, name, *numbers], [result, created, train], api_visibility="private")

    @friendly
    def build_model(model_id: str, changes: dict, name: str, tokenizer: str | None, request: gr.Request,
                    profile: gr.OAuthProfile | None) -> dict:  # fmt: skip
        """Create MODEL's config with CHANGES (e.g. {"num_hidden_layers": 4}) as trained:NAME with random weights;
        returns its size and, for a text generator, a Fine-tune config that trains it from scratch."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            return builder.create(model_id, changes or {}, (name or "").strip(), owner, tokenizer or None)

    gr.api(build_model, api_name="build_model")

    def runs(request: gr.Request, profile: gr.OAuthProfile | None):
        choices = trainings(manager, owner_of(request, profile))
        return {first: gr.Dropdown(choices=choices), second: gr.Dropdown(choices=choices)}

    @friendly
    def compare(a: str | None, b: str | None, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        return compare_html(manager, [j for j in (a, b) if j], owner_of(request, profile))

    refresh.click(runs, None, [first, second], api_visibility="private")
    for pick in (first, second):
        pick.change(compare, [first, second], compared, api_visibility="private", show_progress="hidden")
    return BuildPanel(numbers, tokenizer, created, train, fill, [estimate, *numbers, code], runs, [first, second])


def trainings(manager: JobManager, owner: str) -> list[tuple[str, str]]:
    """The visitor's causal-LM trainings (newest first) as (label, job id)."""
    found = []
    for record in manager.list(owner):
        config = record.config or {}
        if record.kind == "train" and config.get("task") == "causal-lm":
            found.append((f"{config.get('model', '?')} → {Path(str(config.get('output_dir', '?'))).name} "
                          f"({record.status})", record.id))  # fmt: skip
    return found


def compare_html(manager: JobManager, job_ids: list[str], owner: str) -> str:
    """Both runs' training and evaluation loss on the same axes, each line named by the model it started from."""
    from services.training import jobs as training_jobs
    from tabs.finetune.charts import chart_html

    train, evaluation = [], []
    for job_id in job_ids:
        record = manager.get(job_id, owner)
        name = str((record.config or {}).get("model", job_id)).removeprefix("trained:")
        for row in training_jobs.curves(manager, job_id, owner):
            if row["series"] in ("loss", "eval_loss"):
                (train if row["series"] == "loss" else evaluation).append({**row, "series": name})
    charts = [chart_html("Evaluation loss (lower is better)", evaluation), chart_html("Training loss", train)]
    body = "".join(f"<div style='flex:1 1 380px;min-width:0'>{c}</div>" for c in charts if c)
    return (f"<div style='display:flex;flex-wrap:wrap;gap:16px'>{body}</div>" if body else
            "<div class='pg-empty'>No loss logged yet for these runs.</div>")  # fmt: skip


def _base(model_id: str, owner: str) -> dict:
    """The model's own numbers, which the changes are counted from."""
    return builder.config_for(model_id, owner)["fields"]
