"""The hand-written pages of tools/grounded_prose and tools/make_grounded_prose.py (issue 17's v6 experiment): every
answer's words are on its page, each page has questions of every kind and some it does not answer, nothing of
bench/rag_eval (its names, its subjects) is in them, and the rows the tool builds through RAG chat's own retrieval
and prompt either decline exactly or cite a source whose shown sentences hold the answer."""

from __future__ import annotations

import importlib.util
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "tools" / "grounded_prose"
TOOL = ROOT / "tools" / "make_grounded_prose.py"
EVAL = ROOT / "bench" / "rag_eval"
KINDS = {"who", "when", "how-many", "what", "where", "why", "yes-no", "near"}
# Capitalised words both sets may hold: months, days and common place words
SHARED = {"April", "August", "March", "September", "Sunday", "Thursday", "Tuesday", "Mondays", "Saturdays", "Bay",
          "Saint", "Vale"}  # fmt: skip
# What bench/rag_eval's twelve documents are, none of which a page may be
EVAL_SUBJECTS = ("market town", "cake", "island", "football", "fog", "beam engine", "bicycle", "piano", "metronome",
                 "harbour town", "festival", "coffee", "grinder", "amphibian", "newt")  # fmt: skip


def _qa() -> dict[str, list[dict]]:
    return {p.stem: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
            for p in sorted((SOURCES / "qa").glob("*.jsonl"))}  # fmt: skip


def _page(slug: str) -> str:
    return (SOURCES / "docs" / f"{slug}.md").read_text(encoding="utf-8")


def test_every_page_has_its_questions_and_every_answer_is_on_its_page():
    qa = _qa()
    assert sorted(qa) == sorted(p.stem for p in (SOURCES / "docs").glob("*.md"))
    assert len(qa) >= 32 and Counter(s.split("-")[0] for s in qa) == {g: len(qa) // 4 for g in "abcd"}
    for slug, rows in qa.items():
        page = _page(slug)
        assert page.startswith("# ") and page.count("\n## ") >= 2, slug
        kinds = Counter(r["kind"] for r in rows)
        assert set(kinds) <= KINDS and kinds["near"] >= 3 and len(rows) - kinds["near"] >= 10, (slug, kinds)
        assert kinds["when"] >= 1 and kinds["why"] >= 1 and kinds["yes-no"] >= 1, (slug, kinds)
        for r in rows:
            assert r["question"].endswith("?"), r
            if r["kind"] == "near":
                assert r["span"] is None and r["answer"] is None, r
                continue
            assert r["span"] in page, (slug, r["span"])
            assert r["span"] in r["answer"] and r["answer"].endswith(".") and len(r["answer"].split()) <= 20, r
            assert r["span"].lower() not in r["question"].lower(), r  # the question does not give its answer away
            if r["kind"] == "yes-no":
                assert r["answer"].startswith(("Yes. ", "No. ")), r


def test_nothing_of_bench_rag_eval_is_in_the_pages():
    evaluated = " ".join(p.read_text(encoding="utf-8") for p in (EVAL / "docs").glob("*.md"))
    evaluated += " ".join(json.loads(line)["question"] for f in ("questions.jsonl", "outside.jsonl")
                          for line in (EVAL / f).read_text(encoding="utf-8").splitlines())  # fmt: skip
    pages = " ".join(p.read_text(encoding="utf-8") for p in SOURCES.rglob("*.*"))
    lower = set(re.findall(r"\b[a-z]+\b", evaluated + " " + pages))
    # the evaluation's names: words capitalised inside its sentences that are never written in lower case
    names = {w for w in re.findall(r"(?<=[a-z,;] )[A-Z][a-z]+", evaluated) if w.lower() not in lower}
    assert names & set(re.findall(r"\b[A-Z][a-z]+\b", pages)) <= SHARED
    for page in (SOURCES / "docs").glob("*.md"):
        opening = page.read_text(encoding="utf-8").split("\n\n")[1].split(".")[0].lower()
        subject = re.search(r"\b(?:is|was) (?:an? )?(.+?)(?=[,.(]| (?:that|which|who|in|on|of|for|from|by|at|and)\b)",
                            opening).group(1)  # fmt: skip
        assert not [s for s in EVAL_SUBJECTS if s in subject], (page.name, subject)


@pytest.fixture(scope="module")
def tool():
    sys.path.insert(0, str(TOOL.parent))
    spec = importlib.util.spec_from_file_location("make_grounded_prose", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("one_by_one", [0, 3])
def test_the_rows_decline_exactly_or_cite_the_source_that_holds_the_answer(tool, tmp_path, monkeypatch, one_by_one):
    from services.rag.answer import NOT_FOUND, SYSTEM_PROMPT

    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(tool, "ONE_BY_ONE", one_by_one)  # 3: one sentence a row, of the best 3 (v8)
    qa = _qa()
    slugs = ["c-moth-ashen-lantern", "d-dam-carrowvane"]
    rows = tool.make_split(SOURCES, slugs, qa, "test", random.Random(0))
    spans = {r["answer"]: r["span"] for s in slugs for r in qa[s] if r["span"]}
    assert len(rows) >= 20
    answered = 0
    for row in rows:
        system, user, reply = row["messages"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        assert user["content"].startswith("Sources:\n[" if one_by_one else "Sources:\n[1] ")
        assert not one_by_one or user["content"].count("\n[") == 1
        if reply["content"] == NOT_FOUND:
            continue
        answered += 1
        number = int(re.search(r"\[(\d+)\]\.\Z", reply["content"]).group(1))
        source = re.search(rf"^\[{number}\] (.+)$", user["content"], re.M).group(1)
        span = spans[reply["content"][: -len(f" [{number}].")] + "."]
        assert span in source, (reply, source)
    assert answered >= len(rows) // (3 if one_by_one else 2)
