"""How results are drawn: offsets, not string search; probabilities as colours; scores as bars."""

from __future__ import annotations

from tabs.pipelines import view


def test_ner_marks_the_right_copy_of_a_repeated_word():
    text = "Paris Hilton went to Paris."
    entities = [{"entity_group": "LOC", "score": 0.9, "word": "Paris", "start": 21, "end": 26}]
    marked = view.entities_highlight(text, entities)
    assert marked["entities"] == [{"entity": "LOC", "start": 21, "end": 26}]
    assert view.entities_table(entities) == [["LOC", "Paris", 0.9, 21, 26]]
    assert view.entity_group({"entity": "B-PER"}) == "PER"


def test_qa_highlight_uses_the_answer_offsets():
    context = "The tower is 330 metres tall. The old tower was 300 metres tall."
    answers = [{"answer": "300 metres", "score": 0.7, "start": 48, "end": 58}]
    marked = view.qa_highlight(context, answers)
    assert marked["entities"] == [{"entity": "answer", "start": 48, "end": 58}]
    assert context[48:58] == "300 metres"
    assert view.qa_highlight(context, [{"answer": "", "score": 0.9, "start": 0, "end": 0}])["entities"] == []


def test_scores_for_labels_from_every_task():
    assert view.as_label([{"label": "POSITIVE", "score": 0.9}, {"label": "NEGATIVE", "score": 0.1}]) == {
        "POSITIVE": 0.9,
        "NEGATIVE": 0.1,
    }
    assert view.as_label({"sequence": "x", "labels": ["a", "b"], "scores": [0.7, 0.3]}) == {"a": 0.7, "b": 0.3}
    assert view.as_label([{"token_str": " capital", "score": 0.5, "sequence": "..."}]) == {"capital": 0.5}


def test_token_view_colours_by_probability_and_lists_alternatives():
    tokens = [
        {"id": 1, "token": "Hello", "prob": 0.95, "special": False, "top": [{"token": "Hello", "prob": 0.95}]},
        {"id": 2, "token": "\n", "prob": 0.05, "special": False, "top": [{"token": "!", "prob": 0.6}]},
        {"id": 3, "token": "</s>", "prob": 0.9, "special": True, "top": []},
    ]
    html = view.token_html(tokens)
    assert html.count("class='pg-tok'") == 2 + 5, "two tokens (the special one hidden) plus the five-colour legend"
    assert "↵" in html, "a newline is made visible"
    assert "#c9ecd4" in html and "#fcd5d5" in html, "sure and unsure tokens get different colours"
    assert "&#x27;!&#x27;  60.0%" in html, "alternatives are listed in the hover title"


def test_similarity_matrix_table_numbers_the_sentences():
    headers, rows = view.matrix_table(
        ["a cat", "a kitten sitting on a very long mat in the sun today"], [[1, 0.8], [0.8, 1]]
    )
    assert headers == ["", "S", "1"]
    assert rows[0] == ["S. a cat", "100%", "80%"]
    assert rows[1][0].endswith("…") and len(rows[1][0]) <= 44
