"""The bundled sample `samples/answerable-sentences`: does this sentence answer this question? (issue 17)

    .venv/bin/python tools/make_answerable.py [--out assets/datasets/samples/answerable-sentences]

Every question of tools/grounded_prose (32 invented pages written for this project, none of bench/rag_eval's
subjects; see tools/make_grounded_prose.py) is asked through RAG chat's own retrieval and sentence ranking
(`services.rag.answer.retrieve` with the one-at-a-time focus), and each of the best POOL ranked sentences becomes a
row `{"text": services.rag.answerable.pair(question, heading, sentence), "label": "answers" | "does not"}`:
`answers` when the sentence holds the question's span verbatim and comes from its page. A sentence of another page
that holds the span is left out (it may or may not answer). Questions below the relevance floor are left out (RAG
chat does not read for them). The train split's questions are asked among all its 28 pages and again among each
group's pages (other distractors); the test split is the 4 held-out pages of tools/make_grounded_prose.py's split.
The classifier trained on it is the packaged adapter `minilm-answerable` (its job.yaml in assets/adapters/).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

import make_grounded_prose as prose  # noqa: E402

OUT = ROOT / "assets" / "datasets" / "samples" / "answerable-sentences"
SEED = 5


def rows_for(collection: str, owner: str, slug: str, qa: dict, rng: random.Random | None = None) -> list[dict]:
    """One question's rows: each of the best POOL sentences RAG chat ranks for it, labelled (`rng`: unused, the
    signature tools/make_grounded_prose.make_split asks with)."""
    from services.rag import answer as rag
    from services.rag import answerable, reading

    question = qa["question"].strip()
    hits = rag.retrieve(collection, question, owner, top_k=4, focus=reading.FOCUS_WEIGHT)
    if not rag.relevant(hits):
        return []
    span = re.compile(rf"(?<![\w]){re.escape(qa['span'])}(?![\w])") if qa.get("span") else None
    rows = []
    for _, n, _, text in rag._ranked(hits, answerable.POOL):
        holds = bool(span and span.search(text))
        if holds and hits[n - 1].source != f"{slug}.md":
            continue
        label = answerable.ANSWERS if holds else "does not"
        rows.append({"text": answerable.pair(question, hits[n - 1].heading, text), "label": label})
    return rows


def split_rows(sources: Path, qas: dict, name: str, slugs: list[str]) -> list[dict]:
    """A split's rows, asked as tools/make_grounded_prose.py asks its questions, shuffled with SEED."""
    return prose.make_split(sources, slugs, qas, name, random.Random(SEED), ask=rows_for)


def write(sources: Path, out: Path) -> list[Path]:
    return prose.write(sources, out, rows_of=split_rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=Path, default=ROOT / "tools" / "grounded_prose")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    for path in write(args.sources, args.out):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        answers = sum(r["label"] == "answers" for r in rows)
        sys.stderr.write(f"{path}: {len(rows)} rows, {answers} of them 'answers'\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
