"""Every tokenizer, pipeline and RAG entry point refuses input above its cap (services.core.limits) with a sentence
that
names the cap, before any heavy work; input just under the cap passes. Caps are lowered through the environment
where the default would make a test slow."""

from __future__ import annotations

import math

import pytest

from services import pipelines as pl
from services.core.errors import PlaygroundError
from services.core.limits import LimitExceeded, get_limits
from services.models import loading
from services.pipelines import caps, chat
from services.rag import answer as rag
from services.tokenizers import analysis as tk
from services.tokenizers import tools

MINILM, SMOL = "all-minilm-l6-v2", "smollm2-135m-instruct"


@pytest.fixture
def limits(monkeypatch):
    """Set caps for one test: limits(PLAYGROUND_MAX_TEXT_CHARS=1000, ...)."""

    def set_caps(**env):
        for name, value in env.items():
            monkeypatch.setenv(name, str(value))
        get_limits.cache_clear()
        return get_limits()

    get_limits.cache_clear()
    yield set_caps
    get_limits.cache_clear()


@pytest.fixture
def no_loading():
    """Loading a tokenizer, a model or a collection fails the test (a refusal must come before it) until the test
    calls the function this fixture gives."""

    def fail(*args, **kwargs):
        raise AssertionError("loaded before the request was refused")

    patch = pytest.MonkeyPatch()
    for module, name in ((tk, "load_tokenizer"), (pl, "load_for"), (loading, "load"), (rag, "open_collection")):
        patch.setattr(module, name, fail)
    yield patch.undo
    patch.undo()


@pytest.fixture
def fresh_cache(monkeypatch, settings):
    cache = loading.ModelCache(budget_bytes=2**34)
    monkeypatch.setattr(loading, "model_cache", lambda: cache)
    return cache


def refused(call, *fragments: str) -> str:
    """Run `call`; it must raise a PlaygroundError naming every fragment (the cap). Returns the sentence."""
    with pytest.raises(PlaygroundError) as err:
        call()
    message = str(err.value)
    assert all(f in message for f in fragments), message
    return message


# ---- tokenizers -----------------------------------------------------------------------------------------------


def test_tokenize_takes_up_to_its_cap_and_refuses_5_mb_without_tokenizing(no_loading):
    refused(lambda: tk.tokenize(MINILM, "a" * 5_000_000), "5,000,000", "200,000")
    refused(lambda: tk.tokenize(MINILM, "a" * 200_001), "200,000")
    no_loading()
    text = ("word " * 40_000)[:200_000]
    assert len(tk.tokenize(MINILM, text)) == 40_002


def test_tokenizer_names_are_short_ids(no_loading):
    for call in (tk.tokenize, tk.analyze, tools.round_trip):
        refused(lambda call=call: call("x" * 5_000, "hi"), "5,000", "200")
    refused(lambda: tools.compare([MINILM, "y" * 201], "hi"), "200")
    refused(lambda: tk.tokenize(["not", "a", "name"], "hi"), "must be text")


def test_analysis_views_take_text_chars(limits, no_loading):
    limits(PLAYGROUND_MAX_TEXT_CHARS=1_000)
    for call in (lambda t: tk.analyze(MINILM, t), lambda t: tools.round_trip(MINILM, t),
                 lambda t: tools.compare([MINILM, SMOL], t)):  # fmt: skip
        refused(lambda call=call: call("a" * 1_001), "1,001", "1,000")
    no_loading()
    assert tk.analyze(MINILM, "ab " * 333 + "a")["counts"]["characters"] == 1_000
    assert tools.round_trip(MINILM, "ab " * 333 + "a")["exact"]


def test_compare_takes_two_to_four_tokenizers(no_loading):
    refused(lambda: tools.compare([MINILM, SMOL, "a", "b", "c"], "hi"), "four", "5")
    refused(lambda: tools.compare([MINILM], "hi"), "two")
    refused(lambda: tools.compare("all-minilm-l6-v2", "hi"), "list of names")


