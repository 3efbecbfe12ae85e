"""How each task's result is shown: pure functions from a pipeline result to component values.

No Gradio event wiring here (that is `tabs.pipelines.tab`), so each view is easy to test.
"""

from __future__ import annotations

import html
from typing import Any

# Probability buckets for the token view: low = the model hesitated, high = it was sure.
_PROB_COLOURS = ((0.1, "#fcd5d5"), (0.3, "#fde7c8"), (0.6, "#fdf6c3"), (0.85, "#e3f4d7"), (1.01, "#c9ecd4"))
_NER_COLOURS = {"PER": "#f9c6d0", "LOC": "#c8e6ff", "ORG": "#d9d2ff", "MISC": "#fde2b3"}


def as_label(result: Any) -> dict[str, float]:
    """Scores for `gr.Label`, from classification, zero-shot or fill-mask output."""
    if isinstance(result, dict) and "labels" in result:  # zero-shot
        return dict(zip(result["labels"], result["scores"], strict=True))
    rows = result[0] if result and isinstance(result[0], list) else result
    scores: dict[str, float] = {}
    for row in rows or []:
        name = row.get("label") or row.get("token_str", "").strip() or str(row.get("token", "?"))
        scores[name] = max(scores.get(name, 0.0), float(row["score"]))
    return scores


def entity_group(entity: dict) -> str:
    label = entity.get("entity_group") or entity.get("entity", "")
    return label.split("-", 1)[-1] if label[:2] in ("B-", "I-") else label


def entities_highlight(text: str, entities: list[dict]) -> dict:
    """`gr.HighlightedText` value placed by character offsets, so a repeated word is marked where it was found."""
    return {
        "text": text,
        "entities": [
            {"entity": entity_group(e), "start": int(e["start"]), "end": int(e["end"])}
            for e in entities
            if e.get("start") is not None and e.get("end") is not None
        ],
    }


def entities_table(entities: list[dict]) -> list[list]:
    return [
        [entity_group(e), e.get("word", ""), round(float(e["score"]), 4), e.get("start"), e.get("end")]
        for e in entities
    ]


def ner_colours() -> dict[str, str]:
    return dict(_NER_COLOURS)


def qa_highlight(context: str, answers: list[dict]) -> dict:
    """The best answer marked inside the context, from its character offsets (never by searching for the text)."""
    best = answers[0] if answers else None
    if not best or best["start"] == best["end"]:
        return {"text": context, "entities": []}
    return {"text": context, "entities": [{"entity": "answer", "start": best["start"], "end": best["end"]}]}


def qa_table(answers: list[dict]) -> list[list]:
    return [[a["answer"] or "(no answer)", round(float(a["score"]), 4), a["start"], a["end"]] for a in answers]


def similarity_table(source: str, sentences: list[str], scores: list[float]) -> list[list]:
    rows = sorted(zip(sentences, scores, strict=True), key=lambda pair: -pair[1])
    return [[sentence, round(score, 4)] for sentence, score in rows]


SIMILARITY_LABEL = "Similarity to the source sentence S (cosine similarity in %; below 0 drawn as 0)"
MATRIX_LABEL = "Every pair (cosine similarity in %): S is the source sentence, 1, 2, 3… the sentences compared"
MULTI_LABEL_NOTE = (
    "Several labels may be true, so each bar is, on its own, the cosine similarity between the text and "
    "“This text is about *label*.” (0 % = unrelated in meaning). It is not a probability, and it is usually small "
    "even for the right label: compare the bars with each other, or untick *Several labels may be true* to see "
    "which label fits best."
)


def _number(index: int) -> str:
    """How the similarity views name a sentence: S for the source, then 1, 2, 3… as typed."""
    return "S" if index == 0 else str(index)


def similarity_bars(sentences: list[str], scores: list[float]) -> dict[str, float]:
    """`gr.Label` bars numbered as typed (1, 2, 3…, like the table); gr.Label draws 0..1, so negatives are 0."""
    return {
        f"{i}. {sentence}": max(float(score), 0.0)
        for i, (sentence, score) in enumerate(zip(sentences, scores, strict=True), 1)
    }


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"  # as gr.Label writes it


def matrix_table(sentences: list[str], matrix: list[list[float]]) -> tuple[list[str], list[list]]:
    """(headers, rows) of the pairwise similarity table, in % like the bars. `sentences[0]` is the source (S), the
    others are numbered 1, 2, 3… as typed; sentences are shortened to fit."""
    names = [f"{_number(i)}. {s[:40] + ('…' if len(s) > 40 else '')}" for i, s in enumerate(sentences)]
    return ["", *[_number(i) for i in range(len(sentences))]], [
        [name, *[_percent(x) for x in row]] for name, row in zip(names, matrix, strict=True)
    ]


def _visible(token: str) -> str:
    return token.replace("\n", "↵\n").replace("\t", "→\t")


def token_html(tokens: list[dict]) -> str:
    """Each generated token coloured by its probability; hovering shows the five likeliest alternatives."""
    spans = []
    for step in tokens:
        if step.get("special"):
            continue
        colour = next(c for limit, c in _PROB_COLOURS if step["prob"] < limit)
        alternatives = "\n".join(f"{t['token']!r}  {t['prob']:.1%}" for t in step["top"])
        title = html.escape(f"chosen {step['token']!r}: {step['prob']:.1%}\nalternatives:\n{alternatives}")
        spans.append(
            f"<span class='pg-tok' style='background:{colour}' title=\"{title}\">"
            f"{html.escape(_visible(step['token']))}</span>"
        )
    legend = "".join(
        f"<span class='pg-tok' style='background:{c}'>{label}</span>"
        for (_, c), label in zip(_PROB_COLOURS, ("< 10 %", "< 30 %", "< 60 %", "< 85 %", "≥ 85 %"), strict=True)
    )
    return (
        "<div class='pg-tokens'>" + "".join(spans) + "</div>"
        f"<div class='pg-legend'>How likely each chosen token was: {legend} · hover a token for alternatives</div>"
    )


def feature_summary(result: list) -> dict:
    vectors = result[0]
    return {
        "tokens": len(vectors),
        "dimensions": len(vectors[0]) if vectors else 0,
        "first token, first 8 numbers": [round(x, 4) for x in vectors[0][:8]] if vectors else [],
    }
