"""The answerability classifier (services.rag.answerable, the packaged adapter `minilm-answerable`): what it reads,
that it picks the sentence holding the fact over its neighbours on sentences it never saw, that RAG chat reads
first the sentence it picks (and shows that sentence in the retrieval inspector), and that RAG chat still answers,
in the similarity order, when the classifier cannot run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.core.errors import PlaygroundError
from services.models import packs
from services.models.packaged_adapters import ADAPTERS
from services.rag import answer as rag
from services.rag import answerable, reading
from services.rag.text import NOT_FOUND

ROOT = Path(__file__).resolve().parents[2]
EVAL_DOCS = ROOT / "bench" / "rag_eval" / "docs"
SAMPLE = ROOT / "assets" / "datasets" / "samples" / "answerable-sentences"
OWNER = "anon:answerable"


@pytest.fixture
def minilm():
    if not packs.PACKS["all-minilm-l6-v2"].installed:
        pytest.skip("the package of all-minilm-l6-v2 is not installed")


def test_it_reads_the_question_then_the_heading_and_the_sentence_without_markup():
    assert answerable.pair(" When? ", "Harlow bridge", "It was **finished** in 1902.") == (
        "When? [SEP] Harlow bridge: It was finished in 1902."
    )
    assert answerable.pair("When?", None, "In 1902.") == "When? [SEP] In 1902."


def test_the_bundled_sample_is_written_in_that_form_with_both_labels():
    for name in ("train", "test"):
        rows = [json.loads(line) for line in (SAMPLE / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
        assert rows and all(set(r) == {"text", "label"} and " [SEP] " in r["text"] for r in rows)
        labels = [r["label"] for r in rows]
        assert set(labels) == {"answers", "does not"} and 0.05 < labels.count("answers") / len(rows) < 0.2
    for page in (ROOT / "bench" / "rag_eval" / "docs").glob("*.md"):  # none of the evaluation's subjects
        title = page.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        assert title not in (SAMPLE / "train.jsonl").read_text(encoding="utf-8"), title


def test_the_packaged_classifier_is_trained_from_that_sample():
    from services.training.config import TrainConfig

    adapter = ADAPTERS["minilm-answerable"]
    config = TrainConfig.from_yaml(adapter.folder / "job.yaml")
    assert (config.task, config.model, config.dataset.source) == (
        "text-classification", "all-minilm-l6-v2", "samples/answerable-sentences"
    )  # fmt: skip
    metrics = adapter.metrics()
    assert metrics["labels"] == ["answers", "does not"]
    # the held-back pages: better than always saying "does not" (their share is 90%) on both labels
    assert metrics["test"]["accuracy"] > 0.91 and metrics["test"]["f1"] >= 0.75


def test_it_picks_the_sentence_with_the_fact_among_unseen_ones(settings, minilm):
    question = "In which year was the Marrow Lane footbridge opened?"
    sentences = [
        "The Marrow Lane footbridge crosses the river Teal below the old mill.",
        "It was opened in 1931 by the town's first woman mayor, Ada Pell.",
        "Its iron railings are painted dark green every spring.",
    ]
    train = (SAMPLE / "train.jsonl").read_text(encoding="utf-8")
    assert not any(s[:30] in train for s in sentences)
    scores = answerable.scores(question, [("Marrow Lane footbridge", s) for s in sentences], OWNER)
    assert scores is not None and max(range(3), key=scores.__getitem__) == 1
    assert all(0.0 <= p <= 1.0 for p in scores)


def test_order_follows_the_classifier_and_keeps_the_ranking_on_ties(monkeypatch):
    class Hit:
        heading = None

        def __init__(self):
            self.answers = {}

    ranked = [(0.9, 1, 0, "a"), (0.8, 1, 1, "b"), (0.7, 2, 0, "c"), (0.6, 2, 1, "d")]
    monkeypatch.setattr(answerable, "scores", lambda q, items, owner=None: [0.1, 0.7, 0.1, 0.9])
    assert [t for *_, t in answerable.order("q", [Hit(), Hit()], ranked)] == ["d", "b", "a", "c"]
    assert [t for *_, t in reading.candidates("q", [Hit(), Hit()], ranked)] == ["d", "b", "a"]  # READ_AT_MOST
    monkeypatch.setattr(answerable, "scores", lambda q, items, owner=None: None)  # it cannot run here
    assert answerable.order("q", [Hit(), Hit()], ranked) == ranked


def test_without_the_classifier_rag_chat_reads_in_the_similarity_order(settings, monkeypatch):
    def unavailable(*args, **kwargs):
        raise PlaygroundError("The packaged model 'all-minilm-l6-v2' is missing.")

    monkeypatch.setattr("services.pipelines.run", unavailable)
    assert answerable.scores("q", [(None, "a sentence")]) is None
    assert answerable.scores("q", []) == []


def test_rag_chat_reads_first_the_sentence_the_classifier_picks(settings, monkeypatch):
    rag.ingest("towns", [EVAL_DOCS / "quillhaven.md"], OWNER)
    prompts: list[str] = []

    def reader(model, messages, owner=None, contrast=None, **params):
        prompts.append(messages[-1]["content"])
        yield {"text": NOT_FOUND, "tokens": []}

    question = "Who keeps the lighthouse at Quillhaven?"
    hits = rag.retrieve("towns", question, OWNER, top_k=3, focus=reading.FOCUS_WEIGHT)
    ranked = rag._ranked(hits, reading.POOL)
    assert len(ranked) > reading.READ_AT_MOST
    pick = ranked[-1]  # the one ranked last of the pool: read first when the classifier likes it best
    monkeypatch.setattr(answerable, "scores", lambda q, items, owner=None: [float(t == pick[3]) for _, t in items])
    monkeypatch.setattr("services.pipelines.stream", reader)
    monkeypatch.setitem(reading.ONE_BY_ONE, "reader", 0.0)
    result = rag.ask("towns", question, OWNER, model="reader", top_k=3)
    assert result["answer"] == NOT_FOUND and len(prompts) == reading.READ_AT_MOST
    assert prompts[0].split("\n")[1] == f"[{pick[1]}] {rag.plain(pick[3])}"
    shown = [t for h in result["hits"] for t in h["shown"]]
    assert pick[3] in shown and len(shown) == reading.READ_AT_MOST  # the inspector shows what was read
    weighed = {t: p for h in result["hits"] for t, p in h["answers"].items()}  # with the classifier's figures
    assert weighed[pick[3]] == 1.0 and len(weighed) == len(ranked) and set(weighed.values()) == {0.0, 1.0}


def test_the_tool_labels_the_sentences_rag_chat_ranks_by_the_answers_words(settings):
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("make_answerable", ROOT / "tools" / "make_answerable.py")
    tool = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        spec.loader.exec_module(tool)
    finally:
        sys.path.remove(str(ROOT / "tools"))
    sources = ROOT / "tools" / "grounded_prose"
    slugs = ["a-canal-fennick-navigation", "a-comet-tarrow-hesk"]
    rag.ingest("pages", [sources / "docs" / f"{s}.md" for s in slugs], OWNER)
    qas = tool.prose._load(sources)
    rows, spans = [], 0
    for qa in qas[slugs[0]]:
        got = tool.rows_for("pages", OWNER, slugs[0], qa)
        assert len(got) <= answerable.POOL
        for row in got:
            question, _, sentence = row["text"].partition(" [SEP] ")
            assert question == qa["question"].strip()
            holds = bool(qa.get("span")) and re.search(rf"(?<![\w]){re.escape(qa['span'])}(?![\w])", sentence)
            assert (row["label"] == "answers") == bool(holds), row  # (a page's span is not on the other page here)
        spans += any(r["label"] == "answers" for r in got)
        rows += got
    assert spans >= 6 and rows == [r for r in rows if set(r) == {"text", "label"}]
