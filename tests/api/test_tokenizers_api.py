"""The Tokenizers tab's API through gradio_client: tokenize, the catalog, analysis, comparing, batches, chat
templates, decoding, round trips, the vocabulary, training as a job, and mistakes said in one sentence."""

from __future__ import annotations

import json

import pytest
from gradio_client.exceptions import AppError

from tests.api.conftest import wait_job

pytestmark = pytest.mark.api

PACKAGED = {"all-minilm-l6-v2", "smollm2-135m-instruct", "unigram-demo"}


def assert_sentence(err: pytest.ExceptionInfo, *fragments: str) -> None:
    """An AppError whose message is a plain sentence (the fragments in it), with no traceback or class name."""
    assert isinstance(err.value, AppError), type(err.value)
    message = err.value.message
    for fragment in fragments:
        assert fragment in message, message
    assert "Traceback" not in message and 'File "' not in message, message
    assert "Error:" not in message, message
    assert "Something went wrong" not in message, message


def test_tokenize_gives_the_autotokenizer_ids(client):
    from transformers import AutoTokenizer

    from services.tokenizers.loading import load_tokenizer

    tokens = client.predict("all-minilm-l6-v2", "Hello world", True, api_name="/tokenize")
    expected = AutoTokenizer.from_pretrained(load_tokenizer("all-minilm-l6-v2").location)("Hello world")["input_ids"]
    assert [t["id"] for t in tokens] == expected
    assert [t["token"] for t in tokens] == ["[CLS]", "hello", "world", "[SEP]"]
    assert [t["special"] for t in tokens] == [True, False, False, True]
    assert [(t["start"], t["end"]) for t in tokens[1:3]] == [(0, 5), (6, 11)]
    assert set(tokens[0]) == {"id", "token", "start", "end", "special"}
    bare = client.predict("all-minilm-l6-v2", "Hello world", False, api_name="/tokenize")
    assert [t["id"] for t in bare] == expected[1:-1]


def test_the_catalog_lists_the_packaged_tokenizers_as_available(client):
    entries = client.predict(api_name="/tokenizers")
    assert all(set(e) == {"id", "kind", "source", "available", "description"} for e in entries)
    packaged = {e["id"]: e for e in entries if e["source"] == "packaged"}
    assert set(packaged) == PACKAGED
    assert all(e["available"] for e in packaged.values())
    assert packaged["all-minilm-l6-v2"]["kind"] == "WordPiece"
    assert packaged["unigram-demo"]["kind"] == "Unigram"


def test_analyze_counts_tokens_characters_and_bytes(client):
    data = client.predict("all-minilm-l6-v2", "Hello world", True, api_name="/analyze_tokens")
    assert data["counts"]["tokens"] == 4
    assert data["counts"]["special_tokens"] == 2 and data["counts"]["text_tokens"] == 2
    assert data["counts"]["characters"] == 11 and data["counts"]["bytes"] == 11
    assert data["counts"]["chars_per_token"] == 5.5 and data["counts"]["unknown"] == 0
    assert data["kind"] == "WordPiece" and data["vocab_size"] == 30522
    assert {"normalizer", "pre_tokenizer", "model", "post_processor"} <= set(data["stages"])
    # Multi-byte characters: counts in characters and UTF-8 bytes, and no token's readable form has "\ufffd".
    text = "naïve 🤗"
    smol = client.predict("smollm2-135m-instruct", text, False, api_name="/analyze_tokens")
    assert smol["counts"]["characters"] == len(text)
    assert smol["counts"]["bytes"] == len(text.encode("utf-8"))
    assert smol["byte_level"] is True
    assert all("\ufffd" not in t["readable"] for t in smol["tokens"])
    covered = "".join(text[s:e] for s, e, _ in smol["groups"])
    assert covered == text.replace(" ", "") or covered == text


def test_compare_tokenizers_side_by_side(client):
    text = "Unbelievable tokenizers"
    result = client.predict(
        ["all-minilm-l6-v2", "smollm2-135m-instruct", "unigram-demo"], text, False, api_name="/compare_tokenizers"
    )
    assert [r["tokenizer"] for r in result["rows"]] == ["all-minilm-l6-v2", "smollm2-135m-instruct", "unigram-demo"]
    assert result["text"] == text
    for row in result["rows"]:
        assert row["counts"]["tokens"] >= 2
        assert all(isinstance(c, int) for c in row["different_cuts"])
    assert {r["kind"] for r in result["rows"]} == {"WordPiece", "BPE", "Unigram"}
    assert any(r["different_cuts"] for r in result["rows"]), "these tokenizers cut this text differently"


