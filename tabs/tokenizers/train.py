"""The Train panel of the Tokenizer explorer: a BPE, WordPiece or Unigram tokenizer from scratch, as a job.

The form becomes a `TokenizerTrainConfig`; training runs as ``python -m services train-tokenizer CONFIG.yaml``
under the job manager; a timer follows it, and the result lands in the tokenizer pickers at once, ready to look
at, compare and download.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

import gradio as gr

from services.hub import cards
from services.jobs.manager import JobManager
from services.tokenizers import analysis as tk
from services.tokenizers import jobs as tokenizer_jobs
from services.tokenizers import training
from tabs import hub_push
from tabs.jobs import detail_html
from tabs.session import friendly, owner_of

CORPORA = {
    "Bundled corpus (170 KB, 12 topics, many languages)": "bundled",
    "My files": "files",
    "Hub dataset": "dataset",
}
# Sensible companions per model, set when the model changes (the user can still change them).
PRESETS = {
    "bpe": ("byte-level", "nfc", False),
    "wordpiece": ("bert", "bert", False),
    "unigram": ("metaspace", "nfkc", True),
}


def _folder_of(tokenizer_id: str, owner: str) -> str:
    """The folder of the tokenizer picked above; only tokenizers trained here can be pushed from this panel."""
    return str(tk.trained_folder(tokenizer_id, owner))


def choices(owner: str) -> list[tuple[str, str]]:
    """The tokenizer picker's options: every available tokenizer, with its kind when known."""
    return [(f"{e.id}  ·  {e.kind}" if e.kind else e.id, e.id) for e in tk.catalog(owner) if e.available]


def compare_choices(options: list[tuple[str, str]], main: str, chosen: list[str] | None) -> dict:
    """Compare-with's choices and value for the tokenizer picked above: every other one, never the main one."""
    return {
        "choices": [o for o in options if o[1] != main],
        "value": [c for c in (chosen or []) if c and c != main],
    }


@dataclass
class TrainPanel:
    job: gr.State
    timer: gr.Timer
    status: gr.HTML
    download: gr.DownloadButton


