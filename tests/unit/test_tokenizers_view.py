"""The Tokenizers tab's HTML: every token string, tokenizer name and note is escaped wherever it is drawn, so
special tokens such as `<repo_name>` show as text instead of vanishing as HTML tags; counts say what they count;
compare rows carry the full tokenizer name."""

from __future__ import annotations

import pytest

from services.tokenizers.analysis import analyze, tokenize
from services.tokenizers.tools import batch_encode, chat, compare, decode, round_trip, vocabulary
from tabs.tokenizers import view

SMOL, MINILM = "smollm2-135m-instruct", "all-minilm-l6-v2"
TAG = "<repo_name>"
ESCAPED = "&lt;repo_name&gt;"


def _special_view() -> dict:
    """A view whose text holds SmolLM2's special tokens as text (as a chat template renders them)."""
    return analyze(SMOL, f"{TAG}hello<file_sep>world", add_special_tokens=False)


def test_the_text_has_the_special_tokens():
    tokens = tokenize(SMOL, f"{TAG}hello<file_sep>world", add_special_tokens=False)
    assert [t["token"] for t in tokens if t["special"]] == [TAG, "<file_sep>"]


@pytest.mark.parametrize("as_ids", [False, True])
def test_token_view_escapes_special_tokens(as_ids):
    html = view.spans_html(_special_view(), as_ids)
    assert TAG not in html and "<file_sep>" not in html
    if not as_ids:
        assert ESCAPED in html


def test_counts_stages_and_rows_escape():
    data = _special_view()
    assert TAG not in view.counts_html(data) + view.stages_html(data["stages"])
    assert ESCAPED in view.stages_html(data["stages"])


def test_compare_view_escapes_tokens_and_names():
    result = compare([SMOL, MINILM], f"{TAG} and <b>bold</b>")
    html = view.compare_html(result)
    assert TAG not in html and "<b>bold" not in html
    assert ESCAPED in html  # SmolLM2's one special token; MiniLM cuts it into pieces, each escaped


def test_batch_view_escapes_tokens():
    result = batch_encode(SMOL, [f"{TAG} one", "two"], padding="do_not_pad")
    html = view.batch_html(result)
    assert TAG not in html and ESCAPED in html


def test_chat_view_escapes_the_template_tokens():
    result = chat(SMOL, "user: <b>Hi</b>")
    html = view.counts_html(result["view"]) + view.spans_html(result["view"])
    assert "<|im_start|>" not in html and "<b>Hi" not in html
    assert "&lt;|im_start|&gt;" in html


def test_round_trip_view_escapes():
    text = "Naïve <repo_name> Café"
    html = view.round_trip_html(round_trip(MINILM, text), text)
    assert TAG not in html


def test_vocabulary_note_shows_special_tokens_as_text():
    result = vocabulary(SMOL, "repo")
    html = view.vocab_info_html(result, "repo")
    assert TAG not in html and "<file_sep>" not in html
    assert f"<code>{ESCAPED}</code> 3" in html and "<code>&lt;file_sep&gt;</code> 5" in html
    assert view.vocab_rows(result)[0][1] == TAG  # the table cells are text (the Dataframe does not parse HTML)


def test_decode_note_escapes():
    ids = [t["id"] for t in tokenize(SMOL, f"{TAG}🤗", add_special_tokens=False)][:2]
    html = view.decode_note_html(decode(SMOL, ids))
    assert TAG not in html


def test_compare_row_labels_carry_the_full_name():
    name = "tokenizer:" + "a-long-tokenizer-name-" * 3
    result = compare([SMOL, MINILM], "Hello world")
    result["rows"][0]["tokenizer"] = name
    html = view.compare_html(result)
    assert f">{name}</th>" in html and f"title='{name}'" in html
