"""Tokenizer services on the three offline tokenizers: the tokenize contract (ids exactly as AutoTokenizer gives
them), the explorer's analysis (counts, bytes, grapheme groups, stages), the tools (decode, round trip, batches,
chat templates, vocabulary, compare) and loading mistakes said in one sentence."""

from __future__ import annotations

import functools
import itertools

import pytest
import regex

from services.core.errors import ModelNotFound, ModelUnavailable, PlaygroundError
from services.tokenizers.analysis import (
    RENDER_CHARS,
    STAGE_CHARS,
    TokenizerError,
    analyze,
    catalog,
    explain_markers,
    load_tokenizer,
    stages,
    tokenize,
)
from services.tokenizers.tools import (
    batch_encode,
    chat,
    compare,
    decode,
    parse_conversation,
    parse_ids,
    round_trip,
    vocabulary,
)

MINILM, SMOL, UNIGRAM = "all-minilm-l6-v2", "smollm2-135m-instruct", "unigram-demo"
TOKENIZERS = (MINILM, SMOL, UNIGRAM)
ALICE, BOB = "anon:alice", "anon:bob"

LONG = " ".join(
    f"Sentence {i}: tokenizers split café, naïve words, 日本語 and 👍 in different ways." for i in range(60)
)
TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog.",
    "empty": "",
    "zwj-emoji": "👩‍💻",
    "zwj-in-text": "I 👩‍💻 all day",
    "flag": "🇫🇷",
    "flag-in-text": "Vive la 🇫🇷 !",
    "combining": "e\u0301",
    "combining-in-text": "cafe\u0301 and nai\u0308ve",
    "rtl": "مرحبا بالعالم שלום עולם",
    "cjk": "日本語のテキスト 中文 한국어",
    "zero-width": "zero\u200bwidth\u200b",
    "whitespace": "tabs\tand\nnew\r\nlines  \t ",
    "long": LONG,
}
MULTI_BYTE = [
    "👩‍💻",
    "🇫🇷",
    "e\u0301",
    "I 👩‍💻 in 🇫🇷 café",
    "مرحبا שלום",
    "日本語",
    "a\u200bb",
    "x\u0301\u0302 👨‍👩‍👧‍👦",
]


