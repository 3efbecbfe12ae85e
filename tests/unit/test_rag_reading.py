"""RAG chat reading one sentence at a time (services.rag.reading.one_by_one): each of the best sentences is shown
alone under its passage's number; a decline is held back and the next sentence read; after READ_AT_MOST declines
the answer is the "documents do not say" sentence; a generation that declines is stopped early; the real retrieval
path hands the reader the best-ranked sentences (in the answerability classifier's order) and cites the passage of
the one answered from."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.rag import answer as rag
from services.rag import reading
from services.rag.text import NOT_FOUND

EVAL_DOCS = Path(__file__).resolve().parents[2] / "bench" / "rag_eval" / "docs"
OWNER = "anon:one-by-one"


class Script:
    """Stands in for services.pipelines.stream: replies by what the prompt's sentence holds, streamed a few characters
    at a time, and records each prompt and how far each generation was read."""

    def __init__(self, replies: dict[str, str]):
        self.replies, self.prompts, self.read, self.calls = replies, [], [], []

    def __call__(self, model, messages, owner=None, contrast=None, **params):
        self.prompts.append(messages)
        self.calls.append((model, contrast[1] if contrast else 0.0))
        said = messages[-1]["content"]
        reply = next((r for key, r in self.replies.items() if key in said), NOT_FOUND)
        self.read.append(0)
        for end in range(4, len(reply) + 4, 4):
            self.read[-1] = min(end, len(reply))
            yield {"text": reply[:end]}
        yield {"text": reply, "tokens": []}


@pytest.fixture
def script(monkeypatch):
    def make(replies):
        fake = Script(replies)
        monkeypatch.setattr("services.pipelines.stream", fake)
        return fake

    return make


READ = [(2, "The bridge has three arches."), (1, "The bridge was finished in 1902."), (3, "It is painted green.")]


def test_a_decline_is_held_back_and_the_next_sentence_is_read(script):
    fake = script({"1902": "It was finished in 1902 [1]."})
    shown = list(reading.one_by_one("m", "When was the bridge finished?", READ, owner=None, system_prompt=None,
                                history=[], params={}))  # fmt: skip
    assert shown[-1] == "It was finished in 1902 [1]."
    assert not any(s.startswith("The documents") for s in shown)  # the first sentence's decline never shows
    assert len(fake.prompts) == 2  # the third sentence is not read once one answered
    first, second = (p[-1]["content"] for p in fake.prompts)
    assert "[2] The bridge has three arches." in first and "1902" not in first
    assert "[1] The bridge was finished in 1902." in second
    assert first.endswith("Question: When was the bridge finished?")
    assert fake.read[0] < len(NOT_FOUND)  # the declining generation was stopped once its first words said so


def test_every_sentence_declined_is_the_documents_do_not_say(script):
    fake = script({})
    shown = list(reading.one_by_one("m", "Who built it?", READ, owner=None, system_prompt=None, history=[], params={}))
    assert shown == [NOT_FOUND]
    assert len(fake.prompts) == reading.READ_AT_MOST == len(READ)


def test_a_short_answer_that_reads_like_the_start_of_a_decline_is_kept(script):
    script({"arches": "The"})  # ends while it is still a prefix of the decline
    shown = list(reading.one_by_one("m", "What is it?", READ, owner=None, system_prompt=None, history=[], params={}))
    assert shown == ["The [2]"]


def test_the_answer_cites_the_one_sentence_it_was_read_from():
    assert reading.cite("It was finished in 1902 [3].", 1) == "It was finished in 1902 [1]."
    assert reading.cite("[2] The bridge has three arches.", 2) == "The bridge has three arches [2]."
    assert reading.cite("Green\n\nQuestion: What colour is the door?", 4) == "Green [4]"
    assert reading.cite("It has three arches [1][2]", 1) == "It has three arches [1]"


def test_an_answer_that_goes_on_to_a_question_of_its_own_is_cut(script):
    fake = script({"arches": "Three arches [2].\nQuestion: How long is it?\nAnswer: 40 metres." + " more" * 50})
    shown = list(reading.one_by_one("m", "How many arches?", READ, owner=None, system_prompt=None, history=[],
                                    params={}))  # fmt: skip
    assert shown[-1] == "Three arches [2]." and "Question" not in "".join(shown)
    assert fake.read[0] < 60  # stopped there


def test_history_and_a_system_prompt_reach_each_reading(script):
    fake = script({})
    history = [{"role": "user", "content": "Earlier?"}, {"role": "assistant", "content": "Yes [1]."}]
    list(reading.one_by_one("m", "Who?", READ[:1], owner=None, system_prompt="Be brief.", history=history, params={}))
    (messages,) = fake.prompts
    assert messages[0] == {"role": "system", "content": "Be brief."} and messages[1:3] == history


def test_rag_chat_reads_the_best_ranked_sentences_and_cites_the_one_answered_from(settings, script, monkeypatch):
    rag.ingest("towns", [EVAL_DOCS / "quillhaven.md", EVAL_DOCS / "nebuloscope.md"], OWNER)
    fake = script({"lighthouse": "It has a lighthouse [9]."})
    monkeypatch.setitem(reading.ONE_BY_ONE, "reader", 0.0)
    result = rag.ask("towns", "What stands on the headland at Quillhaven?", OWNER, model="reader", top_k=3)
    hits = rag.retrieve(
        "towns", "What stands on the headland at Quillhaven?", OWNER, top_k=3, focus=reading.FOCUS_WEIGHT
    )
    best = reading.candidates("What stands on the headland at Quillhaven?", hits, rag._ranked(hits, reading.POOL))
    expected = [f"[{n}] {rag.plain(t)}" for _, n, _, t in best]
    assert [p[-1]["content"].split("\n")[1] for p in fake.prompts] == expected[: len(fake.prompts)]
    # the shown sentences (the retrieval inspector's) are the ones it may read; a citation to no passage is dropped
    assert sum(len(h["shown"]) for h in result["hits"]) == len(best)
    assert "[9]" not in result["answer"]
    plain = rag.ask("towns", "What stands on the headland at Quillhaven?", OWNER, model="other", top_k=3)
    assert fake.prompts[-1][-1]["content"].count("\n[") >= 1 and plain["answer"]  # others read them together


def test_the_packaged_models_read_one_sentence_at_a_time_by_default(settings, script):
    rag.ingest("towns", [EVAL_DOCS / "quillhaven.md"], OWNER)
    fake = script({})
    result = rag.ask("towns", "Who is the present mayor of Quillhaven?", OWNER, top_k=3)
    assert result["answer"] == NOT_FOUND and len(fake.prompts) == reading.READ_AT_MOST
    assert all(p[-1]["content"].count("\n[") == 1 for p in fake.prompts)  # one numbered sentence in each prompt
    # the default answering model is the adapter, which copies without the contrast; plain SmolLM2 leans at 0.5
    assert fake.calls[0] == (rag.ANSWER_MODEL, 0.0) == ("grounded-answers", 0.0)
    rag.ask("towns", "Who is the present mayor of Quillhaven?", OWNER, top_k=3, model=rag.CHAT_MODEL)
    assert fake.calls[-1] == (rag.CHAT_MODEL, 0.5) and fake.prompts[-1][-1]["content"].count("\n[") == 1
    rag.ask("towns", "Who is the present mayor of Quillhaven?", OWNER, top_k=3, contrast=0.0, one_by_one=False)
    assert fake.calls[-1][1] == 0.0 and fake.prompts[-1][-1]["content"].count("\n[") > 1  # asked otherwise
    assert reading.default_contrast("trained:mine") == rag.CONTRAST == 0.0
    assert reading.default_contrast("trained:mine", one_by_one=True) == reading.CONTRAST
