"""The Batch & padding panel of the Tokenizer explorer: texts padded, truncated and masked as a model gets them."""

from __future__ import annotations

import gradio as gr

from services.core.limits import get_limits
from services.tokenizers import tools
from tabs.session import friendly, owner_of
from tabs.tokenizers import view


def build(picker: gr.Dropdown, special: gr.Checkbox) -> gr.HTML:
    """The panel under the 'Batch & padding' tab; returns its output."""
    gr.Markdown(
        "How a batch reaches a model: texts padded to one length, cut to a maximum, with the masks that tell the "
        "model which positions are real."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            texts = gr.Textbox(
                label="Texts (one per line, up to 4)",
                value="A short one.\nA somewhat longer sentence that needs more tokens than the first.",
                lines=4,
            )
            pair = gr.Textbox(label="Paired text (optional: question + context style)", lines=1)
        with gr.Column(scale=2):
            padding = gr.Radio(["longest", "max_length", "do_not_pad"], value="longest", label="Padding")
            side = gr.Radio(["right", "left"], value="right", label="Padding side")
            truncation = gr.Dropdown(list(tools.TRUNCATION), value="do_not_truncate", label="Truncation")
            number = {"precision": 0, "minimum": 0, "maximum": get_limits().sequence_tokens}
            with gr.Row():
                max_length = gr.Number(label="Max length", value=16, **{**number, "minimum": 1})
                multiple = gr.Number(label="Pad to multiple of (0 = off)", value=0, **number)
                stride = gr.Number(label="Stride", value=0, **number)
            overflow = gr.Checkbox(label="Return overflowing tokens", value=False)
    encode_btn = gr.Button("Encode the batch", variant="primary")
    out = gr.HTML()

    @friendly
    def ui_batch(
        tokenizer,
        value,
        paired,
        pad,
        pad_side,
        trunc,
        length,
        mult,
        step,
        over,
        add,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ):
        result = tools.batch_encode(
            tokenizer,
            (value or "").splitlines(),
            pair=paired,
            padding=pad,
            padding_side=pad_side,
            max_length=length if (pad == "max_length" or trunc != "do_not_truncate") else None,
            pad_to_multiple_of=mult,
            truncation=trunc,
            stride=step,
            return_overflowing_tokens=over,
            add_special_tokens=add,
            owner=owner_of(request, profile),
        )
        return view.batch_html(result)

    encode_btn.click(
        ui_batch,
        [picker, texts, pair, padding, side, truncation, max_length, multiple, stride, overflow, special],
        [out],
        api_visibility="private",
    )
    return out
