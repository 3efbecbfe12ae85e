"""Adapting the answering model to a collection (issue 17): pairs drafted from the collection's own sentences are
kept only when the answer is copied from its passage; the edited table is checked with sentences; each pair becomes
RAG chat's own prompt for that question, answered with the number of the source that holds it (or declined where
the sources do not), mixed with the bundled grounded answers, and the job trains a chat LoRA on the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.rag import adapt
from services.rag import answer as rag
from services.training.config import TrainConfig

EVAL_DOCS = Path(__file__).resolve().parents[2] / "bench" / "rag_eval" / "docs"
OWNER = "anon:adapt"
PAIRS = [
    {"question": "Who is the mayor of Quillhaven?", "answer": "Hesper Colley",
     "passage": "Quillhaven has a population of 5,215 and is governed by a town council whose current mayor is "
                "Hesper Colley, a former lifeboat coxswain."},
    {"question": "How tall is Greyhallow Light?", "answer": "31 metres",
     "passage": "It is 31 metres tall and painted in broad horizontal bands of teal and white."},
    {"question": "Who invented the nebuloscope?", "answer": "Signe Halvorsen",
     "passage": "It was invented in 1931 by the meteorologist Signe Halvorsen while she was working at the Brunnvik "
                "Observatory on the northern coast."},
    {"question": "How many slits has the nebuloscope's disk?", "answer": "37",
     "passage": "In the middle of the tube a rotating disk pierced with 37 slits chops the light into brief flashes."},
]  # fmt: skip


@pytest.fixture
def towns(settings):
    rag.ingest("towns", [EVAL_DOCS / "quillhaven.md", EVAL_DOCS / "nebuloscope.md"], OWNER)
    return "towns"


def test_a_draft_is_kept_only_when_its_answer_is_copied_from_its_passage():
    passage = "The Torvane K7 was released in March 2019 and weighs 3.2 kg."
    assert adapt.parse_draft("Question: When was the K7 released?\nAnswer: March 2019.\nmore") == (
        "When was the K7 released?", "March 2019"
    )  # fmt: skip
    assert adapt.parse_draft("no question here") is None
    assert adapt.usable("When was the K7 released?", "March 2019", passage)
    assert not adapt.usable("When was the K7 released?", "April 2020", passage)  # not in the passage
    assert not adapt.usable("Was it released in March 2019?", "March 2019", passage)  # the question gives it away
    assert not adapt.usable("When was the K7 released", "March 2019", passage)  # not a question
    assert not adapt.usable("What is it?", passage, passage)  # the whole passage is no answer


def test_candidate_sentences_come_from_every_document_of_the_collection(towns):
    picked = adapt.candidate_sentences(towns, OWNER, 6)
    assert len(picked) == 6 and {p["source"] for p in picked} == {"quillhaven.md", "nebuloscope.md"}
    assert all(40 <= len(p["passage"]) <= adapt.PASSAGE_CHARS and not p["passage"].startswith("#") for p in picked)


@pytest.mark.parametrize(
    ("rows", "words"),
    [
        (PAIRS[:2], "at least 4"),
        ([*PAIRS[:3], {"question": "Who?", "answer": "Nobody", "passage": "Hesper Colley is the mayor."}], "Row 4"),
        ([*PAIRS[:3], {"question": "No mark", "answer": "Hesper", "passage": "Hesper Colley."}], "end with '?'"),
        ([*PAIRS, *PAIRS * 15], "At most 60"),
        ([["a question?"]], "Row 1 needs"),
    ],
)
def test_a_bad_table_is_a_sentence_that_names_the_row(rows, words):
    with pytest.raises(adapt.AdaptError, match=re.escape(words)):
        adapt.check_pairs(rows)


def test_the_edited_table_comes_back_as_pairs_and_blank_rows_are_dropped():
    table = [[p["question"], p["answer"], p["passage"]] for p in PAIRS] + [["", "", "a passage left alone"]]
    assert adapt.check_pairs(table) == PAIRS


def test_each_pair_becomes_rag_chats_own_prompt_answered_with_the_right_source(towns):
    rows = adapt.training_rows(towns, OWNER, PAIRS)
    sample = adapt.SAMPLE.read_text(encoding="utf-8").splitlines()
    assert len(rows) >= len(PAIRS) + adapt.SAMPLE_ROWS
    own = [r for r in rows if json.dumps(r, ensure_ascii=False) not in sample]
    assert len(own) >= len(PAIRS)
    for row in own:
        system, user, reply = (m["content"] for m in row["messages"])
        assert system == rag.SYSTEM_PROMPT and user.startswith("Sources:\n[1] ") and "\n\nQuestion: " in user
        pair = next(p for p in PAIRS if user.endswith(f"Question: {p['question']}"))
        if reply == rag.NOT_FOUND:
            assert pair["answer"] not in user.split("\n\nQuestion:")[0]  # declined only where no source holds it
            continue
        cited = int(re.fullmatch(r".+ \[(\d)\]\.", reply).group(1))
        source = re.search(rf"^\[{cited}\] (.+)$", user, re.MULTILINE).group(1)
        assert pair["answer"] in source and reply.startswith(pair["passage"].rstrip("."))
    assert sum(r["messages"][2]["content"] != rag.NOT_FOUND for r in own) >= 3


def test_the_job_is_a_chat_lora_on_the_packaged_model_reading_the_written_file(towns, settings):
    rows = adapt.training_rows(towns, OWNER, PAIRS)
    source = adapt.write_dataset(rows, OWNER, "town-answers")
    assert Path(source).is_file() and Path(source).suffix == ".jsonl"
    assert len(Path(source).read_text(encoding="utf-8").splitlines()) == len(rows)
    config = TrainConfig.from_dict({**adapt.job_config(source), "output_dir": str(settings.home / "out")})
    assert config.task == "chat" and config.model == rag.CHAT_MODEL and config.lora is not None
    assert config.dataset.source == source and config.loss_on == "completion"


@pytest.mark.slow
def test_the_chat_model_drafts_pairs_that_pass_the_check(towns):
    pairs = adapt.draft_pairs(towns, OWNER, count=2)
    assert len(pairs) <= 2
    for p in pairs:
        assert adapt.usable(p["question"], p["answer"], p["passage"]) and p["source"].endswith(".md")


def test_the_cli_writes_the_conversations_and_the_job(tmp_path, settings):
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PLAYGROUND_HOME": str(settings.home)}
    base = [sys.executable, "-m", "services", "rag"]
    done = subprocess.run([*base, "ingest", "--collection", "cli", str(EVAL_DOCS / "quillhaven.md"),
                           str(EVAL_DOCS / "nebuloscope.md")], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (tmp_path / "pairs.json").write_text(json.dumps(PAIRS))
    done = subprocess.run([*base, "adapt", "--collection", "cli", "--pairs", str(tmp_path / "pairs.json"),
                           "--output-dir", str(tmp_path / "run"), "--no-train"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["conversations"] >= len(PAIRS) + adapt.SAMPLE_ROWS
    config = TrainConfig.from_yaml(tmp_path / "run" / "job.yaml")
    assert config.task == "chat" and Path(config.dataset.source) == tmp_path / "run" / "conversations.jsonl"
    bad = subprocess.run([*base, "adapt", "--collection", "cli", "--pairs", str(EVAL_DOCS / "quillhaven.md"),
                          "--output-dir", str(tmp_path / "x")], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
