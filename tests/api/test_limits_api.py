"""The measured attacks of the security review, through gradio_client against the launched app: each is answered
with a sentence that names the cap (an AppError whose message is that sentence), and the app serves the next
request right after."""

from __future__ import annotations

import json

import pytest
from gradio_client.exceptions import AppError

pytestmark = pytest.mark.api

MINILM, SMOL = "all-minilm-l6-v2", "smollm2-135m-instruct"
LONG_ID = "a/" + "b" * 4_998  # a 5,000-character model id


def assert_sentence(err: pytest.ExceptionInfo, *fragments: str) -> str:
    """An AppError whose message is a plain sentence (the fragments in it), with no traceback or class name."""
    assert isinstance(err.value, AppError), type(err.value)
    message = err.value.message
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message and 'File "' not in message, message
    assert "Error:" not in message and "Something went wrong" not in message, message
    return message


def still_serves(client) -> None:
    tokens = client.predict(MINILM, "Hello world", True, api_name="/tokenize")
    assert [t["token"] for t in tokens] == ["[CLS]", "hello", "world", "[SEP]"]


def test_tokenize_refuses_5_mb_of_text(client):
    with pytest.raises(AppError) as err:
        client.predict(SMOL, "a" * 5_000_000, True, api_name="/tokenize")
    assert_sentence(err, "5,000,000", "200,000")
    still_serves(client)


def test_vocabulary_refuses_a_1_mb_query(client):
    with pytest.raises(AppError) as err:
        client.predict(SMOL, "ing" * 350_000, api_name="/vocabulary")
    assert_sentence(err, "1,050,000", "200")
    still_serves(client)


@pytest.mark.parametrize(
    ("settings", "fragments"),
    [
        ({"pad_to_multiple_of": 1_000_000}, ("8,192", "1,000,000")),
        ('{"pad_to_multiple_of": 1000000}', ("8,192", "1,000,000")),
        ("padding=longest", ("not valid JSON",)),
        ({"warp_speed": 9}, ("Unknown batch setting", "warp_speed")),
    ],
)
def test_batch_encode_settings_are_capped_and_json_is_read(client, settings, fragments):
    with pytest.raises(AppError) as err:
        client.predict(MINILM, ["Hi", "A longer text"], settings, api_name="/batch_encode")
    assert_sentence(err, *fragments)
    still_serves(client)


def test_batch_encode_takes_settings_as_a_json_string(client):
    settings = json.dumps({"padding": "max_length", "max_length": 8})
    result = client.predict(MINILM, ["Hi", "A longer sentence here"], settings, api_name="/batch_encode")
    assert [len(r["input_ids"]) for r in result["rows"]] == [8, 8]
    assert result["rows"][0]["input_ids"] == [101, 7632, 102, 0, 0, 0, 0, 0]


def test_zero_shot_with_20000_labels_is_refused(client):
    for labels in ([f"label {i}" for i in range(20_000)], ",".join(["x"] * 20_000)):
        with pytest.raises(AppError) as err:
            client.predict("zero-shot-classification", MINILM, "The striker scored twice",
                           json.dumps({"candidate_labels": labels}), api_name="/run")  # fmt: skip
        message = assert_sentence(err)
        if isinstance(labels, str):  # short enough for the settings: the label cap answers
            assert "20,000" in message and "50" in message, message
    still_serves(client)


def test_zero_shot_with_temperature_0_is_a_sentence_not_null_scores(client):
    params = {"candidate_labels": ["sports", "cooking"]}
    with pytest.raises(AppError) as err:
        client.predict("zero-shot-classification", MINILM, "The striker scored twice",
                       json.dumps({**params, "temperature": 0}), api_name="/run")  # fmt: skip
    assert_sentence(err, "temperature", "0.001")
    result = client.predict("zero-shot-classification", MINILM, "The striker scored twice",
                            json.dumps({**params, "temperature": 0.01}), api_name="/run")  # fmt: skip
    assert result["labels"][0] == "sports" and all(isinstance(s, float) for s in result["scores"])


def test_generate_refuses_a_million_new_tokens(client, tiny_models):
    with pytest.raises(AppError) as err:
        client.predict(str(tiny_models["gpt2"]), "the movie", '{"max_new_tokens": 1000000}', api_name="/generate")
    assert_sentence(err, "max_new_tokens", "1,024", "1,000,000")
    outputs = list(client.submit(str(tiny_models["gpt2"]), "the movie", '{"max_new_tokens": 4}', api_name="/generate"))
    assert outputs


def test_a_5000_character_model_id_gets_a_sentence(client):
    with pytest.raises(AppError) as err:
        client.predict("sentiment-analysis", LONG_ID, "good", None, api_name="/run")
    assert_sentence(err, "5,000", "200")
    with pytest.raises(AppError) as err:
        client.predict(LONG_ID, "good", True, api_name="/tokenize")
    assert_sentence(err, "5,000", "200")
    still_serves(client)
