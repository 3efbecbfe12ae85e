"""The data panel of the Fine-tune tab: a bundled sample, your file or a Hub dataset, previewed with column types
and checked (labels, gaps, token lengths) before anything trains."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from services.data import sources as datasets
from services.tokenizers.jobs import stage_uploads

KINDS = ["Bundled sample", "My file", "Hub dataset"]
FILE_TYPES = [".csv", ".tsv", ".json", ".jsonl", ".parquet", ".txt"]


@dataclass
class DataPanel:
    kind: gr.Radio
    sample: gr.Dropdown
    file: gr.File
    hub_id: gr.Textbox
    hub_config: gr.Textbox
    hub_split: gr.Textbox
    look: gr.Button
    table: gr.Dataframe
    columns: gr.HTML
    report: gr.HTML


def build(samples: list[str] | None = None, prefix: str = "ft") -> DataPanel:
    """The panel; `samples` lists the bundled samples offered (the Fine-tune tab's by default), the first chosen."""
    samples = samples or datasets.sample_ids()
    default = "samples/sentiment" if "samples/sentiment" in samples else samples[0]
    with gr.Group():
        with gr.Row(equal_height=True):
            kind = gr.Radio(KINDS, value=KINDS[0], label="1 · Data", scale=2)
            sample = gr.Dropdown(samples, value=default, label="Sample", scale=2)
            file = gr.File(label="CSV, TSV, JSON(L), Parquet or TXT", file_types=FILE_TYPES, visible=False, scale=2)
            hub_id = gr.Textbox(label="Hub dataset id", placeholder="e.g. stanfordnlp/imdb", visible=False, scale=2)
            hub_config = gr.Textbox(label="Configuration", visible=False, scale=1)
            hub_split = gr.Textbox(label="Split to train on", value="train", visible=False, scale=1)
            look = gr.Button("Look at the data", scale=1)
        with gr.Accordion("Preview and checks", open=True), gr.Row(equal_height=False):
            with gr.Column(scale=3):
                columns = gr.HTML("<div class='pg-empty'>Press “Look at the data” to see its rows.</div>")
                table = gr.Dataframe(interactive=False, max_height=260, wrap=True, visible=False)
            report = gr.HTML(elem_id=f"{prefix}-data-report")

    def on_kind(choice: str):
        return {
            sample: gr.update(visible=choice == KINDS[0]),
            file: gr.update(visible=choice == KINDS[1]),
            hub_id: gr.update(visible=choice == KINDS[2]),
            hub_config: gr.update(visible=choice == KINDS[2]),
            hub_split: gr.update(visible=choice == KINDS[2]),
        }

    kind.change(on_kind, [kind], [sample, file, hub_id, hub_config, hub_split], api_visibility="private")
    return DataPanel(kind, sample, file, hub_id, hub_config, hub_split, look, table, columns, report)


def source_of(kind: str, sample: str, file, hub_id: str, owner: str | None) -> str:
    """The dataset source the form means; an uploaded file is copied (checked, name sanitized) into your uploads."""
    if kind == KINDS[1]:
        if not file:
            raise gr.Error("Upload a data file first (CSV, TSV, JSON, JSONL, Parquet or TXT).")
        path = str(getattr(file, "name", file))
        if owner is None:  # only previewing the config: no copy yet
            return Path(path).name
        staged_dir = Path(path).parent
        if staged_dir.name.startswith("dataset-"):  # already one of the owner's uploads
            return path
        return stage_uploads([path], owner, purpose="dataset")[0]
    if kind == KINDS[2]:
        if not (hub_id or "").strip():
            raise gr.Error("Type the Hub dataset id, such as stanfordnlp/imdb.")
        return hub_id.strip()
    return sample or "samples/sentiment"


def preview_updates(panel: DataPanel, info: dict) -> dict:
    import pandas as pd

    splits = ", ".join(f"{name}: {n:,} rows" for name, n in info["splits"].items())
    kinds = "".join(f"<span class='pg-col'><b>{c['name']}</b> <i>{c['type']}</i></span>" for c in info["columns"])
    rows = [{k: _cell(v) for k, v in row.items()} for row in info["rows"]]
    return {
        panel.columns: f"<div class='pg-cols'><div>{splits}</div>{kinds}</div>",
        panel.table: gr.update(value=pd.DataFrame(rows), visible=True),
    }


def _cell(value, limit: int = 160) -> str:
    """A preview cell: lists joined, long texts cut so every column stays in view."""
    text = " ".join(map(str, value)) if isinstance(value, list) else "" if value is None else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
