"""The RAG chat beyond one question: follow-ups with a long history in the shape the Chatbot sends it stay within
the model's context; the visitor's collection is remembered; suggested questions come from the collection; every
source says its rank and how well it matches in words; document and chat text is escaped wherever it is HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.rag import answer as rag
from services.rag import guide as rag_guide
from services.rag.history import choose_collection, last_collection
from services.rag.store import Collection
from tabs.rag import view as rag_view

EVAL_DOCS = Path(__file__).resolve().parents[2] / "bench" / "rag_eval" / "docs"
OWNER = "anon:follow-up"


@pytest.fixture
def towns(settings):
    rag.ingest("towns", [EVAL_DOCS / "quillhaven.md", EVAL_DOCS / "nebuloscope.md"], OWNER)
    return Collection.open("towns", OWNER)


def blocks(text: str) -> list[dict]:
    return [{"type": "text", "text": text}]  # how Gradio's Chatbot sends a message's content back


def test_a_follow_up_after_a_long_chat_stays_within_the_model_context(towns, monkeypatch):
    from services.models import loading
    from services.pipelines import chat

    seen: list[tuple[list, int]] = []
    encode = chat.encode_prompt

    def recording(loaded, prompt, chat_flag=None):
        encoded = encode(loaded, prompt, chat_flag)
        seen.append((prompt, encoded["input_ids"].shape[1]))
        return encoded

    monkeypatch.setattr(chat, "encode_prompt", recording)
    earlier = []
    for turn in range(12):  # a long chat: every turn thousands of characters, the oldest and newest marked
        filler = f"turn{turn} " + "the harbour and the lighthouse " * 150
        earlier += [{"role": "user", "content": blocks(filler + "?")}, {"role": "assistant", "content": filler}]
    result = rag.ask("towns", "And who is the present mayor of Quillhaven?", OWNER, top_k=3, history=earlier,
                     max_new_tokens=48)  # fmt: skip
    assert result["answer"] and re.search(r"\[\d\]", result["answer"])
    assert result["citations"][0]["source"] == "quillhaven.md"
    loaded = loading.load(rag.CHAT_MODEL, "text-generation")
    room = min(loading.token_limit(loaded.model.config, loaded.tokenizer), chat.PROMPT_CAP_TOKENS + 48 + 96)
    prompt, length = seen[0]
    assert length + 48 <= room  # the prompt and the answer fit in what the model reads
    said = " ".join(m["content"] for m in prompt)
    assert "turn11" in said and "turn0 " not in said  # the newest turns are kept, the oldest dropped
    assert prompt[-1]["content"].endswith("Question: And who is the present mayor of Quillhaven?")
    assert all(isinstance(m["content"], str) for m in prompt)


def test_the_last_collection_is_remembered_per_visitor(settings):
    assert last_collection("anon:a") is None
    choose_collection("anon:a", "towns")
    choose_collection("anon:b", "notes")
    choose_collection("anon:a", "harbour")
    assert last_collection("anon:a") == "harbour" and last_collection("anon:b") == "notes"


def test_suggested_questions_come_from_the_collection_and_find_it(towns):
    demo = rag_guide.suggested_questions(rag.ensure_demo())
    mine = rag_guide.suggested_questions(towns)
    assert demo == rag_guide.DEMO_QUESTIONS and len(mine) == 3 and not set(mine) & set(demo)
    assert "What is the nebuloscope?" in mine and "What is Quillhaven?" in mine  # from each opening sentence
    more = rag_guide.suggested_questions(towns, 10)
    assert any("“" in q for q in more) and all(len(q) <= rag_guide.SHOWN for q in more)  # headings, never cut
    for question in mine:  # each one retrieves its own document, as a strong or some match
        best = rag.retrieve("towns", question, OWNER, top_k=1)[0]
        assert best.source.removesuffix(".md") in question.lower().replace(" ", "-")
        assert rag_guide.match(best.to_dict())[0] in ("strong", "some")
    assert rag_guide.suggested_questions(Collection.open("empty", OWNER, create=True)) == []


def test_matches_are_said_in_words_from_the_retrieval_signals(towns):
    answered = rag.retrieve("towns", "Who is the present mayor of Quillhaven?", OWNER, top_k=3)[0].to_dict()
    label, why = rag_guide.match(answered)
    assert label == "strong" and f"{answered['vector_score']:.2f}" in why and "keywords" in why
    unrelated = rag.retrieve("towns", "What is the capital of France?", OWNER, top_k=3)
    assert {rag_guide.match(h.to_dict())[0] for h in unrelated} == {"weak"}
    cited = rag_view.explain(rag.citations(unrelated[:1]), [unrelated[0].to_dict()])
    shown = rag_view.citations_html(cited)
    assert "rank 1 · weak match" in shown and "score" not in shown and "title='Weak match:" in shown


def test_document_and_chat_text_is_escaped_wherever_it_is_html():
    text = "## Tokens\n\nSpecial tokens like <repo_name> and <file_sep> **matter**. <script>alert(1)</script>"
    cited = [{"source": "notes.md", "text": text, "score": 0.016, "page": None, "match": "some", "why": "<b>x</b>"},
             {"source": "notes.txt", "text": text, "score": 0.015, "page": 2}]  # fmt: skip
    shown = rag_view.citations_html(cited)
    assert "<h2>Tokens</h2>" in shown and "<strong>matter</strong>" in shown  # Markdown rendered
    assert "&lt;repo_name&gt;" in shown and "<repo_name>" not in shown and "<script>" not in shown
    assert "## Tokens" in shown and "page 2" in shown and "title='&lt;b&gt;x&lt;/b&gt;'" in shown  # text as it is
    hit = {"rank": 1, "source": "<file_sep>.md", "page": None, "text": text, "fused": 0.016, "vector_rank": 1,
           "vector_score": 0.5, "bm25_rank": 2, "bm25_score": 3.1}  # fmt: skip
    hit["shown"] = ["Special tokens like <repo_name>."]
    table = rag_view.inspector_html([hit])
    assert "<repo_name>" not in table and "<file_sep>" not in table and table.count("&lt;repo_name&gt;") == 2
    assert "(answers" not in table
    hit["answers"] = {"Special tokens like <repo_name>.": 0.917, "A sentence not shown.": 0.5}  # the classifier's
    table = rag_view.inspector_html([hit])
    assert "Special tokens like &lt;repo_name&gt;. <small class='pg-answers'>(answers 92%)</small>" in table
    assert "<repo_name>" not in table and "50%" not in table
    assert [h for h, _ in rag_view.INSPECTOR_COLUMNS] == rag_view.INSPECTOR_HEADERS
    assert all(" " not in h and len(h) <= 8 for h in rag_view.INSPECTOR_HEADERS)  # short: never wrapped
    said = "Use <repo_name> & `<file_sep>` here:\n```\n<repo_name>\n```"
    html = rag_view.chat_html(said)
    assert "&lt;repo_name> &amp; `<file_sep>`" in html and "```\n<repo_name>\n```" in html  # code left alone
    assert rag_view.chat_text(html) == said and rag_view.chat_text(blocks(html)) == said
    assert rag_view.chat_text(rag_view.chat_html("&lt; stays")) == "&lt; stays"