def test_batch_encode_pads_to_max_length(client):
    texts = ["Hi", "A longer sentence here"]
    result = client.predict(
        "all-minilm-l6-v2", texts, {"padding": "max_length", "max_length": 8}, api_name="/batch_encode"
    )
    assert result["pad_token"] == "[PAD]"
    rows = result["rows"]
    assert len(rows) == 2
    assert all(len(r["input_ids"]) == 8 and len(r["attention_mask"]) == 8 for r in rows)
    assert rows[0]["input_ids"] == [101, 7632, 102, 0, 0, 0, 0, 0]
    assert rows[0]["attention_mask"] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert rows[1]["attention_mask"] == [1, 1, 1, 1, 1, 1, 0, 0]
    assert rows[0]["tokens"][-1] == "[PAD]" and rows[0]["word_ids"][1] == 0


def test_chat_template_renders_chatml(client):
    result = client.predict("smollm2-135m-instruct", "user: What is a token?", True, api_name="/chat_template")
    assert "<|im_start|>" in result["rendered"]
    assert "What is a token?" in result["rendered"]
    assert result["rendered"].rstrip().endswith("<|im_start|>assistant")
    assert result["counts"]["tokens"] == len(result["tokens"]) > 5
    no_prompt = client.predict("smollm2-135m-instruct", "user: What is a token?", False, api_name="/chat_template")
    assert not no_prompt["rendered"].rstrip().endswith("<|im_start|>assistant")


def test_decode_tokens(client):
    result = client.predict("all-minilm-l6-v2", "101, 7592, 2088, 102", False, api_name="/decode_tokens")
    assert result["text"] == "[CLS] hello world [SEP]"
    assert [p["token"] for p in result["pieces"]] == ["[CLS]", "hello", "world", "[SEP]"]
    skipped = client.predict("all-minilm-l6-v2", "[101, 7592, 2088, 102]", True, api_name="/decode_tokens")
    assert skipped["text"] == "hello world"


def test_round_trip_is_exact_or_explained(client):
    text = "Naïve Café 🤗"
    exact = client.predict("smollm2-135m-instruct", text, api_name="/round_trip")
    assert exact["exact"] is True and exact["decoded"] == text and exact["diffs"] == []
    lossy = client.predict("all-minilm-l6-v2", "Naïve Café", api_name="/round_trip")
    assert lossy["exact"] is False and lossy["decoded"] == "naive cafe"
    assert lossy["diffs"] and "accents stripped" in lossy["diffs"][0]["reason"]


def test_vocabulary_search(client):
    wordpiece = client.predict("all-minilm-l6-v2", "ing", api_name="/vocabulary")
    assert wordpiece["vocab_size"] == 30522 and wordpiece["kind"] == "WordPiece"
    assert wordpiece["match_count"] > 100 and len(wordpiece["matches"]) == 200
    assert {"id": 2075, "token": "##ing", "readable": "ing"} in wordpiece["matches"]
    assert {"token": "[CLS]", "id": 101} in wordpiece["special_tokens"]
    assert wordpiece["merges_total"] == 0
    bpe = client.predict("smollm2-135m-instruct", "ing", api_name="/vocabulary")
    assert bpe["merges_total"] > 1000
    assert any(m["result"] == "ing" for m in bpe["merges"])
    by_id = client.predict("all-minilm-l6-v2", "7592", api_name="/vocabulary")
    assert by_id["matches"][0] == {"id": 7592, "token": "hello", "readable": "hello"}


@pytest.mark.parametrize(
    ("endpoint", "args", "fragments"),
    [
        ("/decode_tokens", ("all-minilm-l6-v2", "99999999", False), ["99999999 is not in the vocabulary"]),
        ("/decode_tokens", ("all-minilm-l6-v2", "12, abc", False), ["'abc' is not a token id"]),
        ("/tokenize", ("what is this ???", "hi", True), ["is not a tokenizer this playground knows"]),
        ("/tokenize", ("nobody/no-such-tokenizer", "hi", True), ["offline"]),
        ("/tokenize", ("tokenizer:never-trained", "hi", True), ["You have no tokenizer called 'never-trained'"]),
        ("/chat_template", ("all-minilm-l6-v2", "user: hi", True), ["all-minilm-l6-v2 has no chat template"]),
        ("/chat_template", ("smollm2-135m-instruct", "hello there", True), ["Start each message with its role"]),
        ("/compare_tokenizers", (["all-minilm-l6-v2"], "hi", False), ["Pick at least two tokenizers"]),
        ("/batch_encode", ("all-minilm-l6-v2", ["a"] * 5, None), ["at most 4 texts"]),
        ("/batch_encode", ("all-minilm-l6-v2", ["a"], {"padding": "max_length"}), ["Set a maximum length"]),
        ("/train_tokenizer", ("not json",), ["must be a JSON object"]),
        ("/train_tokenizer", (json.dumps({"name": "a b"}),), ["cannot be a tokenizer name"]),
        ("/train_tokenizer", (json.dumps({"name": "x", "oops": 1}),), ["Unknown setting(s)", "oops"]),
    ],
)
def test_bad_requests_get_a_plain_sentence(client, endpoint, args, fragments):
    with pytest.raises(AppError) as err:
        client.predict(*args, api_name=endpoint)
    assert_sentence(err, *fragments)


