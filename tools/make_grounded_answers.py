"""Write the bundled chat sample `samples/grounded-answers`: questions answered from numbered sources, cited as [n].

    .venv/bin/python tools/make_grounded_answers.py            # into assets/datasets/samples/grounded-answers/
    .venv/bin/python tools/make_grounded_answers.py --out DIR  # somewhere else
    .venv/bin/python tools/make_grounded_answers.py --check    # say whether the committed files are what it writes

Each row is the conversation RAG chat has with its answering model (services.rag.answer.build_prompt): the system
prompt, a user turn `Sources:\\n[1] ...\\n[2] ...\\n\\nQuestion: ...`, and the answer: one short sentence that copies
the fact from the right source and ends with its citation ("The schooner Corebek was launched in 1871 [2].";
"Yes, ... [1]."; "Because ... [3]."), or, when no source answers, exactly NOT_FOUND. The sources are invented
"cards" (tools/grounded_cards.py): subjects from twelve domains with one fact of each kind (who, when, how many,
why, yes-no, what); a row shows 2-4 of them (at most PROMPT_SENTENCES sentences), the answer's card at any
position, often beside a card of the same domain that states the same kind of fact about another subject. The test
split's subjects, people and places are its own, and two domains (radio stations, tram lines) are only in it.
Python's standard library and a fixed seed: the same files on every machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from grounded_cards import (  # noqa: E402
    DOMAINS,
    ENDS,
    FIRST_NAMES,
    PLACE_ENDS,
    STARTS,
    TEST_DOMAINS,
    VALUES,
)

from services.rag.answer import NOT_FOUND, PROMPT_SENTENCES, SYSTEM_PROMPT  # noqa: E402

SEED = 17
OUT = ROOT / "assets" / "datasets" / "samples" / "grounded-answers"
KINDS = ("who", "when", "how many", "why", "yes-no", "what")
SPLITS = {  # rows, cards per shared domain, cards per held-out domain, places
    "train": (600, 11, 0, 40),
    "test": (100, 2, 4, 12),
}
NOT_FOUND_SHARE = 0.15
MAX_USER_CHARS = 900


@dataclass(frozen=True)
class Fact:
    kind: str
    statement: str
    questions: tuple[str, ...]
    spec: str


def _fact(text: str) -> Fact:
    kind, statement, questions, spec = (part.strip() for part in text.split(" | "))
    return Fact(kind, statement, tuple(q.strip() for q in questions.split(" / ")), spec)


FACTS = {domain: tuple(_fact(f) for f in facts) for domain, (_, _, facts) in DOMAINS.items()}


@dataclass(eq=False)
class Card:
    domain: str
    name: str  # as written inside a sentence ("the schooner Corebek")
    pronoun: str
    values: list = field(default_factory=list)  # one per fact: a text, or True/False for a yes-no fact
    names: set[str] = field(default_factory=set)  # the invented words in it

    @property
    def start(self) -> str:
        return self.name[0].upper() + self.name[1:]

    def statement(self, i: int) -> str:
        fact, value = FACTS[self.domain][i], self.values[i]
        template = fact.spec if fact.kind == "yes-no" and not value else fact.statement
        return template.format(S=self.start, s=self.name, V=value)

    def predicate(self, i: int) -> str | None:
        """The statement without the subject it starts with (None when it does not start with it)."""
        text = self.statement(i)
        return text[len(self.start) + 1 :] if text.startswith(self.start + " ") else None


@dataclass
class Split:
    rows: list[dict]
    meta: list[dict]  # per row: kind, mode (found / unstated / absent), cite, fact, subject
    names: set[str]  # every invented word of the split's cards


def _choices(spec: str) -> list[str]:
    return [c.strip() for c in VALUES.get(spec, spec).split(";")]


def _value(rng: random.Random, fact: Fact, people, places: list[str]):
    spec = fact.spec
    if fact.kind == "yes-no":
        return rng.random() < 0.5
    if spec == "person":
        return people()
    if spec == "place":
        return rng.choice(places)
    if spec == "colours":
        return " and ".join(rng.sample(_choices("colour"), 2))
    if spec.startswith(("year", "num:")):
        low, high = (int(x) for x in (spec.split(":")[1] if ":" in spec else "1720-1985").split("-"))
        number = rng.randint(low, high)
        return str(number) if spec.startswith("year") else f"{number:,}"
    return rng.choice(_choices(spec))


def make_cards(rng: random.Random, split: str, words: list[str]) -> list[Card]:
    _, shared, held_out, place_count = SPLITS[split]
    pool = iter(words)
    places = [next(pool) + rng.choice(PLACE_ENDS) for _ in range(place_count)]
    female, male = (names.split() for names in FIRST_NAMES[split])
    cards: list[Card] = []
    for domain, (forms, pronoun, _) in DOMAINS.items():
        count = held_out if domain in TEST_DOMAINS else shared
        for _ in range(count):
            invented: set[str] = set()

            def person(gender: list[str] | None = None, invented=invented) -> str:
                first, last = rng.choice(gender or rng.choice((female, male))), next(pool)
                invented.update((first, last))
                return f"{first} {last}"

            if domain == "person":
                gender = rng.choice((female, male))
                name, pronoun = person(gender), "she" if gender is female else "he"
            else:
                word = next(pool)
                invented.add(word)
                release = f"{rng.randint(1, 9)}.{rng.randint(0, 9)}"
                name = rng.choice(forms).replace("{N}", word).replace("{R}", release)
            card = Card(domain, name, pronoun)
            card.values = [_value(rng, fact, person, places) for fact in FACTS[domain]]
            invented.update(v for v, f in zip(card.values, FACTS[domain], strict=True) if f.spec == "place")
            card.names = invented
            cards.append(card)
    return cards


def passage(rng: random.Random, card: Card, facts: list[int]) -> list[str]:
    """The sentences of a card's facts: later ones about the subject may say "it" or join the one before (not one
    that ends with a reason)."""
    out: list[str] = []
    follows = joined = False
    for i in facts:
        predicate = card.predicate(i)
        if out and predicate and follows and not joined and rng.random() < 0.25:
            out[-1] = f"{out[-1][:-1]}, and {card.pronoun} {predicate}."
            joined, follows = True, FACTS[card.domain][i].kind != "why"
            continue
        if out and predicate and follows and rng.random() < 0.35:
            out.append(f"{card.pronoun.capitalize()} {predicate}.")
        else:
            out.append(card.statement(i) + ".")
        follows, joined = predicate is not None and FACTS[card.domain][i].kind != "why", False
    return out


def answer(card: Card, i: int, cite: int) -> str:
    fact, value, text = FACTS[card.domain][i], card.values[i], card.statement(i)
    if fact.kind == "why":
        return f"Because {value} [{cite}]."
    if fact.kind == "yes-no":
        lowered = "the" + text[3:] if text.startswith("The ") else text
        return f"{'Yes' if value else 'No'}, {lowered} [{cite}]."
    return f"{text} [{cite}]."


def recorded(card: Card, i: int) -> str:
    """The words an answer copies from its source: the reason of a why, else the statement past its subject."""
    if FACTS[card.domain][i].kind == "why":
        return card.values[i]
    return card.predicate(i) or card.statement(i)


def _counts(rng: random.Random, n: int) -> list[int]:
    counts, most = [1] * n, min(PROMPT_SENTENCES, 3 * n)
    for _ in range((most if rng.random() < 0.6 else rng.randint(n, most)) - n):
        counts[rng.choice([k for k in range(n) if counts[k] < 3])] += 1
    return counts


def make_row(rng: random.Random, cards: list[Card], card: Card, index: int, mode: str) -> tuple[dict, dict]:
    """One conversation about fact `index` of `card`: `found` (its source holds it), `unstated` (its source is
    there, that fact is not) or `absent` (the card is not among the sources; one of its domain stands in)."""
    n = rng.choices((2, 3, 4), weights=(3, 4, 3))[0]
    same = [c for c in cards if c.domain == card.domain and c is not card]
    main = rng.choice(same) if mode == "absent" else card
    hard = [c for c in same if c is not main] if rng.random() < 0.65 else []
    others = [rng.choice(hard)] if hard else []
    rest = [c for c in cards if c is not card and c is not main and c not in others]
    others += rng.sample(rest, n - 1 - len(others))
    rng.shuffle(others)
    position = rng.randrange(n)
    shown = [*others[:position], main, *others[position:]]
    counts = _counts(rng, n)
    lines = []
    for k, (c, count) in enumerate(zip(shown, counts, strict=True)):
        alike = c.domain == card.domain  # the asked fact is stated for this card only when `must`
        if c is main:
            must = mode == "found" or (mode == "absent" and rng.random() < 0.75)
        else:
            must = alike and rng.random() < 0.65
        choose = [j for j in range(len(FACTS[c.domain])) if j != index or not alike]
        facts = ([index] if must else []) + rng.sample(choose, count - must)
        rng.shuffle(facts)
        lines.append(f"[{k + 1}] " + " ".join(passage(rng, c, facts)))
    question = rng.choice(FACTS[card.domain][index].questions).format(s=card.name)
    user = "Sources:\n" + "\n".join(lines) + f"\n\nQuestion: {question}"
    reply = answer(card, index, position + 1) if mode == "found" else NOT_FOUND
    row = {
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": user},
            {"role": "assistant", "content": reply},
        ]
    }
    meta = {
        "kind": FACTS[card.domain][index].kind,
        "mode": mode,
        "cite": position + 1 if mode == "found" else None,
        "fact": recorded(card, index),
        "subject": card.name,
    }
    return row, meta


def make_split(split: str, words: list[str], seed: int = SEED) -> Split:
    rng = random.Random(f"{seed}-{split}")
    cards = make_cards(rng, split, words)
    total = SPLITS[split][0]
    missing = round(total * NOT_FOUND_SHARE)
    pools: dict[str, list[tuple[Card, int]]] = {kind: [] for kind in KINDS}
    for card in cards:
        for i, fact in enumerate(FACTS[card.domain]):
            pools[fact.kind].append((card, i))
    for pool in pools.values():
        rng.shuffle(pool)
    plan = [("found", KINDS[k % len(KINDS)]) for k in range(total - missing)]
    plan += [(rng.choice(("unstated", "absent")), rng.choice(KINDS)) for _ in range(missing)]
    rng.shuffle(plan)
    taken = {kind: 0 for kind in KINDS}
    rows, meta, seen = [], [], set()
    for mode, kind in plan:
        while True:
            pool = pools[kind]
            card, index = pool[taken[kind] % len(pool)]
            taken[kind] += 1
            row, info = make_row(rng, cards, card, index, mode)
            user = row["messages"][1]["content"]
            if user not in seen and len(user) < MAX_USER_CHARS:
                break
        seen.add(user)
        rows.append(row)
        meta.append(info)
    return Split(rows, meta, set().union(*(c.names for c in cards)))


def build_words(seed: int = SEED) -> list[str]:
    """Every invented name word, shuffled once: the first two thirds are the train split's, the rest the test's."""
    words = sorted({start + end for start in STARTS.split() for end in ENDS.split()})
    random.Random(seed).shuffle(words)
    return words


def build(seed: int = SEED) -> dict[str, Split]:
    """Both splits; the invented words are dealt out once, so no name of the test split is in the train split."""
    words = build_words(seed)
    half = len(words) * 2 // 3
    return {"train": make_split("train", words[:half], seed), "test": make_split("test", words[half:], seed)}


def write(folder: Path, seed: int = SEED) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for split, data in build(seed).items():
        path = folder / f"{split}.jsonl"
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data.rows)
        path.write_text(text, encoding="utf-8", newline="\n")
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="the folder to write train.jsonl and test.jsonl into")
    parser.add_argument("--check", action="store_true", help="compare with the files in --out, write nothing")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write(args.out):
            print(f"{path}: {sum(1 for _ in path.open(encoding='utf-8'))} rows")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        stale = [p.name for p in write(Path(tmp)) if not (args.out / p.name).is_file()
                 or (args.out / p.name).read_bytes() != p.read_bytes()]  # fmt: skip
    print("up to date" if not stale else f"out of date: {', '.join(stale)} (run without --check)")
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
