"""`services.pipelines.qa` gives the answers transformers 4.x's question-answering pipeline gave.

The golden answers in ``tests/data/qa/golden.json`` were recorded with transformers 4.57 by
``tools/make_qa_golden.py`` on three tiny seeded models that load in both versions: BERT with WordPiece,
RoBERTa with byte-level BPE, and ALBERT with a Unigram tokenizer that pads on the left.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from services.pipelines.qa import answer_question

DATA = Path(__file__).resolve().parent.parent / "data" / "qa"
GOLDEN = json.loads((DATA / "golden.json").read_text(encoding="utf-8"))
CASES = GOLDEN["cases"]


@pytest.fixture(scope="module")
def qa_models():
    """Each tiny model and its tokenizer, loaded once with transformers 5."""
    import torch
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    # models this small gain nothing from threads, and on a busy 2-core machine they make each call 50x slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loaded = {}

    def get(name: str):
        if name not in loaded:
            folder = DATA / name
            loaded[name] = (
                AutoModelForQuestionAnswering.from_pretrained(folder),
                AutoTokenizer.from_pretrained(folder),
            )
        return loaded[name]

    yield get
    torch.set_num_threads(threads)


def _case_id(case: dict) -> str:
    question = case["question"] if isinstance(case["question"], str) else f"{len(case['question'])} questions"
    params = ",".join(f"{k}={v}" for k, v in case["params"].items()) or "defaults"
    return f"{case['model']}|{question[:30]}|{len(case['context'])}|{params}"


def _assert_same(actual, expected, where: str = "") -> None:
    """Same structure, answers and spans; scores within 1e-4 relative."""
    assert type(actual) is type(expected), f"{where}: {actual!r} != {expected!r}"
    if isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {actual!r} != {expected!r}"
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            _assert_same(a, e, f"{where}[{i}]")
        return
    assert set(actual) == {"score", "start", "end", "answer"}
    span = ("answer", "start", "end")
    assert [actual[k] for k in span] == [expected[k] for k in span], f"{where}: {actual!r} != {expected!r}"
    assert math.isclose(actual["score"], expected["score"], rel_tol=1e-4, abs_tol=1e-12), f"{where}: {actual!r}"


def test_golden_file_covers_every_kind_of_case():
    assert GOLDEN["transformers"].startswith("4.")
    assert {c["model"] for c in CASES} == {"bert-wordpiece", "roberta-bpe", "albert-unigram-left"}
    assert any(isinstance(c["question"], list) for c in CASES)
    assert any(isinstance(c["expected"], list) and c["expected"] and isinstance(c["expected"][0], list) for c in CASES)
    assert any(c["params"].get("handle_impossible_answer") for c in CASES)
    assert any(c["params"].get("align_to_words") is False for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_transformers_4(case, qa_models):
    model, tokenizer = qa_models(case["model"])
    actual = answer_question(model, tokenizer, case["question"], case["context"], **case["params"])
    _assert_same(actual, case["expected"], _case_id(case))


@pytest.mark.parametrize("name", ["bert-wordpiece", "roberta-bpe", "albert-unigram-left"])
def test_matches_transformers_4_on_a_gpu(name, qa_models):
    """The same answers from a model on a CUDA device (skipped where there is none)."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    model, tokenizer = qa_models(name)
    model = model.to("cuda")
    try:
        for case in (c for c in CASES if c["model"] == name):
            actual = answer_question(model, tokenizer, case["question"], case["context"], **case["params"])
            _assert_same(actual, case["expected"], _case_id(case))
    finally:
        model.to("cpu")


def test_a_list_of_one_pair_gives_a_bare_answer_as_in_4x(qa_models):
    model, tokenizer = qa_models("bert-wordpiece")
    result = answer_question(model, tokenizer, ["Where do I live?"], ["I live in Berlin."])
    assert isinstance(result, dict)
    assert set(result) == {"score", "start", "end", "answer"}


