"""Adapt RAG chat's answering model to one collection (issue 17).

1. `draft_pairs`: question/answer pairs drafted from the collection's own sentences by the chat model, each kept
   only when its answer is copied from its sentence (a string match) and its question does not give the answer.
2. The visitor looks at them and edits them; `check_pairs` takes the edited table back (capped, each answer still
   found in its passage).
3. `training_rows`: each pair becomes the conversation RAG chat will have: the question retrieved from this
   collection and put in RAG chat's own prompt, answered by its passage's sentence with the number of the source
   that holds it, or "the documents do not say" where retrieval left that source out; some pairs are also asked
   with the answering sources taken away, so the adapter keeps declining. Rows of samples/grounded-answers are mixed
   in, so the general skill stays.
4. `write_dataset` + `job_config`: the rows as a JSONL file among the owner's uploads and the LoRA job that trains
   on them (the tab starts it with `services.training.jobs.start`; the adapter is then `trained:<name>`, one of the
   answering models).
"""

from __future__ import annotations

import json
import random
import re
import tempfile
from pathlib import Path

from services.core.errors import PlaygroundError
from services.rag.answer import CHAT_MODEL, NOT_FOUND, SYSTEM_PROMPT, build_prompt, retrieve, shown
from services.rag.chunk import sentences
from services.rag.ingest import ensure_demo
from services.rag.store import DEMO, Collection

MIN_PAIRS, MAX_PAIRS, MAX_DRAFT = 4, 60, 24
QUESTION_CHARS, ANSWER_CHARS, PASSAGE_CHARS = 300, 200, 400
SAMPLE_ROWS = 240  # rows of samples/grounded-answers trained along with the collection's own
DECLINE_SHARE = 0.35  # pairs also asked without the sources that answer them
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "datasets" / "samples" / "grounded-answers" / "train.jsonl"
DRAFT_SYSTEM = (
    "You write quiz questions. Given a sentence, write one question that the sentence answers, then the answer: "
    "a few words copied from the sentence."
)
DRAFT_EXAMPLE = [
    {"role": "user", "content": "Sentence: The bridge at Oxley was finished in 1902 and is built from red sandstone."},
    {"role": "assistant", "content": "Question: What is the bridge at Oxley built from?\nAnswer: red sandstone"},
]


class AdaptError(PlaygroundError):
    pass


def _store(collection: str, owner: str) -> Collection:
    return ensure_demo() if collection == DEMO else Collection.open(collection, owner)


def candidate_sentences(collection: str, owner: str, count: int, seed: int = 0) -> list[dict]:
    """Up to `count` sentences of the collection that can hold a fact, spread over its documents."""
    by_source: dict[str, list[dict]] = {}
    for chunk in _store(collection, owner).chunks():
        for start, end in sentences(chunk["text"]):
            text = " ".join(chunk["text"][start:end].split()).lstrip("-*# ")
            if 40 <= len(text) <= PASSAGE_CHARS and re.search(r"[a-z]{3}", text) and not text.endswith("?"):
                by_source.setdefault(chunk["source"], []).append({"passage": text, "source": chunk["source"]})
    rng = random.Random(seed)
    for items in by_source.values():
        rng.shuffle(items)
    picked: list[dict] = []
    while len(picked) < count and any(by_source.values()):  # one sentence of each document in turn
        for items in by_source.values():
            if items and len(picked) < count:
                picked.append(items.pop())
    return picked


def parse_draft(text: str) -> tuple[str, str] | None:
    match = re.search(r"Question:\s*(.+?\?)\s*Answer:\s*(.+)", text or "", re.DOTALL)
    if not match:
        return None
    answer = match.group(2).strip().splitlines()[0].strip().rstrip(".")
    return " ".join(match.group(1).split()), answer


def usable(question: str, answer: str, passage: str) -> bool:
    """A pair worth showing: the answer copied from the passage, shorter than it, and not given by the question."""
    q, a, p = question.lower(), answer.lower().strip(), passage.lower()
    return bool(a) and a in p and len(a) < 0.8 * len(p) and a not in q and q.endswith("?") and len(q) <= QUESTION_CHARS


