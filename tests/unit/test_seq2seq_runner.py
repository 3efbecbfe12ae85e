"""`services.pipelines.seq2seq` gives the summaries and translations transformers 4.x's pipelines gave.

The golden outputs in ``tests/data/seq2seq/golden.json`` were recorded with transformers 4.57 by
``tools/make_seq2seq_golden.py`` on four tiny seeded models that load in both versions: T5 (Unigram, with t5-small's
task_specific_params), BART (byte-level BPE, with distilbart-cnn's), Marian (two SentencePiece models) and mBART
(a multilingual tokenizer that builds its own translation inputs).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from services.pipelines import seq2seq

DATA = Path(__file__).resolve().parent.parent / "data" / "seq2seq"
GOLDEN = json.loads((DATA / "golden.json").read_text(encoding="utf-8"))
CASES = GOLDEN["cases"]
# MarianTokenizer needs the sentencepiece package, which the app itself does not.
needs_sentencepiece = pytest.mark.skipif(
    importlib.util.find_spec("sentencepiece") is None, reason="MarianTokenizer needs the sentencepiece package"
)


def _marks(name: str) -> list:
    return [needs_sentencepiece] if name == "marian" else []


@pytest.fixture(scope="module")
def seq2seq_models():
    """Each tiny model and its tokenizer, loaded once with transformers 5."""
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    # models this small gain nothing from threads, and on a busy 2-core machine they make each call far slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loaded = {}

    def get(name: str):
        if name not in loaded:
            folder = DATA / name
            loaded[name] = (AutoModelForSeq2SeqLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder))
        return loaded[name]

    yield get
    torch.set_num_threads(threads)


def _run(case: dict, model, tokenizer):
    from transformers import GenerationConfig

    runner = seq2seq.summarize if case["runner"] == "summarize" else seq2seq.translate
    kwargs = dict(case["runner_kwargs"])
    if "generation_config" in kwargs:  # stored as a dict
        kwargs["generation_config"] = GenerationConfig(**kwargs["generation_config"])
    return runner(model, tokenizer, case["inputs"], **kwargs)


def test_golden_file_covers_every_kind_of_case():
    assert GOLDEN["transformers"].startswith("4.")
    assert {c["model"] for c in CASES} == {"t5", "bart", "marian", "mbart"}
    calls = [c["call"] for c in CASES]
    assert any(isinstance(c["inputs"], list) for c in CASES)
    assert any(c.get("num_beams") == 1 for c in calls) and any(c.get("num_beams", 4) > 1 for c in calls)
    for setting in ("max_length", "min_length", "max_new_tokens", "no_repeat_ngram_size", "length_penalty"):
        assert any(setting in c for c in calls), setting
    assert any(c["call"].get("num_return_sequences", 1) > 1 and isinstance(c["inputs"], list) for c in CASES)
    assert any(c["call"].get("truncation") is False for c in CASES)
    assert {c["task"] for c in CASES} >= {"summarization", "translation", "translation_en_to_fr"}
    outputs = [o for c in CASES for o in (c["output"] if isinstance(c["output"], list) else [c["output"]])]
    assert any(o == {"translation_text": ""} for o in outputs)  # an immediate </s> decodes to nothing


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"], marks=_marks(c["model"])) for c in CASES])
def test_matches_transformers_4(case, seq2seq_models):
    model, tokenizer = seq2seq_models(case["model"])
    assert _run(case, model, tokenizer) == case["output"]


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=f"{c['model']}-{c['clean_up_tokenization_spaces']}") for c in GOLDEN["decode"]]
)
def test_decodes_as_4x_did(case, seq2seq_models):
    """Clean-up of spaces as 4.x applied it, BPE tokenizers included (v5 skips it there)."""
    if case["model"] == "marian" and importlib.util.find_spec("sentencepiece") is None:
        pytest.skip("MarianTokenizer needs the sentencepiece package")
    _, tokenizer = seq2seq_models(case["model"])
    assert seq2seq._decode(tokenizer, case["ids"], case["clean_up_tokenization_spaces"]) == case["text"]


@pytest.mark.parametrize("name", ["t5", "bart", "mbart", pytest.param("marian", marks=needs_sentencepiece)])
def test_a_list_gives_what_each_text_gives_alone(name, seq2seq_models):
    """Batches are padded; the outputs do not depend on which texts share a batch."""
    model, tokenizer = seq2seq_models(name)
    texts = [c["inputs"] for c in CASES if isinstance(c["inputs"], str)][:3]
    kwargs = {"src_lang": "en_XX", "tgt_lang": "de_DE"} if name == "mbart" else {}
    runner = seq2seq.translate if name in ("marian", "mbart") else seq2seq.summarize
    settings = {"max_new_tokens": 8, "num_beams": 2, **kwargs}
    alone = [runner(model, tokenizer, text, **settings)[0] for text in texts]
    assert runner(model, tokenizer, texts, batch_size=2, **settings) == alone
    assert runner(model, tokenizer, texts, **settings) == alone


def test_translate_picks_the_task_prefix_from_the_languages(seq2seq_models):
    model, tokenizer = seq2seq_models("t5")
    _, prefix_fr = seq2seq._pipeline_generation_config(model, tokenizer, "translation_en_to_fr")
    _, prefix_none = seq2seq._pipeline_generation_config(model, tokenizer, "translation_en_to_ja")
    assert prefix_fr == "translate English to French: "
    assert prefix_none == ""
    assert seq2seq._default_translation_task(model) == "translation_en_to_de"  # the first entry, as in 4.x


def test_generation_settings_stack_up_as_in_4x(seq2seq_models):
    model, tokenizer = seq2seq_models("bart")
    values, prefix = seq2seq._pipeline_generation_config(model, tokenizer, "summarization")
    assert prefix == ""
    # the model's max_length (36) is not 20, so the pipeline's 256 new tokens give way to it
    assert values["max_new_tokens"] is None
    assert (values["max_length"], values["min_length"], values["num_beams"]) == (36, 12, 4)
    assert values["forced_bos_token_id"] == 0 and values["pad_token_id"] == 1
    t5, t5_tokenizer = seq2seq_models("t5")
    values, prefix = seq2seq._pipeline_generation_config(t5, t5_tokenizer, "summarization")
    assert prefix == "summarize: "
    assert values["max_new_tokens"] == 256 and values["max_length"] == 40  # 4.x let max_new_tokens win
    from transformers import AutoModelForSeq2SeqLM

    # Marian's generation config asks for 6 beams; the pipeline's 4 won (the tokenizer only lends a pad id)
    marian = AutoModelForSeq2SeqLM.from_pretrained(DATA / "marian")
    values, _ = seq2seq._pipeline_generation_config(marian, SimpleNamespace(pad_token_id=None), "translation")
    assert (values["num_beams"], values["max_new_tokens"], values["max_length"]) == (4, None, 32)
    assert values["bad_words_ids"] == [[marian.config.pad_token_id]]


def test_an_ignored_max_length_is_logged(seq2seq_models, caplog):
    model, tokenizer = seq2seq_models("t5")
    with caplog.at_level("WARNING", logger="services.pipelines.seq2seq"):
        seq2seq.summarize(model, tokenizer, "the team won the final match", max_length=5, num_beams=1)
    assert "max_length=5 is ignored" in caplog.text


@pytest.mark.parametrize("name", ["t5", "bart", "mbart", pytest.param("marian", marks=needs_sentencepiece)])
def test_inputs_follow_the_model_device(name, seq2seq_models):
    """Inputs are moved to wherever the model is; on a CUDA device the outputs are still 4.x's."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device here")
    model, tokenizer = seq2seq_models(name)
    model.to("cuda")
    try:
        for case in (c for c in CASES if c["model"] == name):
            assert _run(case, model, tokenizer) == case["output"], case["id"]
    finally:
        model.to("cpu")


