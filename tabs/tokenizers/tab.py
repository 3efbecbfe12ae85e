"""Tokenizer explorer tab: see how a tokenizer cuts text, compare tokenizers, look at batches, chat templates,
decoding and the vocabulary, and train a tokenizer of your own (`tabs.tokenizers.train`).

Callbacks turn widget values into calls to `services.tokenizers.analysis` / `services.tokenizers.tools` and draw the
result with `tabs.tokenizers.view`. Every action is also a public API (see `api()`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from services.jobs.manager import JobManager
from services.tokenizers import analysis as tk
from services.tokenizers import tools
from tabs.session import friendly, owner_of
from tabs.tokenizers import batch as tokenizers_batch
from tabs.tokenizers import train as tokenizers_train
from tabs.tokenizers import view
from tabs.tokenizers.train import choices, compare_choices

EXAMPLE = (
    "Tokenizers don't read words: they cut text into pieces. Unbelievable! 🤗 naïve café, Привет, 3.14159\n"
    "👩‍💻 🇫🇷 and e\u0301 look like one character each but are several."
)
CONVERSATION = (
    "system: You are a helpful assistant.\nuser: What is a token?\nassistant: A piece of text.\nuser: Thanks!"
)
TABLE_HEADERS = ["#", "id", "token (vocabulary)", "stands for", "start", "end", "bytes", ""]
DEFAULT = "smollm2-135m-instruct"


@dataclass
class TokenizersTab:
    picker: gr.Dropdown
    text: gr.Textbox
    compare_with: gr.Dropdown
    on_load: Callable  # the visitor's own tokenizers in the pickers + the example view; app.py runs it on page load
    load_inputs: list
    load_outputs: list


def build(manager: JobManager) -> TokenizersTab:
    gr.Markdown(
        "See how a tokenizer cuts text into **tokens**, the pieces a model reads. Pick a tokenizer, type anything "
        "(emoji, accents, other scripts, code) and compare how different tokenizers cut the same text."
    )
    with gr.Row(equal_height=True):
        picker = gr.Dropdown(
            label="Tokenizer",
            choices=[(DEFAULT, DEFAULT)],
            value=DEFAULT,
            allow_custom_value=True,
            info="packaged, trained here (tokenizer:<name>), a Hub id, or a model you fine-tuned",
            scale=3,
        )
        special = gr.Checkbox(label="Add special tokens", value=True, scale=1)
        show_ids = gr.Checkbox(label="Show ids", value=False, scale=1)
    text = gr.Textbox(label="Text", value=EXAMPLE, lines=4, max_lines=14)
    with gr.Row():
        go = gr.Button("Tokenize", variant="primary")
    with gr.Tabs():
        with gr.Tab("Tokens"):
            counts = gr.HTML()
            spans = gr.HTML(elem_id="tok-spans")
            markers = gr.Markdown(elem_classes=["pg-note"])
            with gr.Accordion(
                "Pipeline stages: normalizer → pre-tokenizer → model → post-processor (the first 5,000 characters)",
                open=False,
            ):
                stages = gr.HTML()
            with gr.Accordion("Token table (the first 500 tokens)", open=False):
                table = gr.Dataframe(headers=TABLE_HEADERS, interactive=False, wrap=True, max_height=420)
        with gr.Tab("Compare"):
            gr.Markdown("Pick 1-3 more tokenizers; the one chosen above is always included.")
            with gr.Row(equal_height=True):
                compare_with = gr.Dropdown(
                    label="Compare with",
                    multiselect=True,
                    max_choices=3,
                    allow_custom_value=True,
                    value=["all-minilm-l6-v2", "unigram-demo"],
                    choices=["all-minilm-l6-v2", "unigram-demo"],
                    scale=4,
                    elem_id="tok-compare-with",
                )
                compare_btn = gr.Button("Compare", variant="primary", scale=1)
            compare_table = gr.Dataframe(
                headers=["tokenizer", "kind", "vocab", "tokens", "chars/token", "bytes/token", "unknown", "own cuts"],
                interactive=False,
                visible=False,
            )
            compare_view = gr.HTML()
        with gr.Tab("Batch & padding"):
            batch_box = tokenizers_batch.build(picker, special)
        with gr.Tab("Chat template"):
            with gr.Row(equal_height=False):
                conversation = gr.Textbox(
                    label="Conversation (one message per line: role: text)", value=CONVERSATION, lines=5, scale=3
                )
                with gr.Column(scale=1):
                    gen_prompt = gr.Checkbox(label="Add the assistant's turn (generation prompt)", value=True)
                    chat_btn = gr.Button("Render", variant="primary")
            chat_text = gr.Code(label="What the model receives", language=None, interactive=False)
            chat_view = gr.HTML()
        with gr.Tab("Decode & round trip"):
            with gr.Row(equal_height=True):
                ids = gr.Textbox(label="Token ids", placeholder="e.g. 1, 2, 100 or [101, 7592, 102]", scale=3)
                skip = gr.Checkbox(label="Skip special tokens", value=False, scale=1)
                decode_btn = gr.Button("Decode", variant="primary", scale=1)
            decoded = gr.Textbox(label="Text", interactive=False, lines=2)
            decode_note = gr.HTML()
            pieces = gr.Dataframe(headers=["id", "token", "text"], interactive=False, visible=False, max_height=300)
            gr.Markdown("**Round trip**: does `decode(encode(text))` give back the text above, and if not, why?")
            trip_btn = gr.Button("Check the round trip")
            trip = gr.HTML()
        with gr.Tab("Vocabulary"):
            with gr.Row(equal_height=True):
                query = gr.Textbox(label="Search", placeholder="a piece of text (ing, Ġthe, ▁) or an id", scale=4)
                vocab_btn = gr.Button("Search", variant="primary", scale=1)
            vocab_info = gr.HTML()
            with gr.Row(equal_height=False):
                vocab_table = gr.Dataframe(
                    headers=["id", "token", "stands for"], interactive=False, max_height=420, label="Tokens"
                )
                merges = gr.Dataframe(
                    headers=["rank", "left", "right", "result"],
                    interactive=False,
                    max_height=420,
                    label="BPE merges (in the order they were learned)",
                    visible=False,
                )
        with gr.Tab("Train"):
            train_panel = tokenizers_train.build(manager, picker, compare_with)

    @friendly
    def ui_view(
        tokenizer: str, value: str, add: bool, as_ids: bool, request: gr.Request, profile: gr.OAuthProfile | None
    ):
        owner = owner_of(request, profile)
        data = tk.analyze(tokenizer, value or "", add, owner=owner)
        loaded = tk.load_tokenizer(tokenizer, owner)
        return {
            counts: view.counts_html(data),
            spans: view.spans_html(data, as_ids),
            markers: view.markers_md(tk.explain_markers(loaded)),
            stages: view.stages_html(data["stages"]),
            table: view.token_rows(data),
        }

    view_inputs = [picker, text, special, show_ids]
    view_outputs = [counts, spans, markers, stages, table]
    for trigger in (go.click, text.submit, picker.change, special.change, show_ids.change):
        trigger(ui_view, view_inputs, view_outputs, api_visibility="private", concurrency_id="tokenizers")

    @friendly
    def ui_compare(
        tokenizer: str, others: list[str], value: str, add: bool, request: gr.Request, profile: gr.OAuthProfile | None
    ):
        names = [tokenizer] + [o for o in (others or []) if o and o != tokenizer]
        result = tools.compare(names, value, add, owner=owner_of(request, profile))
        return {
            compare_table: gr.update(value=view.compare_rows(result), visible=True),
            compare_view: view.compare_html(result),
        }

    compare_btn.click(
        ui_compare,
        [picker, compare_with, text, special],
        [compare_table, compare_view],
        api_visibility="private",
        concurrency_id="tokenizers",
    )

    @friendly
    def ui_chat(
        tokenizer: str,
        convo: str,
        add_prompt: bool,
        as_ids: bool,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ):
        result = tools.chat(tokenizer, convo, add_prompt, owner=owner_of(request, profile))
        return {
            chat_text: result["rendered"],
            chat_view: view.counts_html(result["view"]) + view.spans_html(result["view"], as_ids),
        }

    chat_btn.click(
        ui_chat, [picker, conversation, gen_prompt, show_ids], [chat_text, chat_view], api_visibility="private"
    )

    @friendly
    def ui_decode(
        tokenizer: str, value: str, skip_special: bool, request: gr.Request, profile: gr.OAuthProfile | None
    ):
        result = tools.decode(tokenizer, value, skip_special, owner=owner_of(request, profile))
        return {
            decoded: result["text"],
            decode_note: view.decode_note_html(result),
            pieces: gr.update(value=view.decode_rows(result), visible=True),
        }

    for trigger in (decode_btn.click, ids.submit):
        trigger(ui_decode, [picker, ids, skip], [decoded, decode_note, pieces], api_visibility="private")

    @friendly
    def ui_trip(tokenizer: str, value: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        return view.round_trip_html(tools.round_trip(tokenizer, value, owner=owner_of(request, profile)), value or "")

    trip_btn.click(ui_trip, [picker, text], [trip], api_visibility="private", concurrency_id="tokenizers")

    @friendly
    def ui_vocab(tokenizer: str, value: str, request: gr.Request, profile: gr.OAuthProfile | None):
        result = tools.vocabulary(tokenizer, value, owner=owner_of(request, profile))
        merge_rows = [[m["rank"], m["left"], m["right"], m["result"]] for m in result["merges"]]
        return {
            vocab_info: view.vocab_info_html(result, value),
            vocab_table: view.vocab_rows(result),
            merges: gr.update(value=merge_rows, visible=bool(result["merges_total"])),
        }

    vocab_outputs = [vocab_info, vocab_table, merges]
    vocab_btn.click(ui_vocab, [picker, query], vocab_outputs, api_visibility="private")
    query.submit(ui_vocab, [picker, query], vocab_outputs, api_visibility="private")

    @friendly
    def ui_compare_choices(tokenizer: str, others: list[str], request: gr.Request, profile: gr.OAuthProfile | None):
        """Compare-with offers the other tokenizers: the one now picked above is always included already."""
        return gr.update(**compare_choices(choices(owner_of(request, profile)), tokenizer, others))

    picker.change(ui_compare_choices, [picker, compare_with], [compare_with], api_visibility="private")

    @friendly
    def on_load(
        tokenizer: str,
        value: str,
        add: bool,
        as_ids: bool,
        others: list[str],
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ):
        """The visitor's own tokenizers in the pickers, and the example already tokenized."""
        options = choices(owner_of(request, profile))
        update = ui_view(tokenizer, value, add, as_ids, request, profile)
        pick = compare_choices(options, tokenizer, others)
        return {**update, picker: gr.update(choices=options), compare_with: gr.update(**pick)}

    api(manager)
    del batch_box, train_panel
    load_inputs, load_outputs = [*view_inputs, compare_with], [*view_outputs, picker, compare_with]
    return TokenizersTab(picker, text, compare_with, on_load, load_inputs, load_outputs)


