"""bench.lora_quality's scoring on hand-made answers (no model, no training)."""

from __future__ import annotations

import pytest

from bench.lora_quality import exact_match, json_match, score

EXPECTED = '{"name": "Lena Novak", "age": 41, "city": "Ghent"}'


def test_exact_match_is_the_whole_answer_white_space_aside():
    assert exact_match("Sunday", "Sunday")
    assert exact_match("  Sunday\n", "Sunday")
    assert not exact_match("sunday", "Sunday")
    assert not exact_match("Sunday.", "Sunday")
    assert not exact_match("The answer is Sunday", "Sunday")
    assert not exact_match("", "Sunday")


def test_json_match_compares_the_parsed_object():
    assert json_match(EXPECTED, EXPECTED)
    assert json_match('{\n  "city": "Ghent",\n  "age": 41,\n  "name": "Lena Novak"\n}', EXPECTED)
    assert json_match('  {"name":"Lena Novak","age":41,"city":"Ghent"} ', EXPECTED)
    assert not json_match('{"name": "Lena Novak", "age": "41", "city": "Ghent"}', EXPECTED)  # a string, not 41
    assert not json_match('{"name": "Lena Novak", "age": 41}', EXPECTED)
    assert not json_match('{"name": "Lena Novak", "age": 41, "city": "Ghent", "job": null}', EXPECTED)
    assert not json_match('JSON:\n{"name": "Lena Novak", "age": 41, "city": "Ghent"}', EXPECTED)
    assert not json_match('```json\n{"name": "Lena Novak", "age": 41, "city": "Ghent"}\n```', EXPECTED)
    assert not json_match('{"name": "Lena Novak", "age": 41, "city": "Ghent"', EXPECTED)
    assert not json_match("", EXPECTED)


def test_exact_match_is_stricter_than_json_match():
    spaced = '{"name":"Lena Novak","age":41,"city":"Ghent"}'
    assert json_match(spaced, EXPECTED) and not exact_match(spaced, EXPECTED)


def test_score_is_the_share_that_matches():
    assert score(["Sunday", "Monday", "monday", "x"], ["Sunday", "Monday", "Monday", "Friday"], "exact") == 0.5
    answers = [EXPECTED, '{"city": "Ghent", "age": 41, "name": "Lena Novak"}', "no"]
    assert score(answers, [EXPECTED] * 3, "json") == pytest.approx(2 / 3)
    assert score(answers, [EXPECTED] * 3, "exact") == pytest.approx(1 / 3)
    assert score([], [], "exact") == 0.0
    with pytest.raises(ValueError):
        score(["a"], ["a", "b"], "exact")
    with pytest.raises(KeyError):
        score(["a"], ["a"], "rouge")


def _templates(sample: str, split: str) -> set[str]:
    """chat-extract's user sentences with the person's name, age and city taken out: its sentence patterns."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "assets/datasets/samples" / sample / f"{split}.jsonl"
    patterns = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        turns = json.loads(line)["messages"]
        person = json.loads(turns[-1]["content"])
        text = turns[-2]["content"].replace(person["name"], "{name}").replace(person["city"], "{city}")
        patterns.add(text.replace(str(person["age"]), "{age}"))
    return patterns


def test_chat_extract_tests_sentence_patterns_that_training_never_uses():
    train, test = _templates("chat-extract", "train"), _templates("chat-extract", "test")
    assert len(test) == 3 and len(train) >= 6
    assert not train & test
    # the person is not always named before the city and the age in training (the test puts the city first twice)
    assert any(t.index("{city}") < t.index("{name}") for t in train)
    assert any(t.index("{age}") < t.index("{name}") for t in train)
