"""RAG quality on bench/rag_eval (12 invented documents, 48 questions): retrieval hit rate and answer accuracy.

    python -m bench.rag_quality [--chunk-size 160] [--overlap 32] [--top-k 4] [--sentences 6] [--bonus 0.5]
                                [--number-bonus 0.1] [--contrast 0] [--oracle] [--no-answers] [--limit N] [-v]

Retrieval: the question's document among the top 3 citations (goal >= 90%). Answers: one of the question's
`accept` strings in the packaged SmolLM2-135M-Instruct's answer (goal >= 75%).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EVAL = ROOT / "bench" / "rag_eval"


def evaluate(chunk_size: int, overlap: int, top_k: int, sentences: int, full: bool, answers: bool, limit: int | None,
             weight: float = 0.5, verbose: bool = False, oracle: bool = False) -> dict:  # fmt: skip
    from services.rag import answer as rag

    questions = [json.loads(line) for line in (EVAL / "questions.jsonl").read_text().splitlines() if line.strip()]
    questions = questions[:limit] if limit else questions
    owner = f"bench:{chunk_size}-{overlap}"
    rag.ingest("eval", sorted((EVAL / "docs").glob("*.md")), owner, chunk_size=chunk_size, overlap=overlap)
    found = right = in_prompt = first = 0
    started = time.perf_counter()
    asked: dict = {}
    if oracle:  # the model's ceiling: the sentence that holds the answer (if retrieved) is the only one it reads
        select, rag.PROMPT_SENTENCES = rag._select_sentences, 1

        def only_the_answer(hits, *args, **kwargs):
            select(hits, *args, **kwargs)
            for h in hits:
                h.scored = [(o, s + 100.0 * _holds(t, asked), t) for o, s, t in h.scored]

        rag._select_sentences = only_the_answer
    for q in questions:
        asked.clear()
        asked.update(q)
        hits = rag.retrieve("eval", q["question"], owner, top_k=top_k, hybrid_weight=weight)
        top3 = [h.source for h in hits[:3]]
        found += q["document"] in top3
        best = max((s for h in hits for s in h.scored), key=lambda s: s[1], default=(0, 0.0, ""))
        first += _holds(best[2], q)
        in_prompt += _holds(rag.build_prompt(q["question"], hits)[-1]["content"], q)
        if answers:
            answer = rag.ask("eval", q["question"], owner, top_k=top_k, hybrid_weight=weight)["answer"]
            ok = _holds(answer, q)
            right += ok
            if verbose and not ok:
                print(f"  ✗ {q['question']} -> {answer!r} (want {q['answer']}; top {top3})")
    n = len(questions)
    return {"retrieval": found / n, "answers": right / n if answers else None, "n": n, "first": first / n,
            "in_prompt": in_prompt / n, "seconds": time.perf_counter() - started}  # fmt: skip


def _holds(text: str, q: dict) -> bool:
    return any(a.lower() in text.lower() for a in q["accept"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunk-size", type=int, default=160)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=4)
    parser.add_argument("--style", choices=["chat", "plain"], default="chat")
    parser.add_argument("--example", action="store_true", help="show the model one worked question first")
    parser.add_argument("--order", choices=["source", "relevance"], default="source")
    parser.add_argument("--sentences", type=int, default=6, help="sentences shown to the model (over all passages)")
    parser.add_argument("--bonus", type=float, default=0.5, help="weight of the question's (rare) words in a sentence")
    parser.add_argument("--number-bonus", type=float, default=0.1, help="for a number, when the question asks for one")
    parser.add_argument("--weight", type=float, default=0.5)
    parser.add_argument("--contrast", type=float, default=0.0, help="context-aware decoding strength (0: off)")
    parser.add_argument("--full-chunks", action="store_true")
    parser.add_argument("--no-answers", action="store_true")
    parser.add_argument("--oracle", action="store_true", help="show the model only the sentence with the answer")
    parser.add_argument("--limit", type=int)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    from services.rag import answer as rag

    rag.PROMPT_SENTENCES, rag.WORD_BONUS, rag.PROMPT_STYLE = args.sentences, args.bonus, args.style
    rag.PROMPT_EXAMPLE, rag.PROMPT_ORDER, rag.NUMBER_BONUS = args.example, args.order, args.number_bonus
    rag.CONTRAST = args.contrast
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("PLAYGROUND_HOME", home)
        result = evaluate(args.chunk_size, args.overlap, args.top_k, args.sentences, args.full_chunks,
                          not args.no_answers, args.limit, args.weight, args.verbose, args.oracle)  # fmt: skip
    answers = "—" if result["answers"] is None else f"{result['answers']:.0%}"
    print(f"chunk {args.chunk_size}/{args.overlap}, top-k {args.top_k}, weight {args.weight}: right document in top 3 "
          f"{result['retrieval']:.0%}, answer in the best sentence {result['first']:.0%}, in the prompt "
          f"{result['in_prompt']:.0%}, right fact in the answer {answers} "
          f"(n={result['n']}, {result['seconds']:.0f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