def api(manager: JobManager) -> None:
    """Public endpoints: one per action of the tab (names listed in the README)."""

    @friendly
    def tokenize(
        tokenizer: str, text: str, add_special_tokens: bool, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> list[dict]:
        """The `services.tokenizers.analysis.tokenize` contract: one {id, token, start, end, special} per token."""
        return tk.tokenize(tokenizer, text, add_special_tokens, owner=owner_of(request, profile))

    @friendly
    def list_tokenizers(request: gr.Request, profile: gr.OAuthProfile | None) -> list[dict]:
        """Every tokenizer you can pick (packaged, yours, Hub ones when online)."""
        return [e.to_dict() for e in tk.catalog(owner_of(request, profile))]

    @friendly
    def analyze_text(
        tokenizer: str, text: str, add_special_tokens: bool, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> dict:
        """Tokens with bytes and readable forms, character groups, counts and pipeline stages."""
        return tk.analyze(tokenizer, text, add_special_tokens, owner=owner_of(request, profile))

    @friendly
    def compare_tokenizers(
        tokenizers: list[str],
        text: str,
        add_special_tokens: bool,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ) -> dict:
        """2-4 tokenizers on one text: counts and token groups with the cuts where they differ."""
        return tools.compare(tokenizers, text, add_special_tokens, owner=owner_of(request, profile))

    @friendly
    def batch_encode(
        tokenizer: str, texts: list[str], settings: dict | None, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> dict:
        """Encode 1-4 texts as a batch; `settings` (an object or its JSON): pair, padding, max_length, stride, ..."""
        settings = tools.batch_settings(settings)
        return tools.batch_encode(tokenizer, texts, **settings, owner=owner_of(request, profile))

    @friendly
    def chat_template(
        tokenizer: str,
        conversation: str,
        add_generation_prompt: bool,
        request: gr.Request,
        profile: gr.OAuthProfile | None,
    ) -> dict:
        """A conversation ('user: Hi' lines or JSON messages) rendered through the tokenizer's chat template."""
        result = tools.chat(tokenizer, conversation, add_generation_prompt, owner=owner_of(request, profile))
        return {"rendered": result["rendered"], "tokens": result["view"]["tokens"], "counts": result["view"]["counts"]}

    @friendly
    def decode_tokens(
        tokenizer: str, ids: str, skip_special_tokens: bool, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> dict:
        """Ids ('101, 7592' or a JSON list) back to text, with each id's piece."""
        return tools.decode(tokenizer, ids, skip_special_tokens, owner=owner_of(request, profile))

    @friendly
    def round_trip(tokenizer: str, text: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """Whether decode(encode(text)) == text, and each place that differs with the reason."""
        return tools.round_trip(tokenizer, text, owner=owner_of(request, profile))

    @friendly
    def vocabulary(tokenizer: str, query: str, request: gr.Request, profile: gr.OAuthProfile | None) -> dict:
        """Vocabulary size, special tokens, tokens matching a text or id, and BPE merges."""
        return tools.vocabulary(tokenizer, query, owner=owner_of(request, profile))

    gr.api(tokenize, api_name="tokenize", concurrency_id="tokenizers", concurrency_limit=4)
    gr.api(list_tokenizers, api_name="tokenizers")
    gr.api(analyze_text, api_name="analyze_tokens", concurrency_id="tokenizers")
    gr.api(compare_tokenizers, api_name="compare_tokenizers", concurrency_id="tokenizers")
    gr.api(batch_encode, api_name="batch_encode")
    gr.api(chat_template, api_name="chat_template")
    gr.api(decode_tokens, api_name="decode_tokens")
    gr.api(round_trip, api_name="round_trip", concurrency_id="tokenizers")
    gr.api(vocabulary, api_name="vocabulary")
    tokenizers_train.api(manager)
