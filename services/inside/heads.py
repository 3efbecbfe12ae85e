"""What kind of head each attention head is, measured on the text the visitor typed.

For every head, the average share of attention each token gives to the previous token, to the first token, to
itself, to the next token (bidirectional models only) and to the other pieces of its own word, plus how evenly the
attention is spread (entropy, 0 = all on one token, 1 = even over every token it can see). A head whose average
share on one target passes a threshold gets that target's label; heads that spread their attention are "broad";
the rest are "mixed". The averages skip the first query (which can only look at itself in a causal model) and, for
the previous and first token, the second one too (there the previous token *is* the first).
"""

from __future__ import annotations

from typing import Any

# A head gets a label when its average share on that target is at least this.
SHARE_LABEL = 0.5
SAME_WORD_LABEL = 0.4
BROAD_ENTROPY = 0.85

# label key: (the label the UI shows, what it means for a student); all plain text.
KINDS = {
    "previous": ("previous-token head", "Mostly looks at the token just before: it helps copy and continue patterns."),
    "first": (
        "first-token (sink) head",
        "Parks most of its attention on the first token, a resting place when "
        "nothing else matters: a common habit of trained models.",
    ),
    "self": ("same-token head", "Mostly looks at the token itself: it passes the token's own meaning on."),
    "next": ("next-token head", "Mostly looks at the token just after (only models that read both ways can)."),
    "same_word": ("same-word head", "Looks at the other pieces of the same word: it glues a split word together."),
    "broad": ("broad head", "Spreads its attention over many tokens: it gathers a summary of the whole text."),
    "mixed": ("mixed head", "No single habit on this text: its pattern depends on the words."),
}


def _label(row: dict, causal: bool) -> str:
    targets = ["previous", "first", "self"] + ([] if causal else ["next"])
    best = max(targets, key=lambda key: row[key])
    if row[best] >= SHARE_LABEL:
        return best
    if row["same_word"] >= SAME_WORD_LABEL:
        return "same_word"
    return "broad" if row["entropy"] >= BROAD_ENTROPY else "mixed"


def measure(attentions: Any, word_ids: list[int | None], causal: bool) -> dict[str, Any]:
    """The shares per head, as float tensors of shape [layers, heads]: previous, first, self, next, same_word,
    entropy. `attentions` is [layers, heads, query, key]; `word_ids` gives each token's word (None: special)."""
    import torch

    att = attentions.float()
    n = att.shape[-1]
    idx = torch.arange(n)
    zero = att.new_zeros(att.shape[:2])
    start = 1 if n > 1 else 0  # skip the first query: in a causal model it can only look at itself
    later = 2 if n > 2 else start  # previous and first differ from the third query on
    shares = {
        # att[..., q, q-1] for q = 1..n-1, kept from q = `later` on
        "previous": att[..., idx[1:], idx[:-1]][..., later - 1 :].mean(-1) if n > 1 else zero,
        "first": att[..., later:, 0].mean(-1),
        "self": att[..., idx, idx][..., start:].mean(-1),
        "next": att[..., idx[:-1], idx[1:]].mean(-1) if n > 1 and not causal else zero,
    }
    words = torch.tensor([-1 if w is None else w for w in word_ids[:n]] + [-1] * max(0, n - len(word_ids)))
    same = (words[:, None] == words[None, :]) & (words[:, None] >= 0) & ~torch.eye(n, dtype=torch.bool)
    shares["same_word"] = (att * same).sum(-1)[..., start:].mean(-1)
    # Entropy over the keys each query can see (all of them, or those up to itself when causal), scaled to 0-1.
    visible = (idx + 1).float() if causal else torch.full((n,), float(n))
    entropy = -(att * torch.log(att.clamp_min(1e-12))).sum(-1)
    scaled = torch.where(visible > 1, entropy / torch.log(visible.clamp_min(2)), torch.zeros_like(entropy))
    shares["entropy"] = scaled[..., start:].mean(-1)
    return shares


def summarize(attentions: Any, word_ids: list[int | None], causal: bool, digits: int | None) -> dict[str, Any]:
    """{"heads": [{"layer", "head", "previous", "first", "self", "next", "same_word", "entropy", "kind", "label",
    "meaning"}, ...] (layer by layer, layers and heads counted from 0), "counts": {label: how many heads},
    "kinds": {kind: {"label", "meaning"}}}; floats rounded to `digits` (None: full precision)."""
    shares = measure(attentions, word_ids, causal)
    keys = list(shares)
    table = {key: value.tolist() for key, value in shares.items()}
    layers, heads = attentions.shape[:2]
    rows, counts = [], {}
    for layer in range(layers):
        for head in range(heads):
            row: dict[str, Any] = {"layer": layer, "head": head}
            for key in keys:
                value = float(table[key][layer][head])
                row[key] = round(value, digits) if digits is not None else value
            kind = _label(row, causal)
            label, meaning = KINDS[kind]
            row.update(kind=kind, label=label, meaning=meaning)
            counts[label] = counts.get(label, 0) + 1
            rows.append(row)
    kinds = {key: {"label": label, "meaning": meaning} for key, (label, meaning) in KINDS.items()}
    return {"heads": rows, "counts": counts, "kinds": kinds}
