"""The bundled `samples/grounded-answers` (tools/make_grounded_answers.py): the files are what the generator writes,
every row is RAG chat's prompt with an answer copied from the source it cites (or exactly NOT_FOUND), the question
kinds and answer positions are spread, the test split shares no name with the train split, and nothing of
bench/rag_eval (its names, its topics) is in either. No model is loaded."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from services.rag.answer import NOT_FOUND, PROMPT_SENTENCES, SYSTEM_PROMPT
from services.rag.chunk import sentences

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "datasets" / "samples" / "grounded-answers"
TOOL = ROOT / "tools" / "make_grounded_answers.py"
EVAL_DOCS = ROOT / "bench" / "rag_eval" / "docs"
SPLITS = ("train", "test")
PROMPT = re.compile(r"\ASources:\n((?:\[\d+\] [^\n]+\n)+)\nQuestion: ([^\n]+\?)\Z")
SOURCE = re.compile(r"^\[(\d+)\] (.+)$", re.M)
CITED = re.compile(r"\[(\d+)\]")
# Capitalised words of bench/rag_eval that are ordinary English (months, days, headings, sentence openings, units)
GENERIC_WORDS = (
    "April August March May November September Sunday Thursday Tuesday Mondays Wednesdays Saturdays According "
    "Adjustment Appearance Bake Battery Beat Behaviour Colours Conservation Construction Discovery Early Electronic "
    "Everyone Females Food Frustrated Gearing Geography Getting History Houses Ingredients Launch Legacy Melt Method "
    "Observers Origins Players Pour Range Reception Release Retirement Reviewers Serving Specifications "
    "Stallholders Stir Supporters Testers We Wheels"
)
GENERIC = set(GENERIC_WORDS.split())
# What bench/rag_eval's documents are about, none of which the sample may be about
TOPIC_WORDS = (
    "lighthouse cheese clock cake island ferry football nebuloscope fog beam bike bicycle cargo metronome piano "
    "bell bells coffee grinder newt amphibian wool market treacle"
)
TOPICS = set(TOPIC_WORDS.split())


def _tool():
    spec = importlib.util.spec_from_file_location("make_grounded_answers", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def built():
    return _tool().build()


@pytest.fixture(scope="module")
def rows() -> dict[str, list[dict]]:
    return {s: [json.loads(line) for line in (SAMPLE / f"{s}.jsonl").open(encoding="utf-8")] for s in SPLITS}


def _sources(user: str) -> dict[int, str]:
    return {int(n): text for n, text in SOURCE.findall(PROMPT.match(user).group(1))}


def _words(rows: list[dict]) -> set[str]:
    return {w for r in rows for m in r["messages"] for w in re.findall(r"[A-Za-z]+", m["content"])}


def test_the_files_are_what_the_generator_writes(tmp_path):
    run = subprocess.run([sys.executable, str(TOOL), "--out", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    for split in SPLITS:
        assert (tmp_path / f"{split}.jsonl").read_bytes() == (SAMPLE / f"{split}.jsonl").read_bytes(), split
    assert (SAMPLE / "README.md").is_file()


def test_every_row_is_rag_chats_prompt_with_a_short_answer(rows):
    assert len(rows["train"]) >= 500 and len(rows["test"]) >= 80
    for split in SPLITS:
        for row in rows[split]:
            system, user, assistant = row["messages"]
            assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
            assert system["content"] == SYSTEM_PROMPT
            assert PROMPT.match(user["content"]) and len(user["content"]) < 900, user["content"]
            sources = _sources(user["content"])
            assert list(sources) == list(range(1, len(sources) + 1)) and 2 <= len(sources) <= 4
            assert sum(len(sentences(text)) for text in sources.values()) <= PROMPT_SENTENCES
            answer = assistant["content"]
            assert answer == NOT_FOUND or re.fullmatch(r"[^\[\]\n]+ \[\d\]\.", answer), answer
        prompts = [r["messages"][1]["content"] for r in rows[split]]
        assert len(set(prompts)) == len(prompts)
    assert not {r["messages"][1]["content"] for r in rows["train"]} & {
        r["messages"][1]["content"] for r in rows["test"]
    }


def test_each_answer_copies_its_fact_from_the_source_it_cites(rows, built):
    for split in SPLITS:
        assert len(built[split].meta) == len(rows[split])
        for row, meta in zip(rows[split], built[split].meta, strict=True):
            user, answer = row["messages"][1]["content"], row["messages"][2]["content"]
            sources = _sources(user)
            if meta["mode"] != "found":
                assert answer == NOT_FOUND
                subject = [t for t in sources.values() if meta["subject"].lower() in t.lower()]
                if meta["mode"] == "absent":  # the subject is not in any source
                    assert not subject, user
                else:  # its source is there, the fact asked for is not
                    assert len(subject) == 1 and meta["fact"] not in subject[0], user
                continue
            cited = [int(n) for n in CITED.findall(answer)]
            assert cited == [meta["cite"]] and cited[0] in sources
            source = sources[cited[0]]
            body = re.sub(r"^(Yes, |No, |Because )", "", answer[: -len(f" [{cited[0]}].")])
            assert meta["fact"] in source and body.endswith(meta["fact"]), (answer, source)
            assert meta["subject"].lower() in source.lower()  # the fact is about the subject asked for
            assert (answer.startswith("Because ")) == (meta["kind"] == "why")
            assert answer.startswith(("Yes, ", "No, ")) == (meta["kind"] == "yes-no")


def test_not_found_kinds_and_answer_positions_are_spread(rows, built):
    for split in SPLITS:
        answers = [r["messages"][2]["content"] for r in rows[split]]
        assert 0.10 <= answers.count(NOT_FOUND) / len(answers) <= 0.20, split
    meta = [m for m in built["train"].meta if m["mode"] == "found"]
    kinds = Counter(m["kind"] for m in meta)
    assert all(kinds[k] >= 40 for k in ("who", "when", "how many", "why", "yes-no")), kinds
    cites = Counter(int(CITED.findall(r["messages"][2]["content"])[0]) for r in rows["train"]
                    if r["messages"][2]["content"] != NOT_FOUND)  # fmt: skip
    assert all(cites[n] >= 0.15 * len(meta) for n in (1, 2, 3)), cites
    yes_no = Counter(r["messages"][2]["content"].split(",")[0] for r in rows["train"]
                     if r["messages"][2]["content"].startswith(("Yes, ", "No, ")))  # fmt: skip
    assert min(yes_no.values()) >= 0.3 * sum(yes_no.values()), yes_no


def test_no_name_of_the_test_split_is_in_the_train_split(rows, built):
    names = built["test"].names
    assert len(names & _words(rows["test"])) > 50  # the subjects, people and places its rows are about
    assert not names & _words(rows["train"])


def test_nothing_of_bench_rag_eval_is_in_the_sample(rows):
    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(EVAL_DOCS.glob("*")))
    words = set(re.findall(r"[A-Za-z]+", text))
    lower = {w for w in words if w.islower()}
    names = {w for w in words if w[0].isupper() and w.lower() not in lower and len(w) > 2} - GENERIC
    assert {"Quillhaven", "Torvane", "Halvorsen", "Cairnveck", "Drevna"} <= names
    ours = _words(rows["train"] + rows["test"])
    assert not names & ours
    assert not TOPICS & {w.lower() for w in ours}
    questions = [json.loads(line)["question"] for line in (EVAL_DOCS.parent / "questions.jsonl").open()]
    users = "\n".join(r["messages"][1]["content"] for r in rows["train"] + rows["test"])
    assert not [q for q in questions if q in users]


def test_the_sample_is_a_chat_sample_with_a_held_back_test_split():
    from services.data.sources import chat_sample_ids, load

    assert "samples/grounded-answers" in chat_sample_ids()
    data = load("samples/grounded-answers")
    assert set(data) == {"train", "test"} and data["train"].num_rows == 600 and data["test"].num_rows == 100
    assert data["train"].column_names == ["messages"]
