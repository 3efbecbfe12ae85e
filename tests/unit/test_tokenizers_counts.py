"""Counts that say what they count (special tokens and the text they cover are left out of the per-token ratios,
on both sides), and decoding a byte piece that is not a whole character: named an incomplete UTF-8 sequence with
its bytes, instead of a bare replacement character."""

from __future__ import annotations

from services.tokenizers.analysis import analyze, tokenize
from services.tokenizers.tools import chat, decode

SMOL, MINILM = "smollm2-135m-instruct", "all-minilm-l6-v2"


def test_ratios_leave_out_special_tokens_and_their_text():
    text = "<|im_start|>user\nWhat is a token?<|im_end|>\n"
    counts = analyze(SMOL, text, add_special_tokens=False)["counts"]
    assert counts["special_tokens"] == 2
    assert counts["text_characters"] == len(text) - len("<|im_start|>") - len("<|im_end|>")
    assert counts["text_bytes"] == counts["text_characters"]  # all ASCII
    assert counts["chars_per_token"] == round(counts["text_characters"] / counts["text_tokens"], 2)
    assert counts["bytes_per_token"] == round(counts["text_bytes"] / counts["text_tokens"], 2)
    assert counts["characters"] == len(text)  # the total is still the whole text


def test_added_special_tokens_cover_no_text():
    counts = analyze(MINILM, "Hello world")["counts"]
    assert counts["special_tokens"] == 2 and counts["text_characters"] == counts["characters"] == 11
    assert counts["chars_per_token"] == 5.5


def test_chat_template_counts_are_consistent():
    counts = chat(SMOL, "system: Be brief.\nuser: What is a token?")["view"]["counts"]
    assert counts["special_tokens"] > 0
    assert counts["text_characters"] < counts["characters"]
    assert counts["chars_per_token"] == round(counts["text_characters"] / counts["text_tokens"], 2)


def _pieces(text: str) -> list[int]:
    return [t["id"] for t in tokenize(SMOL, text, add_special_tokens=False)]


def test_decoding_a_lone_byte_piece_names_its_bytes():
    ids = _pieces("🤗")  # F0 9F A4 97: byte-level BPE splits it over tokens
    assert len(ids) > 1
    result = decode(SMOL, ids[:1])
    piece = result["pieces"][0]
    raw = "🤗".encode()
    assert piece["incomplete"] is True
    assert piece["bytes"] and raw.hex(" ").upper().startswith(piece["bytes"])
    first = " ".join(f"0x{b}" for b in piece["bytes"].split())
    assert piece["note"] == f"an incomplete UTF-8 sequence: bytes {first}"
    assert result["incomplete"] == [piece["bytes"]]
    assert "incomplete UTF-8 sequence" in result["note"] and first in result["note"]


def test_the_whole_character_decodes_without_a_note():
    result = decode(SMOL, _pieces("🤗 ok"))
    assert result["text"] == "🤗 ok"
    assert result["incomplete"] == [] and result["note"] == ""
    assert any(p["incomplete"] for p in result["pieces"])  # each piece alone is still incomplete


def test_a_real_replacement_character_is_not_called_incomplete():
    result = decode(SMOL, _pieces("a \ufffd b"))
    assert result["text"] == "a \ufffd b"
    assert result["incomplete"] == [] and not any(p["incomplete"] for p in result["pieces"])


def test_an_incomplete_sequence_between_whole_text():
    ids = _pieces("A🤗")
    result = decode(SMOL, ids[:-1] + _pieces(" end"))
    assert len(result["incomplete"]) == 1 and "\ufffd" in result["text"]


def test_wordpiece_pieces_are_never_incomplete():
    result = decode(MINILM, "101, 7592, 102")
    assert result["incomplete"] == [] and not any(p["incomplete"] for p in result["pieces"])
