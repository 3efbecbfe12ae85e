"""What the Pipelines results say about themselves (issue 14): long texts cut by similarity and zero-shot are
named, multi-label zero-shot by embedding is not read as confident, similarity has one numbering and one unit."""

from __future__ import annotations

import pytest

from services.pipelines import input_notice, run
from tabs.pipelines import view

LONG = "the movie was very good and i love it " * 40  # ~360 tokens; the tiny encoder reads 128
SHORT = "the movie was good"


def test_similarity_names_each_sentence_that_was_cut(tiny_models):
    encoder = str(tiny_models["bert-encoder"])
    inputs = {"source_sentence": SHORT, "sentences": [SHORT, LONG]}
    notice = input_notice("sentence-similarity", encoder, inputs)
    assert notice.startswith("sentence 2 is") or "sentence 2" in notice
    assert "only its first 126 tokens were used" in notice, "the model's 128 positions less [CLS] and [SEP]"
    both = input_notice("sentence-similarity", encoder, {"source_sentence": LONG, "sentences": [LONG]})
    assert "The source sentence and sentence 1 are longer" in both and "only their first" in both
    assert input_notice("sentence-similarity", encoder, {"source_sentence": SHORT, "sentences": [SHORT]}) is None


def test_zero_shot_and_feature_extraction_say_the_text_was_cut(tiny_models):
    encoder = str(tiny_models["bert-encoder"])
    notice = input_notice("zero-shot-classification", encoder, LONG)
    assert notice and "Your text is" in notice and "only its first" in notice
    assert input_notice("zero-shot-classification", encoder, SHORT) is None
    assert "only its first" in input_notice("feature-extraction", encoder, LONG)


def test_multi_label_by_embedding_keeps_unrelated_labels_low():
    result = run(
        "zero-shot-classification",
        "all-minilm-l6-v2",
        "The striker scored twice in the last ten minutes.",
        candidate_labels=["sports", "politics", "cooking"],
        multi_label=True,
    )
    scores = dict(zip(result["labels"], result["scores"], strict=True))
    assert result["labels"][0] == "sports"
    assert all(0 <= s <= 1 for s in scores.values())
    # (cos + 1) / 2 put every unrelated label near 50 %: now a label unrelated in meaning scores low.
    assert max(scores["politics"], scores["cooking"]) < 0.3
    assert scores["sports"] > 2 * max(scores["politics"], scores["cooking"]), "the right label stands out"


def test_similarity_bars_and_table_share_one_numbering_and_one_unit():
    sentences = ["A man plays guitar.", "Someone strums a guitar.", "A chef cooks.", "Music plays."]
    scores = [0.8, -0.05, 0.5]
    bars = view.similarity_bars(sentences[1:], scores)
    headers, rows = view.matrix_table(sentences, [[1, 0.8, -0.05, 0.5]] + [[0.5] * 4] * 3)
    assert list(bars) == ["1. Someone strums a guitar.", "2. A chef cooks.", "3. Music plays."], "as typed"
    assert bars["2. A chef cooks."] == 0.0, "bars start at 0"
    assert headers == ["", "S", "1", "2", "3"]
    assert [row[0].split(".")[0] for row in rows] == ["S", "1", "2", "3"]
    assert rows[0][1:] == ["100%", "80%", "-5%", "50%"], "percentages, like the bars"
    assert "%" in view.SIMILARITY_LABEL and "%" in view.MATRIX_LABEL


@pytest.mark.parametrize("multi", [False, True])
def test_the_zero_shot_code_scores_as_the_playground_does(multi):
    from services.pipelines.codegen import snippet

    code = snippet("zero-shot-classification", "all-minilm-l6-v2", "text", {"candidate_labels": ["a", "b"],
                   "multi_label": multi})  # fmt: skip
    assert ("softmax" in code) != multi and ("clamp(0, 1)" in code) == multi