@pytest.mark.parametrize(
    ("question", "context", "words"),
    [
        ("", "I live in Berlin.", "question is empty"),
        ("   ", "I live in Berlin.", "question is empty"),
        ("Where do I live?", "", "context is empty"),
        ("Where do I live?", " \n ", "context is empty"),
        (["Where?", ""], "I live in Berlin.", "question is empty"),
        (["Where?", "Who?"], ["I live in Berlin."], "2 questions but 1 contexts"),
        ("Where?", ["I live in Berlin."], "two strings, or as two lists"),
        ([], [], "no question"),
    ],
)
def test_bad_inputs_are_refused_with_a_sentence(qa_models, question, context, words):
    model, tokenizer = qa_models("bert-wordpiece")
    with pytest.raises(ValueError, match=words) as info:
        answer_question(model, tokenizer, question, context)
    message = str(info.value)
    assert message[0].isupper() and message.endswith(".")


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"top_k": 0}, "top_k must be at least 1"),
        ({"max_answer_len": 0}, "max_answer_len must be at least 1"),
        ({"max_seq_len": 32, "doc_stride": 40}, "must not be larger than max_seq_len"),
        # 4.x let the Rust tokenizer panic here: the question leaves no more context room than the overlap
        ({"max_seq_len": 16, "doc_stride": 8}, "shorten the question"),
    ],
)
def test_bad_settings_are_refused_with_a_sentence(qa_models, params, words):
    model, tokenizer = qa_models("roberta-bpe")
    question = "When did she win the Nobel Prize in chemistry, and where was she born?"
    context = "Marie Curie was born in Warsaw in 1867. She won the Nobel Prize in chemistry in 1911. " * 3
    with pytest.raises(ValueError, match=words):
        answer_question(model, tokenizer, question, context, **params)


def test_a_short_pair_needs_no_room_for_windows(qa_models):
    """A pair that fits in one window is answered even when the overlap could not fit (as in 4.x)."""
    model, tokenizer = qa_models("roberta-bpe")
    result = answer_question(model, tokenizer, "Where do I live?", "In Berlin.", max_seq_len=16, doc_stride=8)
    assert result["answer"] in "In Berlin."


def test_a_one_megabyte_context_is_answered_in_windows(qa_models):
    model, tokenizer = qa_models("bert-wordpiece")
    sentence = "Marie Curie was born in Warsaw and moved to Paris to study physics. "
    context = sentence * (1_000_000 // len(sentence) + 1)
    assert len(context) >= 1_000_000
    result = answer_question(model, tokenizer, "Where was Marie Curie born?", context, top_k=2)
    assert len(result) == 2
    for answer in result:
        assert 0 <= answer["start"] < answer["end"] <= len(context)
        assert answer["answer"] == context[answer["start"] : answer["end"]]
        assert answer["score"] > 0  # 4.x adds up the scores of the same answer found in many windows


@pytest.mark.parametrize("seed", range(40))
def test_fast_span_search_chooses_what_4x_chose(seed):
    """The banded search returns 4.x's spans and float32 scores bit for bit, ties and zeros included."""
    import numpy as np

    from services.pipelines import qa

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 200))
    logits = rng.normal(0, 3, (2, 1, n)).astype(np.float32)
    if seed % 4 == 0:  # few distinct values: ties everywhere
        logits = np.round(logits / 4).astype(np.float32)
    p_mask = (rng.random((1, n)) < rng.random()).astype(np.int64)
    p_mask[0, : int(rng.integers(0, n))] = 1  # a question in front
    undesired = np.abs(p_mask - 1)
    start, end = (np.where(undesired == 0, -10000.0, x) for x in logits)
    start, end = (np.exp(x - x.max(axis=-1, keepdims=True)) for x in (start, end))
    start, end = start / start.sum(), end / end.sum()
    start[0, 0] = end[0, 0] = 0.0
    for topk in (1, 2, 3, 12, 16, 40):
        for max_answer_len in (1, 3, 15, 300):
            fast = qa._decode_spans(start, end, topk, max_answer_len, undesired)
            literal = qa._decode_spans_4x(start, end, topk, max_answer_len, undesired)
            for got, want in zip(fast, literal, strict=True):
                assert got.tolist() == want.tolist() and got.dtype == want.dtype, (topk, max_answer_len)
