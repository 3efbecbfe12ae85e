"""What the Fine-tune and LoRA tabs' forms share: the advanced-settings YAML, the evaluation split field, the live
command preview and job.yaml (also filled on page load), and the "Save config" file."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import yaml

from services.core.safety import load_yaml
from services.training import jobs as training_jobs


def advanced_settings(text: str | None) -> dict:
    """The "any TrainingArguments field" box as a dict, or a sentence that says what is wrong with it."""
    try:
        extra = load_yaml(text or "") or {}
    except yaml.YAMLError as err:
        raise gr.Error(f"The advanced settings are not valid YAML: {str(err).splitlines()[0]}") from err
    if not isinstance(extra, dict):
        raise gr.Error("The advanced settings must be 'name: value' lines.")
    return extra


def split_value(text: str | None, default: str) -> float | str:
    """The evaluation field: a share held out (a number) or a split's name."""
    value: float | str = (text or default).strip()
    with contextlib.suppress(ValueError):
        value = float(value)
    return value


def wire_preview(form: list, skip: gr.components.Component, config_of: Callable, command, config_text) -> None:
    """Keep the command preview and job.yaml in step with the form (every field but `skip`, the upload), and fill
    them on page load from the form's defaults."""

    def preview(d: dict):
        try:
            config, _ = config_of(d)
        except Exception as err:  # an unfinished form: show why instead of a config
            return {command: training_jobs.preview_command(), config_text: f"# Not ready: {err}"}
        return {command: training_jobs.preview_command(), config_text: config.to_yaml()}

    gr.on([c.change for c in form if c is not skip], preview, set(form), [command, config_text],
          api_visibility="private", show_progress="hidden")  # fmt: skip
    # No triggers and no inputs: runs on page load, so a fresh page shows the defaults' command and job.yaml.
    defaults = {c: c.value for c in form}
    gr.on(None, lambda: preview(defaults), None, [command, config_text], api_visibility="private",
          show_progress="hidden")  # fmt: skip


def save_config(text: str, name: str, prefix: str) -> str:
    """The job.yaml shown, as a file named after the model for the download button."""
    path = Path(tempfile.mkdtemp(prefix=f"{prefix}-config-")) / f"{(name or 'job').strip() or 'job'}.yaml"
    path.write_text(text or "", encoding="utf-8")
    return str(path)