def test_a_tokenizer_without_a_max_length_truncates_at_the_model_limit(seq2seq_models):
    """4.x crashed past BART's position embeddings when the tokenizer set no limit; this truncates instead."""
    model, tokenizer = seq2seq_models("bart")
    limit = tokenizer.model_max_length
    tokenizer.model_max_length = int(1e30)
    try:
        text = "the team won the final match after a long season " * 40
        assert len(tokenizer(text)["input_ids"]) > model.config.max_position_embeddings
        inputs = seq2seq._encode(model, tokenizer, [text], "", True, None, None)
        assert inputs["input_ids"].shape[1] == model.config.max_position_embeddings
        assert seq2seq.summarize(model, tokenizer, text, max_length=8, num_beams=1)[0]["summary_text"] is not None
    finally:
        tokenizer.model_max_length = limit


def test_is_seq2seq(seq2seq_models):
    model, _ = seq2seq_models("t5")
    assert seq2seq.is_seq2seq(model)

    class Config:
        is_encoder_decoder = False

    class DecoderOnly:
        config = Config()

    assert not seq2seq.is_seq2seq(DecoderOnly())


@pytest.mark.parametrize(
    ("texts", "words"),
    [
        ("", "The text is empty"),
        ("  \n ", "The text is empty"),
        (["the team won", ""], "Text 2 of 2 is empty"),
        ([], "non-empty list"),
        (["the team won", 3], "Text 2 is a int"),
    ],
)
def test_bad_inputs_are_refused_with_a_sentence(seq2seq_models, texts, words):
    model, tokenizer = seq2seq_models("t5")
    for runner in (seq2seq.summarize, seq2seq.translate):
        with pytest.raises(ValueError, match=words) as info:
            runner(model, tokenizer, texts)
        message = str(info.value)
        assert message[0].isupper() and message.endswith(".")


def test_a_multilingual_model_needs_both_languages(seq2seq_models):
    model, tokenizer = seq2seq_models("mbart")
    with pytest.raises(ValueError, match="src_lang"):
        seq2seq.translate(model, tokenizer, "the team won", tgt_lang="ro_RO")