def test_chat_template_conversations_take_prompt_chars(no_loading):
    refused(lambda: tools.chat(SMOL, "user: " + "a" * 8_000), "8,006", "8,000")
    many = [{"role": "user", "content": "hi"}] * 51
    refused(lambda: tools.chat(SMOL, many), "51", "50")
    no_loading()
    assert "a" * 7_994 in tools.chat(SMOL, "user: " + "a" * 7_994)["rendered"]
    assert tools.chat(SMOL, many[:50])["messages"] == many[:50]


def test_vocabulary_search_takes_a_short_query(no_loading):
    refused(lambda: tools.vocabulary(MINILM, "a" * 1_000_000), "1,000,000", "200")
    refused(lambda: tools.vocabulary(MINILM, "a" * 201), "201", "200")
    refused(lambda: tools.vocabulary(MINILM, "a", limit=5_000), "1,000")
    no_loading()
    assert tools.vocabulary(MINILM, "a" * 200)["match_count"] == 0
    assert tools.vocabulary(MINILM, "9" * 150)["match_count"] == 0  # digits, but no such id: no overflow
    assert tools.vocabulary(MINILM, "²")["tokenizer"] == MINILM  # a Unicode digit is not an id


def test_decode_takes_up_to_sequence_tokens_ids(no_loading):
    refused(lambda: tools.decode(MINILM, ", ".join(["101"] * 8_193)), "8,193", "8,192")
    refused(lambda: tools.decode(MINILM, [101] * 8_193), "8,192")
    refused(lambda: tools.decode(MINILM, "1 " * 1_000_000), "characters")
    assert "not a token id" in refused(lambda: tools.decode(MINILM, "9" * 5_000))
    no_loading()
    assert len(tools.decode(MINILM, [7592] * 8_192)["pieces"]) == 8_192


@pytest.mark.parametrize(
    ("settings_", "fragments"),
    [
        ({"pad_to_multiple_of": 1_000_000}, ("Pad to a multiple of", "8,192", "1,000,000")),
        ({"padding": "max_length", "max_length": 8_193}, ("maximum length", "between 1 and 8,192")),
        ({"padding": "max_length", "max_length": -5}, ("between 1 and 8,192", "-5")),
        ({"truncation": "longest_first", "max_length": 16, "stride": 9_000}, ("stride", "8,192")),
        ({"stride": -1}, ("stride", "between 0")),
        ({"max_length": "lots", "padding": "max_length"}, ("whole number",)),
    ],
)
def test_batch_lengths_padding_and_stride_are_capped(no_loading, settings_, fragments):
    refused(lambda: tools.batch_encode(MINILM, ["a b"], **settings_), *fragments)


def test_batch_texts_are_counted_and_measured(limits, no_loading):
    limits(PLAYGROUND_MAX_TOKENIZE_CHARS=1_000)
    refused(lambda: tools.batch_encode(MINILM, ["a"] * 5), "at most 4 texts")
    refused(lambda: tools.batch_encode(MINILM, ["a" * 600, "b" * 401]), "1,001", "1,000")
    refused(lambda: tools.batch_encode(MINILM, ["a" * 300, "b" * 300], pair="c" * 201), "1,002", "1,000")
    refused(lambda: tools.batch_encode(MINILM, ["a", 7]), "list of texts")
    no_loading()
    rows = tools.batch_encode(MINILM, ["a " * 300, "b " * 200])["rows"]
    assert len(rows) == 2 and len(rows[0]["input_ids"]) == len(rows[1]["input_ids"]) == 302
    assert len(tools.batch_encode(MINILM, "one text")["rows"]) == 1  # a string is one text, not its characters
    refused(lambda: tools.batch_encode(MINILM, ["a " * 499, "b"]), "1,002 tokens with its padding", "1,000")
    assert len(tools.batch_encode(MINILM, ["a " * 499, "b"], padding="do_not_pad")["rows"][1]["input_ids"]) == 3


def test_batch_pads_to_the_largest_length_allowed():
    rows = tools.batch_encode(MINILM, ["a b"], padding="max_length", max_length=8_192, pad_to_multiple_of=8_192)
    assert len(rows["rows"][0]["input_ids"]) == 8_192


