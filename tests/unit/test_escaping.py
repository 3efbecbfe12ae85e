"""What a visitor typed is shown as text, never as HTML (issue 14, item 5, in the views outside Tokenizers): the
Pipelines panel's heading and error line, and the error sentences the page shows in a modal."""

from __future__ import annotations

import gradio as gr
import pytest

from services.core.errors import PlaygroundError
from tabs.pipelines import run as pipelines_run
from tabs.pipelines.form import ResultPanel
from tabs.pipelines.view import MULTI_LABEL_NOTE
from tabs.session import friendly


def _panel() -> ResultPanel:
    return ResultPanel(*(object() for _ in range(7)))


def test_the_panel_heading_and_its_error_line_escape_what_was_typed():
    panel = _panel()
    shown = pipelines_run.failed(panel, "<img src=x>", "'<b>x' is not a model id")[panel.title]
    assert "<img" not in shown and "<b>" not in shown
    assert "&lt;img src=x&gt;" in shown and "&lt;b&gt;x" in shown
    assert "&lt;script&gt;" in pipelines_run.idle(panel, "<script>")[panel.title]


def test_the_multi_label_note_names_its_placeholder_as_text():
    assert "<label>" not in MULTI_LABEL_NOTE and "label" in MULTI_LABEL_NOTE


def test_error_sentences_reach_the_page_as_text():
    @friendly
    def refuse():
        raise PlaygroundError("'<b>x' is not a token id: use trained:<name>.")

    with pytest.raises(gr.Error) as caught:
        refuse()
    assert caught.value.message == "'&lt;b&gt;x' is not a token id: use trained:&lt;name&gt;."
