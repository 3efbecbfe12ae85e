"""Rows of `samples/grounded-answers` asked through RAG chat itself: invented pages, real retrieval, real prompt.

    .venv/bin/python tools/make_grounded_pages.py --out DIR

Each subject of tools/grounded_cards.py gets a Markdown page: a heading, an opening sentence that names the subject
and says nothing a question asks (on real pages that sentence looks like the answer to every question about the
subject), most of its facts (some said with "it" or joined to the sentence before) and a few sentences of colour.
The pages of a split are one collection, ingested with RAG chat's defaults. Every fact of every subject is then
asked: the question is retrieved from the collection and put in `services.rag.answer.build_prompt` exactly as RAG
chat sends it, and the answer copies the prompt's sentence that holds the fact with the number of its source
("It was launched in 1871 [2]."). A fact left off its page, or one retrieval did not bring into the prompt, is
answered NOT_FOUND: the question is about a subject the sources describe, and they do not say. Questions RAG chat
would not send to the model (below its relevance floor) are left out. The test split's subjects, people and places
are its own. Needs the packaged MiniLM (embeddings); the same files on the same versions.

An experiment of issue 17, not the bundled sample: an adapter trained on its rows (1 epoch, r 16) answered 17% of
bench/rag_eval's questions right (the plain model 58%; bench/RESULTS.md, v5), so it writes where `--out` says.
It asks with the prompt settings it was measured with: the focus ranking on and the relevance order.
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_grounded_answers import FACTS, Card, build_words, make_cards, passage  # noqa: E402

SEED = 17
LEFT_OFF = 0.2  # share of a subject's facts its page does not give (asked, answered NOT_FOUND)
NOUNS = {
    "company": "small manufacturer",
    "ship": "sailing vessel",
    "festival": "yearly festival",
    "dish": "traditional dish",
    "machine": "historic machine",
    "club": "amateur sports club",
    "species": "small animal",
    "building": "old building",
    "person": "craftsperson",
    "river": "river",
    "software": "computer program",
    "garden": "public garden",
    "radio": "local radio station",
    "tram": "tram line",
    "train": "named train",
}
OPENINGS = (
    "{S} is a {noun} that many people in the region know by name.",
    "{S} is a {noun} with a long and unusual history.",
    "{S} is probably the best-known {noun} of its part of the country.",
    "{S} is a {noun}, and this page collects what is known about it.",
)
COLOUR = (
    "Local guidebooks describe {s} in some detail.",
    "Many visitors come to see {s} every year.",
    "A small display about {s} can be found in the public library.",
    "Stories about {s} are still told in the area.",
    "Photographs of {s} often appear in the regional newspaper.",
    "Historians have written several short books about {s}.",
)


def page(rng: random.Random, card: Card, facts: list[int]) -> str:
    """The Markdown of a subject's page: its heading, an opening sentence and its facts in two paragraphs."""
    opening = rng.choice(OPENINGS).format(S=card.start, noun=NOUNS[card.domain])
    body = passage(rng, card, facts)
    for line in rng.sample(COLOUR, 2):
        body.insert(rng.randrange(1, len(body) + 1), line.format(s=card.name))
    half = max(1, len(body) // 2)
    return f"# {card.start}\n\n{opening} {' '.join(body[:half])}\n\n{' '.join(body[half:])}\n"


def _holder(hits: list, source: str, value: str) -> tuple[int, str] | None:
    """The source number and the sentence that holds `value`, among the sentences of `source` the prompt shows (the
    best-ranked one), or None."""
    from services.rag.answer import _ranked
    from services.rag.text import plain

    pattern = re.compile(rf"(?<![\w,]){re.escape(value)}(?![\w,])")
    for _, number, _, text in _ranked(hits):
        if hits[number - 1].source == source and pattern.search(text):
            return number, plain(text).strip()
    return None


def _known(card: Card, i: int) -> str:
    """The words a sentence that gives fact i must hold."""
    fact, value = FACTS[card.domain][i], card.values[i]
    if fact.kind == "yes-no":
        return card.predicate(i) or card.statement(i)
    return str(value)


def reply(card: Card, i: int, number: int, sentence: str) -> str:
    sentence = sentence.rstrip(".")
    if FACTS[card.domain][i].kind == "yes-no":
        return f"{'Yes' if card.values[i] else 'No'}. {sentence} [{number}]."
    return f"{sentence} [{number}]."


def make_split(split: str, words: list[str], folder: Path, seed: int = SEED) -> list[dict]:
    from services.rag import answer as rag
    from services.rag.answer import NOT_FOUND

    rng = random.Random(f"{seed}-pages-{split}")
    cards = make_cards(rng, split, words)
    given: dict[int, list[int]] = {}
    docs = folder / split
    docs.mkdir(parents=True)
    for n, card in enumerate(cards):
        count = len(FACTS[card.domain])
        given[n] = sorted(rng.sample(range(count), count - max(1, round(count * LEFT_OFF))))
        rng.shuffle(given[n])
        (docs / f"page-{n:03d}.md").write_text(page(rng, card, given[n]), encoding="utf-8")
    owner = f"grounded-pages-{split}"
    rag.ingest(split, sorted(docs.glob("*.md")), owner)
    rows = []
    for n, card in enumerate(cards):
        for i, fact in enumerate(FACTS[card.domain]):
            question = rng.choice(fact.questions).format(s=card.name)
            question = question[0].upper() + question[1:]
            hits = rag.retrieve(split, question, owner)
            if not rag.relevant(hits):
                continue
            messages = rag.build_prompt(question, hits)
            held = _holder(hits, f"page-{n:03d}.md", _known(card, i)) if i in given[n] else None
            answer = reply(card, i, *held) if held else NOT_FOUND
            rows.append({"messages": [*messages, {"role": "assistant", "content": answer}]})
    rng.shuffle(rows)
    return rows


def write(out: Path, seed: int = SEED) -> list[Path]:
    words = build_words(seed)
    half = len(words) * 2 // 3
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PLAYGROUND_HOME"] = str(Path(tmp) / "home")
        from services.rag import answer as rag

        rag.FOCUS_WEIGHT, rag.PROMPT_ORDER = 4.0, "relevance"
        for split, part in (("train", words[:half]), ("test", words[half:])):
            rows = make_split(split, part, Path(tmp), seed)
            path = out / f"{split}.jsonl"
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for path in write(args.out):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        declined = sum(r["messages"][-1]["content"].startswith("The documents do not say") for r in rows)
        print(f"{path}: {len(rows)} rows, {declined} answered 'the documents do not say'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