def test_overflow_rows_are_bounded_and_strides_the_rust_tokenizer_panics_on_are_sentences():
    text = "word " * 10_000  # 10,000 tokens
    message = refused(
        lambda: tools.batch_encode(MINILM, [text], truncation="longest_first", max_length=512, stride=500,
                                   return_overflowing_tokens=True, padding="do_not_pad"), "200,000", "rows"
    )  # fmt: skip
    assert "lower the stride" in message
    rows = tools.batch_encode(MINILM, [text], truncation="longest_first", max_length=512, stride=0,
                              return_overflowing_tokens=True, padding="do_not_pad")["rows"]  # fmt: skip
    assert len(rows) == math.ceil(10_000 / 510)
    # max_length 8 keeps 6 text tokens a row: a stride of 6 makes the Rust tokenizer panic (a BaseException)
    refused(lambda: tools.batch_encode(MINILM, [text[:200]], truncation="longest_first", max_length=8, stride=6),
            "stride (6)", "6 text tokens")  # fmt: skip
    assert tools.batch_encode(MINILM, ["a b c"])["rows"][0]["input_ids"] == [101, 1037, 1038, 1039, 102]


def test_batch_settings_are_an_object_or_its_json():
    assert tools.batch_settings('{"padding": "max_length", "max_length": 8}') == {"padding": "max_length",
                                                                                  "max_length": 8}  # fmt: skip
    assert tools.batch_settings(None) == {} and tools.batch_settings({"stride": 2}) == {"stride": 2}
    refused(lambda: tools.batch_settings("{padding: longest"), "not valid JSON")
    refused(lambda: tools.batch_settings("[1, 2]"), "must be an object")
    refused(lambda: tools.batch_settings({"owner": "anon:x", "warp": 9}), "Unknown batch setting(s): owner, warp")


def test_tokenizer_training_config_names_and_lists_are_capped():
    from services.tokenizers.training import TokenizerTrainConfig

    refused(lambda: TokenizerTrainConfig(name="n" * 201), "201", "200")
    refused(lambda: TokenizerTrainConfig(name="ok", special_tokens=[f"<t{i}>" for i in range(51)]), "51", "50")
    refused(lambda: TokenizerTrainConfig(name="ok", corpus="dataset", dataset="d" * 300), "300", "200")
    assert len(TokenizerTrainConfig(name="ok", special_tokens=[f"<t{i}>" for i in range(50)]).special_tokens) == 50


# ---- pipelines ------------------------------------------------------------------------------------------------


def test_pipeline_texts_are_capped_before_the_model_loads(limits, no_loading, tiny_models, fresh_cache):
    limits(PLAYGROUND_MAX_TEXT_CHARS=1_000)
    model = str(tiny_models["bert-classifier"])
    refused(lambda: pl.run("sentiment-analysis", model, "a" * 1_001), "too long", "1,000")
    refused(lambda: pl.run("sentiment-analysis", model, ["a"] * 51), "51", "50")
    refused(lambda: pl.run("sentiment-analysis", model, ["a" * 600, "b" * 600]), "1,200", "1,000")
    refused(lambda: pl.run("question-answering", model, {"question": "q", "context": "c" * 1_001}), "context")
    refused(lambda: pl.run("text-generation", model, [{"role": "user", "content": "x" * 1_001}]), "1,000")
    no_loading()
    assert len(pl.run("sentiment-analysis", model, ["the movie " * 100] * 1)) == 1
    assert len(pl.run("sentiment-analysis", model, ["good"] * 50)) == 50


def test_zero_shot_labels_are_counted_and_short(no_loading):
    many = [f"label {i}" for i in range(20_000)]
    refused(lambda: pl.run("zero-shot-classification", MINILM, "a match", candidate_labels=many), "20,000", "50")
    refused(lambda: pl.run("zero-shot-classification", MINILM, "a", candidate_labels=",".join(many)), "20,000")
    refused(lambda: pl.run("zero-shot-classification", MINILM, "a", candidate_labels=["x" * 201]), "201", "200")
    no_loading()
    result = pl.run("zero-shot-classification", MINILM, "a match", candidate_labels=[*many[:49], "x" * 200])
    assert len(result["labels"]) == 50