def test_training_refuses_server_files(client):
    before = len(client.predict(api_name="/jobs"))
    config = json.dumps({"name": "x", "corpus": "files", "files": ["/etc/passwd"]})
    with pytest.raises(AppError) as err:
        client.predict(config, api_name="/train_tokenizer")
    assert_sentence(err, "upload files in the app")
    sneaky = json.dumps({"name": "x", "files": ["/etc/passwd"]})
    with pytest.raises(AppError) as err:
        client.predict(sneaky, api_name="/train_tokenizer")
    assert_sentence(err, "upload files in the app")
    assert len(client.predict(api_name="/jobs")) == before, "no job was started"


def test_train_a_tokenizer_as_a_job_that_only_its_owner_sees(client, other_client):
    job_id = client.predict(
        json.dumps({"name": "api-bpe", "model": "bpe", "vocab_size": 300}), api_name="/train_tokenizer"
    )
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job
    assert job["kind"] == "tokenizer-training"
    assert job["result"]["id"] == "tokenizer:api-bpe" and job["result"]["kind"] == "BPE"

    tokens = client.predict("tokenizer:api-bpe", "the tokenizer", False, api_name="/tokenize")
    assert tokens and all(t["id"] < 300 + 10 for t in tokens)
    assert "tokenizer:api-bpe" in {e["id"] for e in client.predict(api_name="/tokenizers")}

    # Another session is another owner: it neither lists nor loads that tokenizer.
    assert "tokenizer:api-bpe" not in {e["id"] for e in other_client.predict(api_name="/tokenizers")}
    with pytest.raises(AppError) as err:
        other_client.predict("tokenizer:api-bpe", "the tokenizer", False, api_name="/tokenize")
    assert_sentence(err, "You have no tokenizer called 'api-bpe'")

    # The same name twice is refused at once, without a job.
    with pytest.raises(AppError) as err:
        client.predict(json.dumps({"name": "api-bpe"}), api_name="/train_tokenizer")
    assert_sentence(err, "You already have a tokenizer called 'api-bpe'")


def test_decoding_a_lone_byte_piece_says_it_is_an_incomplete_sequence(client):
    pieces = client.predict("smollm2-135m-instruct", "🤗", False, api_name="/tokenize")
    assert len(pieces) > 1, "byte-level BPE splits the emoji over byte pieces"
    result = client.predict("smollm2-135m-instruct", str(pieces[0]["id"]), False, api_name="/decode_tokens")
    head = "🤗".encode()[: len(result["pieces"][0]["bytes"].split())]
    named = " ".join(f"0x{b:02X}" for b in head)
    assert result["pieces"][0]["incomplete"] is True
    assert result["pieces"][0]["note"] == f"an incomplete UTF-8 sequence: bytes {named}"
    assert "an incomplete UTF-8 sequence" in result["note"] and named in result["note"]
    ids = ", ".join(str(p["id"]) for p in pieces)
    whole = client.predict("smollm2-135m-instruct", ids, False, api_name="/decode_tokens")
    assert whole["text"] == "🤗" and whole["note"] == "" and whole["incomplete"] == []


def test_chat_template_counts_say_what_the_ratio_divides(client):
    result = client.predict("smollm2-135m-instruct", "user: What is a token?", True, api_name="/chat_template")
    counts = result["counts"]
    special_text = sum(t["end"] - t["start"] for t in result["tokens"] if t["special"])
    assert counts["special_tokens"] > 0 and special_text > 0
    assert counts["text_characters"] == counts["characters"] - special_text
    assert counts["chars_per_token"] == round(counts["text_characters"] / counts["text_tokens"], 2)
