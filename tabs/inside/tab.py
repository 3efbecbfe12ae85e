"""Inside a model: what a transformer is made of and what happens in it, on any model here (`services.inside`).

Three views of the model picked at the top: its anatomy (parameters per part, memory, the config explained, the
module tree), one forward pass on a text of the student's (tokens, attention per layer and head as pictures and as
bertviz's lines, what kind of head each is, how much each layer changes the text, the logit lens), and "Build your
own" (change the config, see the size move, create it with random weights, train it from scratch in Fine-tune).
Every view has its "Copy as code". The pass runs once per text; picking a layer and head redraws from what it kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import numpy as np

from services.core.limits import run_gate
from services.inside import anatomy, forward, snippets
from services.inside import build as builder
from services.models.catalog import catalog
from services.tokenizers.loading import trained_tokenizers
from tabs.inside import heatmaps, render
from tabs.inside.build_panel import BuildPanel
from tabs.inside.build_panel import build as build_panel
from tabs.session import friendly, owner_of

_INTRO = (
    "Look inside any model of the playground: what it is made of, and what happens to a text you type as it goes "
    "through it, layer by layer. Works on the packaged models, Hub models, your `trained:` models and adapters."
)
_TEXT = "The capital of France is Paris, and the capital of Italy is"
_VIEWS = {"Attention": "attention", "Kinds of heads": "heads", "Layer updates": "updates", "Logit lens": "logit_lens"}


@dataclass
class InsideTab:
    model: gr.Dropdown
    build: BuildPanel
    on_load: Callable
    load_outputs: list


def _choices(owner: str) -> list[str]:
    """Every model that loads as a PyTorch model (a copy run by ONNX Runtime has no layers to look into)."""
    return [entry.id for entry in catalog(owner=owner) if not entry.id.endswith(("-onnx", "-fast-cpu"))]


def _pass_state(views: dict) -> dict:
    """What the tab keeps of a pass: the attention as a float16 array (a few MB) instead of nested lists."""
    kept = {k: v for k, v in views.items() if k != "attentions"}
    kept["attention"] = np.asarray(views["attentions"], dtype=np.float16)
    return kept


def build(manager) -> InsideTab:
    gr.Markdown(_INTRO)
    with gr.Row(equal_height=False, elem_classes="pg-in-pick"):
        model = gr.Dropdown([], label="Model", allow_custom_value=True, scale=3, elem_id="in-model",
                            info="Packaged, trained:<name>, an adapter, a Hub id (online) or a folder")  # fmt: skip
        look = gr.Button("Look inside", variant="primary", scale=0, min_width=200, elem_id="in-look")
    with gr.Tabs():
        with gr.Tab("Anatomy", id="in-anatomy"):
            summary = gr.HTML("<div class='pg-empty'>Pick a model, then press Look inside.</div>",
                              elem_id="in-summary")  # fmt: skip
            with gr.Row():
                with gr.Column(scale=3):
                    gr.Markdown("#### The config, field by field")
                    fields = gr.HTML(elem_id="in-fields")
                with gr.Column(scale=2):
                    gr.Markdown("#### Every module (click to unfold)")
                    tree = gr.HTML(elem_id="in-tree")
            with gr.Accordion("Copy as code", open=False):
                anatomy_code = gr.Code(language="python", interactive=False, elem_id="in-anatomy-code")
        with gr.Tab("One forward pass", id="in-forward"):
            with gr.Row(equal_height=True):
                text = gr.Textbox(_TEXT, label="A text for the model to read", lines=2, max_lines=6, scale=4,
                                  elem_id="in-text")  # fmt: skip
                run = gr.Button("Run it through the model", variant="primary", scale=1, elem_id="in-run")
            tokens = gr.HTML(elem_id="in-tokens")
            with gr.Accordion("Attention: who looks at whom", open=True):
                gr.Markdown(
                    "Each head of each layer decides, for every token, how much to look at every token before it "
                    "(and after it, in a model that reads both ways). **Click a head** in the grid to see it large."
                )
                grid = gr.Image(label="Every head: layer →, head ↓ (click one)", type="pil", interactive=False,
                                buttons=["fullscreen"], elem_id="in-grid")  # fmt: skip
                with gr.Row():
                    layer = gr.Slider(0, 1, value=0, step=1, label="Layer", elem_id="in-layer")
                    head = gr.Slider(0, 1, value=0, step=1, label="Head", elem_id="in-head")
                with gr.Row():
                    heat = gr.Image(label="That head: row looks at column",
                                    type="pil", interactive=False, elem_id="in-heat", scale=1)  # fmt: skip
                    lines = gr.HTML(elem_id="in-lines")
            with gr.Accordion("Kinds of heads", open=False):
                heads_view = gr.HTML(elem_id="in-heads")
            with gr.Accordion("How much each layer changes the text", open=False):
                gr.Markdown("The size of each block's update to the hidden states, averaged over the tokens "
                            "(and as a share of the hidden state itself).")  # fmt: skip
                updates = gr.HTML(elem_id="in-updates")
            with gr.Accordion("Logit lens: the guess, layer by layer", open=True):
                position = gr.Dropdown([], label="Position", visible=False, elem_id="in-position")
                lens_view = gr.HTML(elem_id="in-lens")
            with gr.Accordion("Copy as code", open=False):
                view = gr.Radio(list(_VIEWS), value="Attention", label="The code for", elem_id="in-view")
                forward_code = gr.Code(language="python", interactive=False, elem_id="in-forward-code")
        with gr.Tab("Build your own", id="in-build"):
            panel = build_panel(manager, model)
    state = gr.State(None)
    codes = gr.State({})

    @friendly
    def inspect(model_id: str, text_: str, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            info = anatomy.inspect_model(model_id, owner)
        code = snippets.snippets(model_id, text_, owner)
        return {summary: render.anatomy_html(info), fields: render.fields_html(info["fields"]),
                tree: render.tree_html(info["modules"], info.get("shapes")), anatomy_code: code["anatomy"],
                codes: code, forward_code: code["attention"]}  # fmt: skip

    @friendly
    def one_pass(model_id: str, text_: str, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            kept = _pass_state(forward.forward_views(model_id, text_, owner))
        layers, heads_ = kept["layers"], kept["heads_per_layer"]
        lens = kept.get("lens") or {}
        spots = [row["position"] for row in lens.get("positions", [])]
        last = spots[-1] if spots else None
        return {
            state: kept,
            tokens: render.notices_html(kept["notices"]) + render.tokens_html(kept["pieces"], kept["ids"],
                                                                              kept["total_tokens"]),
            layer: gr.Slider(0, layers - 1, value=0, step=1), head: gr.Slider(0, heads_ - 1, value=0, step=1),
            **_head_views(kept, 0, 0),
            heads_view: render.heads_html(kept["head_summary"], layers, heads_),
            updates: render.updates_html(kept["updates"]),
            position: gr.Dropdown([(f"{i}: {kept['pieces'][i]!r}", i) for i in spots], value=last,
                                  visible=len(spots) > 1),
            lens_view: render.lens_html(lens, last),
        }  # fmt: skip

    def _head_views(kept: dict, layer_: int, head_: int) -> dict:
        attention = kept["attention"].astype(np.float32)
        layer_ = int(min(max(layer_, 0), attention.shape[0] - 1))
        head_ = int(min(max(head_, 0), attention.shape[1] - 1))
        weights = attention[layer_, head_]
        return {grid: heatmaps.overview(attention, (layer_, head_)),
                heat: heatmaps.head_map(weights, kept["pieces"]),
                lines: render.lines_svg(weights, kept["pieces"], kept["causal"])}  # fmt: skip

    def pick(kept: dict | None, layer_: float, head_: float):
        if not kept:
            return {}
        return _head_views(kept, int(layer_), int(head_))

    def clicked(kept: dict | None, evt: gr.SelectData):
        if not kept or not isinstance(evt.index, list | tuple) or len(evt.index) < 2:
            return {}
        spot = heatmaps.cell_at(evt.index[0], evt.index[1], kept["layers"], kept["heads_per_layer"])
        if spot is None:
            return {}
        return {layer: spot[0], head: spot[1], **_head_views(kept, *spot)}

    def lens_at(kept: dict | None, spot):
        return render.lens_html((kept or {}).get("lens"), spot) if kept else ""

    shown = [summary, fields, tree, anatomy_code, codes, forward_code]
    looked = look.click(inspect, [model, text], shown, api_visibility="private", concurrency_id="inference",
                        concurrency_limit=2)  # fmt: skip
    looked.success(panel.fill, [model], panel.fill_outputs, api_visibility="private")
    passed = [state, tokens, layer, head, grid, heat, lines, heads_view, updates, position, lens_view]
    run.click(one_pass, [model, text], passed, api_visibility="private", concurrency_id="inference",
              concurrency_limit=2)  # fmt: skip
    text.submit(one_pass, [model, text], passed, api_visibility="private", concurrency_id="inference",
                concurrency_limit=2)  # fmt: skip
    for slider in (layer, head):
        slider.release(pick, [state, layer, head], [grid, heat, lines], api_visibility="private",
                       show_progress="hidden")  # fmt: skip
    grid.select(clicked, [state], [layer, head, grid, heat, lines], api_visibility="private", show_progress="hidden")
    position.change(lens_at, [state, position], lens_view, api_visibility="private", show_progress="hidden")
    view.change(lambda c, v: c.get(_VIEWS[v], ""), [codes, view], forward_code, api_visibility="private")

    @friendly
    def on_load(request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        choices = _choices(owner)
        first = "smollm2-135m-instruct" if "smollm2-135m-instruct" in choices else (choices[0] if choices else None)
        tokenizers = [("The model's own", "")] + [(t.id, t.id) for t in trained_tokenizers(owner)]
        return {model: gr.Dropdown(choices=choices, value=first), panel.tokenizer: gr.Dropdown(choices=tokenizers),
                **panel.runs(request, profile)}  # fmt: skip

    _api()
    return InsideTab(model, panel, on_load, [model, panel.tokenizer, *panel.runs_outputs])


def _api() -> None:
    @friendly
    def inspect_model(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """A model's anatomy: {"model", "total_parameters", "modules": [{"name", "type", "parameters",
        "trainable"}], "config", ...} with the share per part, the config explained and the memory it needs."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            return anatomy.inspect_model(model_id, owner)

    @friendly
    def attention(model_id: str, text: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """One forward pass: {"tokens", "attentions": [layer][head][query][key]} (each row sums to 1)."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            return forward.attention(model_id, text, owner)

    @friendly
    def logit_lens(model_id: str, text: str, top_k: float, request: gr.Request,
                   profile: gr.OAuthProfile | None) -> dict:  # fmt: skip
        """The top guesses after each layer (next token for causal models, the masked word for masked ones)."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            return forward.logit_lens(model_id, text, owner, top_k=int(top_k or 5))

    @friendly
    def build_estimate(model_id: str, changes: dict, tokenizer: str | None, request: gr.Request,
                       profile: gr.OAuthProfile | None) -> dict:  # fmt: skip
        """The parameters and memory of a model built from MODEL's config with CHANGES (nothing is allocated)."""
        return builder.estimate(model_id, changes or {}, owner_of(request, profile), tokenizer or None)

    kw = {"concurrency_id": "inference", "concurrency_limit": 2}
    gr.api(inspect_model, api_name="inspect_model", **kw)
    gr.api(attention, api_name="attention", **kw)
    gr.api(logit_lens, api_name="logit_lens", **kw)
    gr.api(build_estimate, api_name="build_estimate")