def test_embedding_zero_shot_needs_a_positive_temperature():
    def classify(temperature, multi_label=False):
        return pl.run(
            "zero-shot-classification",
            MINILM,
            "The striker scored a goal",
            candidate_labels=["sports", "cooking"],
            temperature=temperature,
            multi_label=multi_label,
        )

    for temperature in (0, -1, "nan", "hot"):
        refused(lambda t=temperature: classify(t), "0.001")
    result = classify(0.001)
    assert all(0 <= s <= 1 for s in result["scores"]) and result["labels"][0] == "sports"
    assert all(0 <= s <= 1 for s in classify(0, multi_label=True)["scores"])  # multi-label scores use no temperature


def test_sentence_similarity_takes_list_items_sentences(no_loading):
    refused(lambda: pl.run("sentence-similarity", MINILM, {"source_sentence": "a", "sentences": ["b"] * 51}), "50")
    refused(lambda: pl.similarity_matrix(MINILM, ["b"] * 51), "51", "50")
    no_loading()
    assert len(pl.run("sentence-similarity", MINILM, {"source_sentence": "a", "sentences": ["b"] * 50})) == 50


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"max_new_tokens": 1_000_000}, ("max_new_tokens", "1,024", "1,000,000")),
        ({"min_new_tokens": 1_025}, ("min_new_tokens", "1,024")),
        ({"max_length": 100_000}, ("max_length", "8,192")),
        ({"num_beams": 9}, ("num_beams", "between 1 and 8")),
        ({"num_return_sequences": 100}, ("num_return_sequences", "8")),
        ({"top_k": 51, "temperature": 0.7}, ("top_k", "50")),
        ({"temperature": "hot"}, ("temperature", "number")),
    ],
)
@pytest.mark.parametrize("task", ["text-generation", "summarization", "translation"])
def test_generation_settings_are_capped_before_the_model_loads(no_loading, tiny_models, task, params, fragments):
    refused(lambda: pl.run(task, str(tiny_models["gpt2"]), "the movie", **params), *fragments)
    if task == "text-generation":
        refused(lambda: next(pl.stream(str(tiny_models["gpt2"]), "the movie", **params)), *fragments)


def test_generation_just_under_the_caps_runs(limits, tiny_models, fresh_cache):
    limits(PLAYGROUND_MAX_NEW_TOKENS=8)
    gpt2 = str(tiny_models["gpt2"])
    refused(lambda: pl.run("text-generation", gpt2, "the movie", max_new_tokens=9), "between 1 and 8")
    assert pl.run("text-generation", gpt2, "the movie", max_new_tokens=8, num_beams=8, do_sample=False)
    assert list(pl.stream(gpt2, "the movie", max_new_tokens=8, temperature=0.7, top_k=50))[-1]["tokens"]


def test_every_generate_call_is_bounded_in_time(limits, tiny_models, fresh_cache, monkeypatch):
    from pathlib import Path

    limits(PLAYGROUND_MAX_GENERATION_S=7)
    seen = []
    original = loading.load

    def watched(*args, **kwargs):
        loaded = original(*args, **kwargs)
        generate = type(loaded.model).generate
        monkeypatch.setattr(
            loaded.model, "generate", lambda *a, **k: seen.append(k) or generate(loaded.model, *a, **k)
        )
        return loaded

    monkeypatch.setattr(loading, "load", watched)
    gpt2, t5 = str(tiny_models["gpt2"]), str(Path(__file__).parents[1] / "data" / "seq2seq" / "t5")
    list(pl.stream(gpt2, "the movie", max_new_tokens=2))  # streaming
    pl.run("text-generation", gpt2, "the movie", max_new_tokens=2)  # the transformers pipeline
    pl.run("summarization", gpt2, "the movie", max_new_tokens=2)  # a prompted summary
    pl.run("translation_en_to_fr", t5, "the river", max_new_tokens=2)  # the seq2seq runner
    times = [k.get("max_time", getattr(k.get("generation_config"), "max_time", None)) for k in seen]
    assert len(times) == 4 and times == [7.0] * 4, times


