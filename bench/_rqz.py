import json, math, sys
from pathlib import Path
import numpy as np
from services import rag, rag_index
qs = [json.loads(l) for l in open("bench/rag_eval/questions.jsonl")]
docs = sorted(Path("bench/rag_eval/docs").glob("*.md"))
def inprompt(text, q): return any(x.lower() in text.lower() for x in q["accept"])
for size in (64, 96, 160):
    owner = f"o{size}"
    rag.ingest("eval", docs, owner, chunk_size=size, overlap=16 if size < 160 else 32)
    res = {}
    for q in qs:
        hits = rag.retrieve("eval", q["question"], owner, top_k=6)
        for k in (1, 2, 3):
            res.setdefault(f"full top{k}", []).append(inprompt(" ".join(h.text for h in hits[:k]), q))
        for budget in (2, 4, 6, 8):
            for bonus in (0.0, 0.3, 1.0):
                rag.WORD_BONUS = bonus
                rag._select_sentences(hits, rag.embed([q["question"]])[0], rag.EMBEDDER, q["question"])
                p = rag.build_prompt(q["question"], hits[:4], budget=budget)[1]["content"]
                res.setdefault(f"sent{budget} bonus{bonus}", []).append(inprompt(p, q))
    print(size, {k: f"{sum(v)/len(v):.0%}" for k, v in res.items()})