@functools.cache
def reference(tokenizer: str):
    """The transformers tokenizer a user would load from the same files."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(load_tokenizer(tokenizer).location)


def grapheme_bounds(text: str) -> set[int]:
    return {0} | {m.end() for m in regex.finditer(r"\X", text)}


# ---- the contract ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("add_special_tokens", [True, False], ids=["special", "bare"])
@pytest.mark.parametrize("name", list(TEXTS))
@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_tokenize_gives_exactly_the_autotokenizer_ids(tokenizer, name, add_special_tokens):
    text = TEXTS[name]
    tokens = tokenize(tokenizer, text, add_special_tokens)
    expected = reference(tokenizer)(text, add_special_tokens=add_special_tokens, return_special_tokens_mask=True)
    assert [t["id"] for t in tokens] == expected["input_ids"]
    if name == "long":
        assert len(tokens) > 512
    for t in tokens:
        assert set(t) == {"id", "token", "start", "end", "special"}
        assert type(t["id"]) is int and isinstance(t["token"], str) and t["token"]
        assert type(t["start"]) is int and type(t["end"]) is int and type(t["special"]) is bool
        assert 0 <= t["start"] <= t["end"] <= len(text)
    starts = [t["start"] for t in tokens]
    assert starts == sorted(starts)
    # Tokens the post-processor added stand for no text: start == end, flagged special.
    added = [t for t, m in zip(tokens, expected["special_tokens_mask"], strict=True) if m]
    assert all(t["special"] and t["start"] == t["end"] for t in added)
    if not add_special_tokens:
        assert not added
    if text.strip() and not text.isspace():
        assert any(not t["special"] and t["end"] > t["start"] for t in tokens), "some token covers the text"


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_special_tokens_are_added_where_the_tokenizer_adds_them(tokenizer):
    with_special = tokenize(tokenizer, "Hello world")
    bare = tokenize(tokenizer, "Hello world", add_special_tokens=False)
    assert [t for t in with_special if not t["special"]] == bare
    added = {MINILM: ["[CLS]", "[SEP]"], SMOL: [], UNIGRAM: ["</s>"]}[tokenizer]
    assert [t["token"] for t in with_special if t["special"]] == added


def test_minilm_tokens_and_offsets():
    tokens = tokenize(MINILM, "Hello world")
    assert [(t["token"], t["start"], t["end"], t["special"]) for t in tokens] == [
        ("[CLS]", 0, 0, True),
        ("hello", 0, 5, False),
        ("world", 6, 11, False),
        ("[SEP]", 11, 11, True),
    ]
    # [UNK] is unknown, not special; it covers the emoji it replaced.
    unk = [t for t in tokenize(MINILM, "Hi 👩‍💻") if t["token"] == "[UNK]"]
    assert unk == [{"id": 100, "token": "[UNK]", "start": 3, "end": 6, "special": False}]


def test_tokenize_refuses_a_text_that_is_not_a_string():
    with pytest.raises(TokenizerError, match="must be a string"):
        tokenize(MINILM, None)  # type: ignore[arg-type]


# ---- analyze --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
def test_analyze_counts_cover_the_text(tokenizer):
    text = "Héllo 👩‍💻 and 🇫🇷, 日本語!"
    view = analyze(tokenizer, text)
    counts = view["counts"]
    assert counts["characters"] == len(text)
    assert counts["bytes"] == len(text.encode("utf-8"))
    assert counts["tokens"] == len(tokenize(tokenizer, text)) == len(view["tokens"])
    assert counts["text_tokens"] + counts["special_tokens"] == counts["tokens"]
    assert counts["special_tokens"] == sum(t["special"] for t in view["tokens"])
    assert counts["chars_per_token"] == round(len(text) / counts["text_tokens"], 2)
    assert counts["bytes_per_token"] == round(len(text.encode()) / counts["text_tokens"], 2)
    assert counts["unknown"] == sum(t["unknown"] for t in view["tokens"])
    assert [t["index"] for t in view["tokens"]] == list(range(len(view["tokens"])))
    assert [t["id"] for t in view["tokens"]] == [t["id"] for t in tokenize(tokenizer, text)]
    assert view["text"] == text and view["truncated_view"] is False
    assert view["tokenizer"] == tokenizer and view["vocab_size"] == load_tokenizer(tokenizer).vocab_size


def test_analyze_counts_unknown_tokens():
    assert analyze(MINILM, "I like 👍 and 👩‍💻")["counts"]["unknown"] == 2
    assert analyze(SMOL, "I like 👍 and 👩‍💻")["counts"]["unknown"] == 0
    unk = [t for t in analyze(MINILM, "I like 👍")["tokens"] if t["unknown"]]
    assert len(unk) == 1 and unk[0]["text"] == "👍" and unk[0]["readable"] == "👍" and not unk[0]["special"]
    assert unk[0]["bytes"] == "F0 9F 91 8D"


def test_analyze_of_an_empty_text():
    view = analyze(MINILM, "")
    assert view["counts"]["characters"] == 0 and view["counts"]["chars_per_token"] == 0.0
    assert [t["token"] for t in view["tokens"]] == ["[CLS]", "[SEP]"]
    assert view["groups"] == []


@pytest.mark.parametrize("tokenizer", TOKENIZERS)
@pytest.mark.parametrize("text", MULTI_BYTE)
def test_readable_forms_never_show_the_replacement_character(tokenizer, text):
    view = analyze(tokenizer, text, add_special_tokens=False)
    assert all("\ufffd" not in t["readable"] for t in view["tokens"]), view["tokens"]


def test_byte_pieces_of_a_split_character_show_their_bytes():
    tokens = analyze(SMOL, "👩‍💻", add_special_tokens=False)["tokens"]
    assert len(tokens) > 1, "SmolLM2 splits this emoji over byte tokens"
    assert any(regex.fullmatch(r"(<[0-9A-F]{2}>)+", t["readable"]) for t in tokens)
    assert "".join(t["bytes"].replace(" ", "") for t in tokens) == "👩‍💻".encode().hex().upper()


@pytest.mark.parametrize("text", MULTI_BYTE)
def test_smollm2_groups_cover_whole_graphemes_and_their_bytes(text):
    view = analyze(SMOL, text, add_special_tokens=False)
    bounds = grapheme_bounds(text)
    groups = view["groups"]
    assert groups, text
    # Byte-level BPE covers every character: the groups tile the text.
    assert groups[0][0] == 0 and groups[-1][1] == len(text)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(groups))
    indexes = [i for _, _, idx in groups for i in idx]
    assert indexes == list(range(len(view["tokens"])))
    for start, end, idx in groups:
        assert start in bounds and end in bounds, (text, start, end)
        data = "".join(view["tokens"][i]["bytes"].replace(" ", "") for i in idx)
        assert data == text[start:end].encode("utf-8").hex().upper()


@pytest.mark.parametrize(("text", "grapheme"), [("I 👩‍💻 in", "👩‍💻"), ("Vive la 🇫🇷 !", "🇫🇷")])
def test_an_emoji_split_over_tokens_is_one_group(text, grapheme):
    view = analyze(SMOL, text, add_special_tokens=False)
    at = text.index(grapheme)
    inside = [g for g in view["groups"] if g[0] <= at and at + len(grapheme) <= g[1]]
    assert len(inside) == 1 and len(inside[0][2]) > 1
    assert not [g for g in view["groups"] if at < g[0] < at + len(grapheme)], "no group starts inside the emoji"


def test_a_word_after_a_normalized_combining_mark_keeps_its_own_group():
    view = analyze(MINILM, "cafe\u0301 ok", add_special_tokens=False)
    assert len(view["groups"]) == 2


def test_a_one_megabyte_text_is_counted_whole_and_shown_in_part():
    text = ("Tokenizers cut text into pieces, even 👩‍💻 and 日本語. " * 25_000)[:1_000_000]
    view = analyze(SMOL, text)
    counts = view["counts"]
    assert counts["characters"] == 1_000_000
    assert counts["bytes"] == len(text.encode("utf-8"))
    assert counts["tokens"] == len(load_tokenizer(SMOL).backend.encode(text).ids)
    assert view["truncated_view"] is True
    assert view["text"] == text[:RENDER_CHARS]
    assert 0 < len(view["tokens"]) < counts["tokens"]
    assert max(t["end"] for t in view["tokens"]) <= RENDER_CHARS
    assert max(e for _, e, _ in view["groups"]) <= RENDER_CHARS
    assert view["stages"]["normalized"] == text[:STAGE_CHARS]  # the stages cover the beginning only


def test_stages_of_minilm_lowercase_and_add_cls_sep():
    st = analyze(MINILM, "Hello World")["stages"]
    assert st["normalized"] == "hello world" and st["changed_by_normalizer"] is True
    assert "lowercase" in st["normalizer"]
    assert st["pre_tokenizer"] == "BertPreTokenizer"
    assert [p["piece"] for p in st["pieces"]] == ["hello", "world"]
    assert st["model"] == "WordPiece" and st["model_tokens"] == ["hello", "world"]
    assert "[CLS]" in st["post_processor"] and "[SEP]" in st["post_processor"]
    assert st["added_tokens"] == [
        {"position": 0, "token": "[CLS]", "id": 101},
        {"position": 3, "token": "[SEP]", "id": 102},
    ]
    assert st["added_count"] == 2 and st["type_ids"] == [0, 0, 0, 0]
    bare = stages(load_tokenizer(MINILM), "Hello World", add_special_tokens=False)
    assert bare["added_tokens"] == [] and bare["added_count"] == 0


def test_stages_of_smollm2_and_unigram():
    smol = analyze(SMOL, "Hello World")["stages"]
    assert smol["normalizer"] == "none" and smol["changed_by_normalizer"] is False
    assert smol["pre_tokenizer"].startswith("ByteLevel") and smol["model"] == "BPE"
    assert smol["model_tokens"] == ["Hello", "ĠWorld"] and smol["added_count"] == 0
    uni = analyze(UNIGRAM, "Hello World")["stages"]
    assert uni["model"] == "Unigram" and uni["normalizer"] == "NFKC"
    assert all(p["piece"].startswith("▁") for p in uni["pieces"])
    assert [a["token"] for a in uni["added_tokens"]] == ["</s>"] and uni["added_count"] == 1


def test_kinds_and_markers():
    minilm, smol, uni = (load_tokenizer(t) for t in TOKENIZERS)
    assert (minilm.kind, smol.kind, uni.kind) == ("WordPiece", "BPE", "Unigram")
    assert (minilm.byte_level, smol.byte_level, uni.byte_level) == (False, True, False)
    assert minilm.subword_prefix == "##" and smol.subword_prefix == ""
    assert "`##`" in explain_markers(minilm)[0]
    assert any("`Ġ`" in note for note in explain_markers(smol))
    assert any("`▁`" in note for note in explain_markers(uni))


# ---- decode and round trip ------------------------------------------------------------------------------------


def test_decode_ids_to_text():
    result = decode(MINILM, "101, 7592, 2088, 102")
    assert result["text"] == "[CLS] hello world [SEP]"
    assert [(p["token"], p["special"]) for p in result["pieces"]] == [
        ("[CLS]", True),
        ("hello", False),
        ("world", False),
        ("[SEP]", True),
    ]
    assert decode(MINILM, [101, 7592, 2088, 102], skip_special_tokens=True)["text"] == "hello world"
    ids = [t["id"] for t in tokenize(SMOL, "Héllo 👩‍💻 日本語", add_special_tokens=False)]
    assert decode(SMOL, ids)["text"] == "Héllo 👩‍💻 日本語"


def test_parse_ids_accepts_lists_brackets_and_separators():
    assert parse_ids("[101, 7592 2088;102]") == [101, 7592, 2088, 102]
    assert parse_ids([1, "2"]) == [1, 2]


@pytest.mark.parametrize(
    ("ids", "fragment"),
    [
        ("99999999", "99999999 is not in the vocabulary of all-minilm-l6-v2"),
        ("-1", "-1 is not in the vocabulary"),
        ("101, abc", "'abc' is not a token id"),
        ("1.5", "'1.5' is not a token id"),
        ("   ", "Type some token ids"),
    ],
)
def test_decode_refuses_bad_ids_in_a_sentence(ids, fragment):
    with pytest.raises(PlaygroundError) as err:
        decode(MINILM, ids)
    assert fragment in str(err.value)


def test_round_trip_is_exact_for_smollm2_on_unicode():
    text = "Héllo Wörld 👍 👩‍💻 🇫🇷 e\u0301 日本語 مرحبا\tשלום\nzero\u200bwidth  two  spaces"
    result = round_trip(SMOL, text)
    assert result["exact"] is True and result["decoded"] == text and result["diffs"] == []
    assert result["checked_chars"] == len(text) and result["truncated"] is False


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("Hello World", "lowercased"),
        ("naïve café", "accents stripped"),
        ("👍", "unknown"),
    ],
)
def test_round_trip_of_minilm_says_why_it_differs(text, reason):
    result = round_trip(MINILM, text)
    assert result["exact"] is False
    assert {d["reason"].split(":")[0] for d in result["diffs"]} == {reason}
    # Each changed word is its own difference, and together they cover exactly the changed words.
    assert " ".join(d["original"] for d in result["diffs"]) == text


def test_round_trip_of_minilm_explains_each_word():
    text = "Hello there, the café is open and we like 👍 a lot."
    result = round_trip(MINILM, text)
    assert result["exact"] is False and result["decoded"] == "hello there, the cafe is open and we like [UNK] a lot."
    diffs = result["diffs"]
    assert [(d["original"], d["decoded"]) for d in diffs] == [("Hello", "hello"), ("café", "cafe"), ("👍", "[UNK]")]
    reasons = " | ".join(d["reason"] for d in diffs)
    assert "lowercased" in reasons and "accents stripped" in reasons and "unknown" in reasons
    for d in diffs:
        assert text[d["start"] : d["end"]] == d["original"]
        assert result["decoded"][d["decoded_start"] :].startswith(d["decoded"])


def test_round_trip_explains_adjacent_changed_words_separately():
    reasons = " | ".join(d["reason"] for d in round_trip(MINILM, "Héllo Wörld 👍")["diffs"])
    assert "accents stripped" in reasons and "unknown" in reasons


# ---- batches --------------------------------------------------------------------------------------------------


def assert_masks_match_padding(result: dict) -> None:
    pad = result["pad_token"]
    for row in result["rows"]:
        assert len(row["input_ids"]) == len(row["attention_mask"]) == len(row["tokens"]) == len(row["word_ids"])
        assert row["attention_mask"] == [0 if t == pad else 1 for t in row["tokens"]]


def test_batch_pads_to_the_longest_on_the_right():
    result = batch_encode(MINILM, ["Hello world", "A much longer text with many more tokens"])
    assert result["pad_token"] == "[PAD]"
    rows = result["rows"]
    assert [r["sample"] for r in rows] == [0, 1] and not any(r["overflow"] for r in rows)
    assert len(rows[0]["input_ids"]) == len(rows[1]["input_ids"]) == 11
    assert rows[0]["tokens"][:4] == ["[CLS]", "hello", "world", "[SEP]"]
    assert rows[0]["attention_mask"] == [1] * 4 + [0] * 7 and 0 not in rows[1]["attention_mask"]
    assert rows[0]["word_ids"][:4] == [None, 0, 1, None]
    assert_masks_match_padding(result)


def test_batch_pads_to_max_length_on_the_left():
    result = batch_encode(
        MINILM, ["Hello world", "A much longer"], padding="max_length", max_length=10, padding_side="left"
    )
    rows = result["rows"]
    assert all(len(r["input_ids"]) == 10 for r in rows)
    assert rows[0]["tokens"] == ["[PAD]"] * 6 + ["[CLS]", "hello", "world", "[SEP]"]
    assert rows[0]["attention_mask"] == [0] * 6 + [1] * 4
    assert_masks_match_padding(result)


def test_batch_truncation_with_stride_gives_overflow_rows():
    long_text = "one two three four five six seven eight nine ten eleven"
    result = batch_encode(
        MINILM,
        [long_text, "short"],
        truncation="longest_first",
        max_length=8,
        stride=2,
        return_overflowing_tokens=True,
    )
    rows = result["rows"]
    first = [r for r in rows if r["sample"] == 0]
    assert len(first) >= 3 and [r["overflow"] for r in first] == [False] + [True] * (len(first) - 1)
    assert [(r["sample"], r["overflow"]) for r in rows if r["sample"] == 1] == [(1, False)]
    assert all(len(r["input_ids"]) == 8 for r in rows)
    assert first[0]["tokens"] == ["[CLS]", "one", "two", "three", "four", "five", "six", "[SEP]"]
    for a, b in itertools.pairwise(first):
        text_a = [t for t in a["tokens"] if t not in ("[CLS]", "[SEP]", "[PAD]")]
        text_b = [t for t in b["tokens"] if t not in ("[CLS]", "[SEP]", "[PAD]")]
        assert text_a[-2:] == text_b[:2], "the stride repeats 2 tokens"
    assert_masks_match_padding(result)


def test_batch_of_pairs_truncates_only_the_second_text():
    result = batch_encode(
        MINILM,
        ["short question"],
        pair="a rather long context that will not fit",
        truncation="only_second",
        max_length=9,
    )
    (row,) = result["rows"]
    assert len(row["input_ids"]) == 9 and row["tokens"][:4] == ["[CLS]", "short", "question", "[SEP]"]
    assert row["token_type_ids"][:4] == [0] * 4 and set(row["token_type_ids"][4:]) == {1}


def test_batch_leaves_the_shared_tokenizer_as_it_was():
    batch_encode(MINILM, ["a b c d e f"], padding="max_length", truncation="longest_first", max_length=4)
    ids = [t["id"] for t in tokenize(MINILM, "a b c d e f")]
    assert ids == reference(MINILM)("a b c d e f")["input_ids"] and len(ids) == 8
    assert load_tokenizer(MINILM).hf("a b c d e f")["input_ids"] == ids


@pytest.mark.parametrize(
    ("texts", "settings_", "fragment"),
    [
        (["a b"], {"truncation": "longest_first"}, "Set a maximum length"),
        (["a b"], {"padding": "max_length"}, "Set a maximum length"),
        (["a b"], {"truncation": "longest_first", "max_length": 4, "stride": 4}, "stride must be smaller"),
        (["a"] * 5, {}, "at most 4 texts; you gave 5"),
        (["a b"], {"truncation": "only_second", "max_length": 5}, "'only_second' truncates the second text"),
        (["a b"], {"return_overflowing_tokens": True}, "Overflow only exists"),
        (["  ", ""], {}, "at least one text"),
        (["a b"], {"padding": "sideways"}, "Padding must be one of"),
        (["a b"], {"padding_side": "up"}, "left or right"),
        (["a b"], {"padding": "max_length", "max_length": 9000}, "between 1 and 8,192"),
    ],
)
def test_batch_refuses_bad_settings_in_a_sentence(texts, settings_, fragment):
    with pytest.raises(PlaygroundError) as err:
        batch_encode(MINILM, texts, **settings_)
    assert fragment in str(err.value)


# ---- chat templates -------------------------------------------------------------------------------------------


def test_smollm2_renders_its_chat_template_and_marks_its_tokens_special():
    result = chat(SMOL, "system: Be brief.\nuser: Hello!")
    assert result["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
    rendered = result["rendered"]
    assert rendered.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>user\nHello!<|im_end|>" in rendered
    assert rendered.endswith("<|im_start|>assistant\n")
    marks = [t for t in result["view"]["tokens"] if t["token"] in ("<|im_start|>", "<|im_end|>")]
    assert len(marks) == 5 and all(t["special"] and t["start"] < t["end"] for t in marks)
    assert all(rendered[t["start"] : t["end"]] == t["token"] for t in marks)
    assert result["view"]["counts"]["special_tokens"] == 5
    no_prompt = chat(SMOL, [{"role": "user", "content": "Hi"}], add_generation_prompt=False)
    assert not no_prompt["rendered"].endswith("<|im_start|>assistant\n")


@pytest.mark.parametrize("tokenizer", [MINILM, UNIGRAM])
def test_chat_on_a_tokenizer_without_a_template_is_refused(tokenizer):
    with pytest.raises(PlaygroundError, match=f"{tokenizer} has no chat template"):
        chat(tokenizer, "user: hi")


def test_parse_conversation_reads_lines_and_json():
    assert parse_conversation("user: Hello\nstill me\nassistant: Hi!") == [
        {"role": "user", "content": "Hello\nstill me"},
        {"role": "assistant", "content": "Hi!"},
    ]
    assert parse_conversation('[{"role": "user", "content": "x"}]') == [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("hello there", "Start each message with its role"),
        ("", "Type a conversation"),
        ("[not json", "not valid JSON"),
        ('[{"role": "robot", "content": "x"}]', "Each message needs a role"),
        ("[]", "no messages"),
    ],
)
def test_parse_conversation_refuses_bad_input(value, fragment):
    with pytest.raises(PlaygroundError, match=fragment):
        parse_conversation(value)


# ---- vocabulary -----------------------------------------------------------------------------------------------


def test_vocabulary_search_by_text_and_by_id():
    found = vocabulary(MINILM, "hello")
    assert {"id": 7592, "token": "hello", "readable": "hello"} in found["matches"]
    assert found["vocab_size"] == 30522 and found["kind"] == "WordPiece"
    assert {"token": "[CLS]", "id": 101} in found["special_tokens"]
    assert found["merges_total"] == 0 and found["merges"] == []
    by_id = vocabulary(MINILM, "7592")
    assert by_id["matches"][0] == {"id": 7592, "token": "hello", "readable": "hello"}
    limited = vocabulary(MINILM, "ing", limit=5)
    assert len(limited["matches"]) == 5 and limited["match_count"] > 5


def test_vocabulary_of_smollm2_has_merges():
    found = vocabulary(SMOL, "hello")
    assert found["kind"] == "BPE" and found["merges_total"] > 1000
    assert found["merges"] and all("hello" in m["result"].lower() for m in found["merges"])
    assert all(m["result"] == m["left"] + m["right"] for m in found["merges"])
    assert any(m["readable"] == " hello" for m in found["matches"]), "Ġhello reads as ' hello'"
    everything = vocabulary(SMOL, "")
    assert everything["match_count"] == everything["vocab_size"] and len(everything["merges"]) == 200


# ---- compare --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("names", [[MINILM, SMOL], [MINILM, SMOL, UNIGRAM]])
def test_compare_tokenizers_side_by_side(names):
    text = "Tokenizers don't agree on 👩‍💻!"
    result = compare(names, text)
    assert result["text"] == text and result["truncated_view"] is False
    assert [r["tokenizer"] for r in result["rows"]] == names
    for row in result["rows"]:
        assert row["counts"]["characters"] == len(text) and row["counts"]["tokens"] == len(row["tokens"]) > 2
        assert row["different_cuts"] == sorted(row["different_cuts"])
        cuts = {b for s, e, _ in row["groups"] for b in (s, e)}
        assert set(row["different_cuts"]) <= cuts
    assert any(r["different_cuts"] for r in result["rows"])


@pytest.mark.parametrize(
    ("names", "text", "fragment"),
    [
        ([MINILM], "hi", "at least two"),
        ([MINILM, SMOL, UNIGRAM, "openai-community/gpt2", "google-t5/t5-small"], "hi", "at most four"),
        ([MINILM, SMOL, MINILM], "hi", "picked twice"),
        ([MINILM, SMOL], "   ", "Type a text"),
    ],
)
def test_compare_refuses_bad_choices(names, text, fragment):
    with pytest.raises(PlaygroundError, match=fragment):
        compare(names, text)


# ---- catalog and loading --------------------------------------------------------------------------------------


def test_catalog_lists_the_packaged_tokenizers_as_available():
    entries = catalog()
    packaged = {e.id: e for e in entries if e.source == "packaged"}
    assert set(packaged) == set(TOKENIZERS) and all(e.available for e in packaged.values())
    assert [packaged[t].kind for t in TOKENIZERS] == ["WordPiece", "BPE", "Unigram"]
    hub = [e for e in entries if e.source == "hub"]
    assert hub and all(set(e.to_dict()) == {"id", "kind", "source", "available", "description"} for e in hub)


@pytest.mark.parametrize(
    ("tokenizer_id", "error", "fragment"),
    [
        ("", ModelNotFound, "choose a tokenizer"),
        ("   ", ModelNotFound, "choose a tokenizer"),
        ("what is this ???", ModelNotFound, "is not a tokenizer this playground knows"),
        ("nobody/no-such-tokenizer", ModelUnavailable, "offline"),
        ("tokenizer:nope", ModelNotFound, "You have no tokenizer called 'nope'"),
        ("tokenizer:../nope", ModelNotFound, "You have no tokenizer called"),
        ("/no/such/folder", ModelNotFound, "no folder"),
    ],
)
def test_loading_mistakes_are_sentences(settings, tokenizer_id, error, fragment):
    with pytest.raises(error) as err:
        load_tokenizer(tokenizer_id, owner=ALICE)
    assert fragment in str(err.value)
    with pytest.raises(PlaygroundError):
        tokenize(tokenizer_id, "hi", owner=ALICE)


def test_a_trained_tokenizer_belongs_to_its_owner(settings):
    from services.tokenizers.loading import tokenizer_cache, tokenizers_root
    from services.tokenizers.training import TokenizerTrainConfig, train

    tokenizer_cache().clear()
    folder = tokenizers_root(ALICE) / "mine"
    train(TokenizerTrainConfig(name="mine", model="bpe", vocab_size=300), folder)

    assert tokenize("tokenizer:mine", "the tokenizer", owner=ALICE)
    alice = {e.id: e for e in catalog(ALICE)}
    assert alice["tokenizer:mine"].source == "trained" and alice["tokenizer:mine"].kind == "BPE"

    assert "tokenizer:mine" not in {e.id for e in catalog(BOB)}
    assert "tokenizer:mine" not in {e.id for e in catalog(None)}
    for owner in (BOB, None):
        with pytest.raises(ModelNotFound, match="You have no tokenizer called 'mine'"):
            load_tokenizer("tokenizer:mine", owner=owner)
    # Nor can another owner reach it through its folder on the server: it reads like a folder that is not there.
    with pytest.raises(ModelNotFound, match="There is no folder"):
        load_tokenizer(str(folder), owner=BOB)
    assert load_tokenizer(str(folder), owner=ALICE).kind == "BPE"
