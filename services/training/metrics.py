"""Evaluation metrics for the fine-tune launcher, in plain numpy (no `evaluate` downloads at run time).

Classification: accuracy, macro F1, per-class precision/recall/F1 and the confusion matrix. Multi-label: micro and
macro F1 over labels. NER: entity-level precision/recall/F1 as seqeval computes it (IOB2 spans that match exactly).
Summarization: ROUGE-1/2/L F-measures and corpus BLEU-4 on lower-cased word tokens. Regression: MSE, MAE, Pearson.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from services.hub.cards import METRIC_NAMES as NAMES  # noqa: F401  (reports use it)


def classification(labels, predictions, names: list[str]) -> dict:
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    n = len(names)
    matrix = np.zeros((n, n), dtype=int)
    for gold, pred in zip(labels, predictions, strict=True):
        matrix[gold, pred] += 1
    per_class = {}
    f1s = []
    for i, name in enumerate(names):
        tp = matrix[i, i]
        precision = tp / matrix[:, i].sum() if matrix[:, i].sum() else 0.0
        recall = tp / matrix[i, :].sum() if matrix[i, :].sum() else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(matrix[i, :].sum()),
        }
        if matrix[i, :].sum():  # classes absent from the evaluation data do not drag the average down
            f1s.append(f1)
    accuracy = float((labels == predictions).mean()) if len(labels) else 0.0
    return {
        "accuracy": accuracy,
        "f1": float(np.mean(f1s)) if f1s else 0.0,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
    }


def multi_label(labels, predictions, names: list[str]) -> dict:
    labels, predictions = np.asarray(labels).astype(bool), np.asarray(predictions).astype(bool)
    tp = (labels & predictions).sum(0)
    fp = (~labels & predictions).sum(0)
    fn = (labels & ~predictions).sum(0)
    per = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    micro = 2 * tp.sum() / max(2 * tp.sum() + fp.sum() + fn.sum(), 1)
    return {
        "f1": float(per.mean()),
        "f1_micro": float(micro),
        "exact_match": float((labels == predictions).all(1).mean()) if len(labels) else 0.0,
        "per_class": {name: {"f1": float(per[i]), "support": int(labels[:, i].sum())} for i, name in enumerate(names)},
    }


def entity_spans(tags: list[str]) -> set[tuple[str, int, int]]:
    """(type, start, end) spans in an IOB2 sequence; an I- without its B- starts a span, as seqeval does."""
    spans, kind, start = set(), None, 0
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, label = tag.partition("-")
        if kind is not None and (prefix != "I" or label != kind):
            spans.add((kind, start, i))
            kind = None
        if prefix == "B" or (prefix == "I" and kind is None):
            kind, start = label, i
    return spans


def entities(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    found = expected = correct = 0
    by_type: dict[str, Counter] = {}
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = entity_spans(g), entity_spans(p)
        found, expected, correct = found + len(ps), expected + len(gs), correct + len(gs & ps)
        for key, spans in (("expected", gs), ("found", ps), ("correct", gs & ps)):
            for kind, _, _ in spans:
                by_type.setdefault(kind, Counter())[key] += 1
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    per_type = {}
    for kind, c in sorted(by_type.items()):
        p = c["correct"] / c["found"] if c["found"] else 0.0
        r = c["correct"] / c["expected"] if c["expected"] else 0.0
        per_type[kind] = {
            "precision": p,
            "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0,
            "support": c["expected"],
        }
    tokens = sum(len(g) for g in gold)
    same = sum(a == b for g, p in zip(gold, predicted, strict=True) for a, b in zip(g, p, strict=True))
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": same / tokens if tokens else 0.0,
        "per_class": per_type,
    }


_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _ngrams(words: list[str], n: int) -> Counter:
    return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))


def _lcs(a: list[str], b: list[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def _f(overlap: int, predicted: int, reference: int) -> float:
    if not overlap:
        return 0.0
    p, r = overlap / predicted, overlap / reference
    return 2 * p * r / (p + r)


def rouge(predictions: list[str], references: list[str]) -> dict:
    scores = {"rouge1": [], "rouge2": [], "rougeL": []}
    for pred, ref in zip(predictions, references, strict=True):
        pw, rw = _words(pred), _words(ref)
        for n, key in ((1, "rouge1"), (2, "rouge2")):
            pn, rn = _ngrams(pw, n), _ngrams(rw, n)
            scores[key].append(_f(sum((pn & rn).values()), sum(pn.values()), sum(rn.values())))
        scores["rougeL"].append(_f(_lcs(pw, rw), len(pw), len(rw)))
    return {k: float(np.mean(v)) if v else 0.0 for k, v in scores.items()}


def bleu(predictions: list[str], references: list[str], max_n: int = 4) -> float:
    """Corpus BLEU-4 with the brevity penalty (one reference per prediction), 0..100."""
    matches, totals = [0] * max_n, [0] * max_n
    pred_len = ref_len = 0
    for pred, ref in zip(predictions, references, strict=True):
        pw, rw = _words(pred), _words(ref)
        pred_len, ref_len = pred_len + len(pw), ref_len + len(rw)
        for n in range(1, max_n + 1):
            pn, rn = _ngrams(pw, n), _ngrams(rw, n)
            matches[n - 1] += sum((pn & rn).values())
            totals[n - 1] += max(len(pw) - n + 1, 0)
    if not pred_len or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals, strict=True)) / max_n
    penalty = 1.0 if pred_len > ref_len else math.exp(1 - ref_len / pred_len)
    return 100 * penalty * math.exp(log_precision)


def regression(targets, predictions) -> dict:
    t, p = np.asarray(targets, dtype=float).ravel(), np.asarray(predictions, dtype=float).ravel()
    pearson = float(np.corrcoef(t, p)[0, 1]) if len(t) > 1 and t.std() and p.std() else 0.0
    return {"mse": float(((t - p) ** 2).mean()), "mae": float(np.abs(t - p).mean()), "pearson": pearson}