def draft_pairs(collection: str, owner: str, count: int = 8, model: str = CHAT_MODEL) -> list[dict]:
    """Question/answer pairs drafted by the chat model from the collection's sentences ({question, answer,
    passage, source}); fewer than `count` when the model's drafts do not pass `usable`."""
    from services.pipelines import run

    count = max(1, min(int(count), MAX_DRAFT))
    pairs: list[dict] = []
    for item in candidate_sentences(collection, owner, 3 * count):
        messages = [{"role": "system", "content": DRAFT_SYSTEM}, *DRAFT_EXAMPLE,
                    {"role": "user", "content": f"Sentence: {item['passage']}"}]  # fmt: skip
        out = run("text-generation", model, messages, owner=owner, max_new_tokens=48, do_sample=False)
        generated = out[0]["generated_text"]
        reply = generated[-1]["content"] if isinstance(generated, list) else str(generated)
        parsed = parse_draft(reply)
        if parsed and usable(*parsed, item["passage"]):
            pairs.append({"question": parsed[0], "answer": parsed[1], **item})
        if len(pairs) >= count:
            break
    return pairs


def check_pairs(rows: list) -> list[dict]:
    """The visitor's edited table as pairs; blank rows are dropped, a bad one is a sentence naming it."""
    pairs = []
    for n, row in enumerate(rows or [], 1):
        if isinstance(row, dict):
            question, answer, passage = (row.get(k) for k in ("question", "answer", "passage"))
        elif isinstance(row, list | tuple) and len(row) >= 3:
            question, answer, passage = row[:3]
        else:
            raise AdaptError(f"Row {n} needs a question, an answer and its passage.")
        question, answer, passage = (" ".join(str(v or "").split()) for v in (question, answer, passage))
        if not (question or answer):
            continue
        if not question.endswith("?") or len(question) > QUESTION_CHARS:
            raise AdaptError(f"Row {n}: the question must end with '?' and be at most {QUESTION_CHARS} characters.")
        if not answer or len(answer) > ANSWER_CHARS or answer.lower() not in passage.lower():
            raise AdaptError(f"Row {n}: the answer must be words copied from its passage ('{passage[:60]}…').")
        pairs.append({"question": question, "answer": answer, "passage": passage[:PASSAGE_CHARS]})
    if len(pairs) < MIN_PAIRS:
        raise AdaptError(f"Keep at least {MIN_PAIRS} question/answer pairs to train on (there are {len(pairs)}).")
    if len(pairs) > MAX_PAIRS:
        raise AdaptError(f"At most {MAX_PAIRS} pairs are trained on at once (there are {len(pairs)}).")
    return pairs


def _conversation(user: str, reply: str) -> dict:
    return {"messages": [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user},
                         {"role": "assistant", "content": reply}]}  # fmt: skip


def training_rows(collection: str, owner: str, pairs: list[dict], seed: int = 0) -> list[dict]:
    """RAG chat's own conversations for the pairs (see the module docstring), then rows of the bundled sample."""
    rng = random.Random(seed)
    rows = []
    for pair in pairs:
        hits = retrieve(collection, pair["question"], owner, top_k=4)
        answer = pair["answer"].lower()
        holds = [n for n, read in enumerate(shown(hits), 1) if answer in " ".join(read).lower()]
        user = build_prompt(pair["question"], hits)[-1]["content"]
        reply = f"{pair['passage'].rstrip('.')} [{holds[0]}]." if holds else NOT_FOUND
        rows.append(_conversation(user, reply))
        others = [h for n, h in enumerate(hits, 1) if n not in holds]
        if holds and others and rng.random() < DECLINE_SHARE:  # the same question, its sources taken away
            rows.append(_conversation(build_prompt(pair["question"], others)[-1]["content"], NOT_FOUND))
    sample = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows += rng.sample(sample, min(SAMPLE_ROWS, len(sample)))
    rng.shuffle(rows)
    return rows


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def write_dataset(rows: list[dict], owner: str, name: str) -> str:
    """The rows as a JSONL file among the owner's uploads (where a training job may read it); its path."""
    from services.tokenizers.jobs import stage_uploads

    with tempfile.TemporaryDirectory(prefix="rag-adapt-") as tmp:
        path = write_jsonl(rows, Path(tmp) / f"{name}.jsonl")
        return stage_uploads([str(path)], owner, purpose="dataset")[0]


TRAINING = {"num_train_epochs": 2, "learning_rate": 3.0e-4, "per_device_train_batch_size": 8, "warmup_steps": 0.05,
            "seed": 42}  # fmt: skip


def job_config(source: str) -> dict:
    """The LoRA job for an adapted answering model: grounded-answers' recipe on the collection's rows."""
    return {
        "task": "chat",
        "model": CHAT_MODEL,
        "dataset": {"source": source, "messages_column": "messages", "eval_split": 0.1},
        "max_length": 384,
        "loss_on": "completion",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"},
        "training": TRAINING,
    }