def build(manager: JobManager, picker: gr.Dropdown, compare_with: gr.Dropdown) -> TrainPanel:
    gr.Markdown(
        "Train a tokenizer from scratch on your own text. It appears in the tokenizer list as "
        "`tokenizer:<name>` as soon as it is ready, to look at, compare and download."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            name = gr.Textbox(label="Name", value="my-tokenizer", max_lines=1)
            model = gr.Radio(
                [("BPE", "bpe"), ("WordPiece", "wordpiece"), ("Unigram", "unigram")], value="bpe", label="Model"
            )
            with gr.Row():
                vocab_size = gr.Number(label="Vocabulary size", value=2000, precision=0, minimum=50, maximum=500_000)
                min_frequency = gr.Number(label="Min frequency", value=2, precision=0, minimum=1)
            specials = gr.Textbox(label="Special tokens (comma-separated; empty = the usual ones)", max_lines=1)
        with gr.Column(scale=1):
            pre = gr.Dropdown(list(training.PRE_TOKENIZERS), value="byte-level", label="Pre-tokenizer")
            norm = gr.Dropdown(list(training.NORMALIZATIONS), value="nfc", label="Normalisation")
            fallback = gr.Checkbox(label="Byte fallback (unknown characters become <0xNN> byte tokens)", value=False)
        with gr.Column(scale=1):
            corpus = gr.Radio(list(CORPORA), value=next(iter(CORPORA)), label="Train on")
            files = gr.File(
                label="Text files",
                file_count="multiple",
                file_types=list(training.TEXT_SUFFIXES + training.TABLE_SUFFIXES),
                visible=False,
            )
            column = gr.Textbox(label="Text column (tables and datasets)", value="text", visible=False)
            dataset = gr.Textbox(label="Hub dataset id", placeholder="e.g. stanfordnlp/imdb", visible=False)
            split = gr.Textbox(label="Split", value="train", visible=False)
    start = gr.Button("Train tokenizer", variant="primary")
    status = gr.HTML()
    download = gr.DownloadButton("Download tokenizer (.zip)", visible=False)
    hub_push.build(manager, _folder_of, picker, prepare=cards.write_tokenizer_card)
    panel = TrainPanel(gr.State(None), gr.Timer(1.0, active=False), status, download)

    def on_model(kind: str):
        p, n, fb = PRESETS[kind]
        return {pre: p, norm: n, fallback: fb}

    model.change(on_model, [model], [pre, norm, fallback], api_visibility="private")

    def on_corpus(label: str):
        kind = CORPORA[label]
        return {
            files: gr.update(visible=kind == "files"),
            column: gr.update(visible=kind != "bundled"),
            dataset: gr.update(visible=kind == "dataset"),
            split: gr.update(visible=kind == "dataset"),
        }

    corpus.change(on_corpus, [corpus], [files, column, dataset, split], api_visibility="private")

    @friendly
    def ui_train(data: dict, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        kind = CORPORA[data[corpus]]
        uploaded = [getattr(f, "name", f) for f in (data[files] or [])]
        if kind == "files" and not uploaded:
            raise gr.Error("Add at least one text file to train on (or choose the bundled corpus).")
        config = training.TokenizerTrainConfig(
            name=data[name],
            model=data[model],
            vocab_size=int(data[vocab_size] or 0),
            min_frequency=int(data[min_frequency] or 1),
            special_tokens=[s.strip() for s in (data[specials] or "").split(",") if s.strip()],
            normalization=data[norm],
            pre_tokenizer=data[pre],
            byte_fallback=bool(data[fallback]),
            corpus=kind,
            files=tokenizer_jobs.stage_uploads(uploaded, owner) if kind == "files" else [],
            text_column=(data[column] or "text").strip(),
            dataset=(data[dataset] or "").strip() if kind == "dataset" else "",
            dataset_split=(data[split] or "train").strip(),
        )
        job_id = tokenizer_jobs.start_training(manager, owner, config)
        return {
            panel.job: job_id,
            panel.timer: gr.Timer(active=True),
            status: "<div class='pg-empty'>Starting…</div>",
            download: gr.update(visible=False),
        }

    inputs = {
        name,
        model,
        vocab_size,
        min_frequency,
        specials,
        pre,
        norm,
        fallback,
        corpus,
        files,
        column,
        dataset,
        split,
    }
    start.click(ui_train, inputs, [panel.job, panel.timer, status, download], api_visibility="private")

    @friendly
    def poll(job_id: str | None, compare: list[str], request: gr.Request, profile: gr.OAuthProfile | None):
        if not job_id:
            return {panel.timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        update = {status: detail_html(record), panel.timer: gr.Timer(active=not record.done)}
        if record.status == "succeeded" and record.result:
            result = record.result
            note = f"<div class='pg-warn'>{html.escape(result['note'])}</div>" if result.get("note") else ""
            update[status] = (
                f"<div class='pg-ok'>✓ Trained <b>{html.escape(result['id'])}</b>: {html.escape(result['kind'])}, "
                f"{result['vocab_size']:,} "
                f"tokens from {result['corpus']['characters']:,} characters in {result['seconds']} s. "
                "It is now selected above, and the Tokens view shows how it cuts your text.</div>" + note
            )
            options = choices(owner)
            update[picker] = gr.update(choices=options, value=result["id"])
            update[compare_with] = gr.update(**compare_choices(options, result["id"], compare))
            update[download] = gr.update(value=str(tokenizer_jobs.archive(result["id"], owner)), visible=True)
        return update

    panel.timer.tick(
        poll,
        [panel.job, compare_with],
        [status, panel.timer, picker, compare_with, download],
        api_visibility="private",
        show_progress="hidden",
    )
    return panel


def api(manager: JobManager) -> None:
    @friendly
    def train_tokenizer(config: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Start training from a JSON config (name, model, vocab_size, corpus 'bundled' or 'dataset', ...).

        Returns the job id; follow it with /job. The result is `tokenizer:<name>`.
        """
        try:
            data = json.loads(config) if isinstance(config, str) else dict(config)
        except ValueError as err:
            raise gr.Error('The config must be a JSON object such as {"name": "my-bpe"}.') from err
        if not isinstance(data, dict):
            raise gr.Error('The config must be a JSON object such as {"name": "my-bpe"}.')
        if data.get("corpus") == "files" or data.get("files"):
            raise gr.Error("Through the API, train on the bundled corpus or a Hub dataset; upload files in the app.")
        return tokenizer_jobs.start_training(
            manager, owner_of(request, profile), training.TokenizerTrainConfig.from_dict(data)
        )

    gr.api(train_tokenizer, api_name="train_tokenizer")