def test_question_answering_and_fill_mask_settings_are_capped(no_loading, tiny_models):
    qa = {"question": "who?", "context": "alice lives in paris"}
    refused(lambda: pl.run("question-answering", str(tiny_models["bert-qa"]), qa, top_k=51), "top_k", "50")
    refused(lambda: pl.run("question-answering", str(tiny_models["bert-qa"]), qa, max_answer_len=10**6), "8,192")
    refused(lambda: pl.run("fill-mask", str(tiny_models["bert-mlm"]), "paris [MASK]", top_k=51), "50")


def test_a_long_conversation_keeps_its_newest_messages(fresh_cache):
    loaded = loading.load(SMOL, "text-generation")
    messages = [{"role": "system", "content": "Be brief."}]
    messages += [{"role": ("user", "assistant")[i % 2], "content": f"turn {i} " + "word " * 200} for i in range(31)]
    fitted = chat.fit_messages(loaded, messages, 100)
    assert fitted[0] == messages[0] and fitted[-1] == messages[-1] and len(fitted) < len(messages)
    assert fitted[1:] == messages[-(len(fitted) - 1) :], "the oldest turns go first"
    assert chat.encode_prompt(loaded, fitted)["input_ids"].shape[1] <= chat.PROMPT_CAP_TOKENS
    short = messages[:2]
    assert chat.fit_messages(loaded, short, 100) is short


# ---- RAG ------------------------------------------------------------------------------------------------------


def _answer(**options):
    return next(rag.stream_answer("docs", options.pop("question", "What is it?"), "anon:a", **options))


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        ({"question": "q" * 2_001}, ("2,001", "2,000")),
        ({"top_k": 21}, ("top-k", "between 1 and 20")),
        ({"top_k": 0}, ("top-k", "between 1 and 20")),
        ({"system_prompt": "s" * 8_001}, ("8,001", "8,000")),
        ({"max_new_tokens": 1_025}, ("max_new_tokens", "1,024")),
    ],
)
def test_rag_requests_are_capped_before_retrieval(no_loading, options, fragments):
    refused(lambda: _answer(**options), *fragments)


def test_rag_requests_just_under_the_caps_reach_retrieval(monkeypatch):
    asked = []
    monkeypatch.setattr(rag, "retrieve", lambda *a, **k: asked.append(k) or [])
    answer = _answer(question="q" * 2_000, top_k=20, system_prompt="s" * 8_000, max_new_tokens=1_024)
    assert answer["answer"] == rag.NOT_FOUND and asked[0]["top_k"] == 20


def test_rag_history_keeps_the_newest_turns_within_prompt_chars():
    turns = [{"role": ("user", "assistant")[i % 2], "content": f"{i} " + "x" * 3_000} for i in range(10)]
    kept = rag.trim_history(turns)  # 8,000 characters: the last two turns whole, the end of the one before
    assert kept[1:] == turns[-2:] and kept[0] == {"role": "assistant", "content": "x" * 1_996}
    assert len(rag.trim_history([{"role": "user", "content": "hi"}] * 10)) == rag.HISTORY_TURNS
    blocks = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}, {"role": "tool", "content": "x"}]
    assert rag.trim_history(blocks) == [{"role": "user", "content": "hello"}]
    assert rag.trim_history("not a list") == []


# ---- the form's sliders ---------------------------------------------------------------------------------------


def test_the_form_offers_no_more_than_the_caps(limits):
    import gradio as gr

    from tabs.pipelines.form import build_form

    limits(PLAYGROUND_MAX_NEW_TOKENS=100)
    with gr.Blocks():
        form, _ = build_form()
    caps_now = get_limits()
    assert form.max_new_tokens.maximum == 100
    assert form.num_beams.maximum <= caps_now.beams and form.top_k.maximum <= caps_now.top_k
    assert form.top_k_sampling.maximum <= caps_now.top_k
    assert form.max_answer_len.maximum <= caps_now.sequence_tokens


def test_caps_checks_refuse_with_limit_exceeded():
    with pytest.raises(LimitExceeded, match="1,024"):
        caps.check_generation({"max_new_tokens": 2_000})
    assert caps.check_generation({"max_new_tokens": 40.0, "temperature": "0.5"}) == {"max_new_tokens": 40,
                                                                                     "temperature": 0.5}  # fmt: skip
    assert caps.time_bound(10_000) == get_limits().generation_seconds and caps.time_bound(3) == 3
