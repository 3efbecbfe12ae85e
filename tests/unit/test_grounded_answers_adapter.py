"""The packaged answering adapter `grounded-answers` (issue 17) and its sample `samples/grounded-sentences`: the
adapter resolves by id on the packaged SmolLM2, loads merged and copies a fact from the one sentence it is shown,
citing it; the catalog lists it after the plain model, which stays the default everywhere but RAG chat; its job
trains on the sample with the adapter's own LoRA settings; the sample is RAG chat's one-sentence prompt, every
answer holds words of its sentence and cites its number, and its test split is what the tool writes."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from services.models import catalog as models
from services.models import loading, packs
from services.models.packaged_adapters import ADAPTERS
from services.rag import reading

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "datasets" / "samples" / "grounded-sentences"
ADAPTER = ADAPTERS["grounded-answers"]
TOOL = ROOT / "tools" / "make_grounded_prose.py"


@pytest.fixture
def smollm2():
    if not packs.PACKS["smollm2-135m-instruct"].installed:
        pytest.skip("the package of smollm2-135m-instruct is not installed")


def _rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_it_is_a_packaged_chat_adapter_listed_after_the_plain_model(settings, smollm2):
    entries = [e for e in models.catalog("text-generation") if e.source == "packaged"]
    ids = [e.id for e in entries]
    assert ids.index("smollm2-135m-instruct") < ids.index("grounded-answers")  # the plain model stays first
    entry = entries[ids.index("grounded-answers")]
    assert entry.available and entry.tasks[0] == "text-generation"
    assert "smollm2-135m-instruct" in entry.description and "bench/rag_eval" in entry.description
    resolved = models.resolve("grounded-answers")
    assert resolved.source == "adapter" and Path(resolved.location) == ADAPTER.folder
    config = json.loads((ADAPTER.folder / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"  # a Hub twin, never a path


def test_it_copies_the_fact_from_the_one_sentence_it_reads_and_cites_it(settings, smollm2):
    from services.pipelines import stream

    loaded = loading.load("grounded-answers", "text-generation")
    assert not [m for m in loaded.model.modules() if hasattr(m, "lora_A")]  # folded into the base: as fast as it
    assert loaded.extras["peft"] is None
    sentence = "The Harlow footbridge was designed in 1911 by the engineer Mabel Torrin, who also built the pier."
    messages = reading.prompt("Who designed the Harlow footbridge?", 3, sentence)
    last = list(stream("grounded-answers", messages, max_new_tokens=32, temperature=None))[-1]
    answer = reading.cite(last["text"], 3)
    assert "Mabel Torrin" in answer and answer.endswith("[3].")


def test_its_job_trains_on_the_sample_with_its_own_lora_settings():
    from services.training.config import TrainConfig

    job = TrainConfig.from_yaml(ADAPTER.folder / "job.yaml")
    assert job.task == "chat" and job.model == "smollm2-135m-instruct"
    assert job.dataset.source == "samples/grounded-sentences"
    config = json.loads((ADAPTER.folder / "adapter_config.json").read_text())
    assert (job.lora.r, job.lora.alpha) == (config["r"], config["lora_alpha"])
    metrics = ADAPTER.metrics()
    assert 0 < metrics["test"]["facts"] <= 1 and metrics["test"]["questions"] == 48


def test_the_sample_is_rag_chats_one_sentence_prompt_answered_from_it():
    from services.rag.answer import SYSTEM_PROMPT

    train, test = _rows("train.jsonl"), _rows("test.jsonl")
    assert len(train) >= 500 and len(test) >= 30
    for row in train + test:
        system, user, reply = row["messages"]
        assert system == {"role": "system", "content": SYSTEM_PROMPT}
        match = re.fullmatch(r"Sources:\n\[(\d)\] (.+)\n\nQuestion: (.+\?)", user["content"], re.S)
        assert match, user["content"]
        number, sentence, question = match.groups()
        assert reply["content"].endswith(f" [{number}].")
        words = set(re.findall(r"[a-z0-9]+", reply["content"].lower())) - set(re.findall(r"[a-z0-9]+",
                                                                                        question.lower()))  # fmt: skip
        assert words & set(re.findall(r"[a-z0-9]+", sentence.lower())), row  # the answer holds the sentence's words
    questions = {r["messages"][1]["content"].rsplit("Question: ", 1)[1] for r in train}
    assert not questions & {r["messages"][1]["content"].rsplit("Question: ", 1)[1] for r in test}


def test_the_test_split_is_what_the_tool_writes(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    sys.path.insert(0, str(TOOL.parent))
    spec = importlib.util.spec_from_file_location("make_grounded_prose", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    monkeypatch.setattr(tool, "ONE_BY_ONE", 3)
    monkeypatch.setattr(tool, "ANSWERED_ONLY", True)
    sources = tool.ROOT / "tools" / "grounded_prose"
    qas = tool._load(sources)
    assert tool.split_rows(sources, qas, "test", tool.splits(qas)["test"]) == _rows("test.jsonl")


def test_rag_chat_answers_with_it_by_default_and_offers_the_plain_model(settings):
    from services.rag import answer as rag
    from tabs.rag.tab import answering_models

    assert rag.ANSWER_MODEL == "grounded-answers" and reading.reads_one_by_one(rag.ANSWER_MODEL)
    choices = answering_models("anon:someone")
    assert choices[:2] == [("SmolLM2 + grounded-answers adapter", "grounded-answers"),
                           ("plain SmolLM2", "smollm2-135m-instruct")]  # fmt: skip
    assert [value for _, value in choices].count("grounded-answers") == 1
