"""Training rows for RAG chat's answering model from hand-written pages, asked through RAG chat itself (issue 17, v6).

    .venv/bin/python tools/make_grounded_prose.py --out DIR [--sources tools/grounded_prose] [--one-by-one 3]
                                                  [--answered-only]

tools/grounded_prose/docs holds 32 invented encyclopedic Markdown pages written by hand for this project, in four
groups (a- to d-) of eight subjects, none of bench/rag_eval's (checked by tests/unit/test_grounded_prose.py), and
tools/grounded_prose/qa/<page>.jsonl their questions (10 a page, of every kind, and 3 the page does not answer):
`span` the words of the page that answer it (verbatim), `answer` a short sentence holding the span; `span` null
for a question about the page's subject that the page does not answer.
Each question is retrieved from a collection of pages and put in `services.rag.answer.build_prompt` exactly as RAG
chat sends it; the answer is the question's sentence with the number of the source whose shown sentences hold the
span ("The tower was rebuilt in 1879 [2]."), or NOT_FOUND when the prompt does not hold it. Some answerable
questions are also asked with their page's passages taken out of the hits, answered NOT_FOUND, so the model learns
to decline when the sources are about something near. Each question is asked twice: among all the split's pages,
and among the pages of its own group (another set of distractors). Questions below RAG chat's relevance floor are
left out (RAG chat would not send them to the model). One page of each group is held out as the test split.

`--one-by-one 3` (v8) writes rows for reading one sentence at a time (services.rag.reading), ranked as RAG chat
ranks them then: the sentence among the best 3 that holds the span, alone, answered; and the best-ranked one that
does not (three times in ten another of the best 3), declined. An adapter trained on 1,044 of them (all 522 answered,
as many declined; 1 epoch) declined too often: 27% right on bench/rag_eval (bench/RESULTS.md, v8). With
`--answered-only` as well it writes the bundled `samples/grounded-sentences`, byte for byte (v9, the shipped
grounded-answers adapter's data).

An experiment of issue 17, not the bundled sample: an adapter trained on 500 of its rows (1 epoch, r 16) answered
44% of bench/rag_eval's questions right and declined 75% of those outside it (the plain model 58% and 29%;
bench/RESULTS.md, v6), so it writes where `--out` says.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED = 17
DECLINE_SHARE = 0.15  # answerable questions also asked without their page's passages
ONE_BY_ONE = 0  # > 0: rows that show one of the best ONE_BY_ONE sentences alone (services.rag.reading; --one-by-one)
ANSWERED_ONLY = False  # --answered-only: the answered rows alone, shuffled once more with ANSWERED_SEED
ANSWERED_SEED = 9


def _load(sources: Path) -> dict[str, list[dict]]:
    out = {}
    for path in sorted((sources / "qa").glob("*.jsonl")):
        if (sources / "docs" / f"{path.stem}.md").exists():
            lines = path.read_text(encoding="utf-8").splitlines()
            out[path.stem] = [json.loads(line) for line in lines if line.strip()]
    return out


def _holder(hits: list, source: str, span: str) -> int | None:
    """The number of the first hit from `source` whose shown sentences hold `span`."""
    from services.rag.answer import shown

    pattern = re.compile(rf"(?<![\w]){re.escape(span)}(?![\w])")
    for n, (hit, texts) in enumerate(zip(hits, shown(hits), strict=True), 1):
        if hit.source == source and pattern.search(" ".join(texts)):
            return n
    return None


def _groups(slugs) -> dict[str, list[str]]:
    """The pages of each group (the slug's prefix: a, b, c, d)."""
    groups: dict[str, list[str]] = {}
    for slug in slugs:
        groups.setdefault(slug.split("-")[0], []).append(slug)
    return groups


def _cited(answer: str, number: int) -> str:
    return f"{answer.strip().rstrip('.')} [{number}]."


def _ask(collection: str, owner: str, slug: str, qa: dict, rng: random.Random) -> list[dict]:
    from services.rag import answer as rag

    question = qa["question"].strip()
    rows = []
    hits = rag.retrieve(collection, question, owner, top_k=8)
    top = hits[:4]
    query = rag.embed([question], rag.EMBEDDER)[0]  # sentences are scored again among the four the prompt reads
    rag._select_sentences(top, query, rag.EMBEDDER, question)
    if rag.relevant(top):
        number = _holder(top, f"{slug}.md", qa["span"]) if qa.get("span") else None
        answer = _cited(qa["answer"], number) if number else rag.NOT_FOUND
        rows.append({"messages": [*rag.build_prompt(question, top), {"role": "assistant", "content": answer}]})
    if qa.get("span") and rng.random() < DECLINE_SHARE:
        others = [h for h in hits if h.source != f"{slug}.md"][:4]
        if others and rag.relevant(others):
            rag._select_sentences(others, query, rag.EMBEDDER, question)
            if _holder(others, f"{slug}.md", qa["span"]) is None:
                rows.append({"messages": [*rag.build_prompt(question, others),
                                          {"role": "assistant", "content": rag.NOT_FOUND}]})  # fmt: skip
    return rows


def _ask_one(collection: str, owner: str, slug: str, qa: dict, rng: random.Random) -> list[dict]:
    """Rows for reading one sentence at a time (v8): the sentence that holds the span alone, answered with its
    source's number; the best-ranked sentence that does not hold it (or, for a question the page does not answer,
    the best one), declined."""
    from services.rag import answer as rag

    question = qa["question"].strip()
    hits = rag.retrieve(collection, question, owner, top_k=4, focus=rag.reading.FOCUS_WEIGHT)  # as RAG chat ranks
    if not rag.relevant(hits):
        return []
    ranked = rag._ranked(hits, ONE_BY_ONE)
    pattern = re.compile(rf"(?<![\w]){re.escape(qa['span'])}(?![\w])") if qa.get("span") else None
    holding = [(n, t) for _, n, _, t in ranked if pattern and pattern.search(t) and hits[n - 1].source == f"{slug}.md"]
    other = [(n, t) for _, n, _, t in ranked if not (pattern and pattern.search(t))]
    rows = []
    if holding:
        n, text = holding[0]
        rows.append(_one(question, n, text, _cited(qa["answer"], n)))
    if other:
        n, text = other[0] if rng.random() < 0.7 or len(other) == 1 else rng.choice(other[1:])
        rows.append(_one(question, n, text, rag.NOT_FOUND))
    return rows


def _one(question: str, number: int, text: str, answer: str) -> dict:
    from services.rag import reading

    return {"messages": [*reading.prompt(question, number, text), {"role": "assistant", "content": answer}]}


def make_split(sources: Path, slugs: list[str], qas: dict, name: str, rng: random.Random, ask=None) -> list[dict]:
    """A split's rows, shuffled: each question asked by `ask(collection, owner, slug, qa, rng)` (default: this
    tool's own rows) among all the split's pages, and for the train split again among each group's."""
    from services.rag import answer as rag

    ask = ask or (_ask_one if ONE_BY_ONE else _ask)
    groups = _groups(slugs) if name == "train" else {}
    collections = {f"{name}-all": slugs} | {f"{name}-{g}": s for g, s in groups.items()}
    rows = []
    for collection, members in collections.items():
        owner = f"grounded-prose-{collection}"
        rag.ingest(collection, [sources / "docs" / f"{s}.md" for s in members], owner)
        for slug in members:
            for qa in qas[slug]:
                rows += ask(collection, owner, slug, qa, rng)
    rng.shuffle(rows)
    return rows


def splits(qas: dict, seed: int = SEED) -> dict[str, list[str]]:
    """The pages of each split: one page of each group held out as the test split."""
    rng = random.Random(seed)
    test = sorted(rng.choice(members) for members in _groups(qas).values())
    return {"train": sorted(s for s in qas if s not in test), "test": test}


def split_rows(sources: Path, qas: dict, name: str, slugs: list[str], seed: int = SEED) -> list[dict]:
    """A split's rows (PLAYGROUND_HOME is where its collections are indexed)."""
    rows = make_split(sources, slugs, qas, name, random.Random(f"{seed}-{name}"))
    if ANSWERED_ONLY:
        rows = [r for r in rows if not r["messages"][-1]["content"].startswith("The documents do not say")]
        random.Random(ANSWERED_SEED).shuffle(rows)
    return rows


def write(sources: Path, out: Path, seed: int = SEED, rows_of=None) -> list[Path]:
    """Each split's rows into out/<split>.jsonl: `rows_of(sources, qas, name, slugs)` (default: `split_rows`)."""
    rows_of = rows_of or (lambda sources, qas, name, slugs: split_rows(sources, qas, name, slugs, seed))
    qas = _load(sources)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLAYGROUND_HOME"] = str(Path(tmp) / "home")
        for name, slugs in splits(qas, seed).items():
            rows = rows_of(sources, qas, name, slugs)
            path = out / f"{name}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=ROOT / "tools" / "grounded_prose")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--one-by-one", type=int, default=0, help="rows of one sentence each, from the best N")
    parser.add_argument("--answered-only", action="store_true", help="leave the declined rows out")
    args = parser.parse_args(argv)
    global ONE_BY_ONE, ANSWERED_ONLY
    ONE_BY_ONE, ANSWERED_ONLY = args.one_by_one, args.answered_only
    for path in write(args.sources, args.out):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        declined = sum(r["messages"][-1]["content"].startswith("The documents do not say") for r in rows)
        sys.stderr.write(f"{path}: {len(rows)} rows, {declined} answered 'the documents do not say'\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
