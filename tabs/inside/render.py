"""HTML for the "Inside a model" tab: the anatomy (parts, memory, config fields, module tree), the tokens, the
head summary, the layer updates, the logit lens and one head's token-to-token lines.

Every string that comes from a model (token pieces, module names, config values) is escaped: a token such as
``<|im_end|>`` or ``<b>`` is shown as text. Colours carry one meaning each: orange is "how much" (attention,
probability, share), and each kind of head has its own hue, named in a legend.
"""

from __future__ import annotations

import html
from typing import Any

_GROUP_COLOURS = {"embeddings": "#f59e0b", "attention": "#3b82f6", "mlp": "#10b981", "norms": "#a855f7",
                  "head": "#ef4444", "other": "#9ca3af", "adapter": "#ec4899"}  # fmt: skip
KIND_COLOURS = {"previous": "#3b82f6", "first": "#9ca3af", "self": "#10b981", "next": "#06b6d4",
                "same_word": "#a855f7", "broad": "#f59e0b", "mixed": "#e5e7eb"}  # fmt: skip
MAX_TREE_ROWS = 1_500  # module rows shown in the tree (a 30-layer model has ~400)


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def piece(text: str) -> str:
    """A token's text as it can be seen: a newline as ⏎, a tab as ⇥, nothing as ␣ (escaped for HTML)."""
    return e(str(text).replace("\r", "␍").replace("\n", "⏎").replace("\t", "⇥")) or "␣"


def _count(n: int) -> str:
    """1_234_567 -> '1.23 M'; short enough for a table cell, exact in the tooltip."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return str(n)


def notices_html(notices: list[str]) -> str:
    return "".join(f"<div class='pg-warn pg-in-notice'>{e(n)}</div>" for n in notices)


def memory_html(memory: dict) -> str:
    cells = "".join(f"<div class='pg-stat'><b>{e(v['human'])}</b><span>{e(k)}</span></div>" for k, v in memory.items())
    return f"<div class='pg-stats'>{cells}</div>"


def groups_html(groups: list[dict]) -> str:
    """The share of parameters per kind of layer: one stacked bar and its legend."""
    bar, legend = [], []
    for g in groups:
        if not g["parameters"]:
            continue
        colour = _GROUP_COLOURS.get(g["group"], "#9ca3af")
        share = 100 * g["share"]
        tip = f"{g['label']}: {g['parameters']:,} parameters ({share:.1f} %)"
        bar.append(f"<div style='width:{share:.2f}%;background:{colour}' title='{e(tip)}'></div>")
        legend.append(f"<span><i style='background:{colour}'></i>{e(g['label'])} <b>{share:.1f} %</b> "
                      f"<small>{_count(g['parameters'])}</small></span>")  # fmt: skip
    return f"<div class='pg-in-share'>{''.join(bar)}</div><div class='pg-in-legend'>{''.join(legend)}</div>"


def anatomy_html(info: dict) -> str:
    total, trainable = info["total_parameters"], info.get("trainable_parameters", info["total_parameters"])
    head = (f"<p><b>{e(info['model'])}</b> is a <code>{e(info.get('architecture', ''))}</code> with "
            f"<b>{total:,}</b> parameters")  # fmt: skip
    head += f" ({trainable:,} trainable).</p>" if trainable != total else ".</p>"
    blocks = info.get("blocks")
    if blocks:
        head += (f"<p>Its core is <b>{blocks['count']} × {e(blocks['type'])}</b> (one transformer block each, "
                 f"{blocks['parameters_each']:,} parameters apiece): the text goes through them one after the "
                 "other.</p>")  # fmt: skip
    notes = "".join(f"<p class='pg-note'>{e(n)}</p>" for n in info.get("notes", []))
    parts = (f"<h4>Where the parameters are</h4>{groups_html(info.get('groups', []))}"
             f"<h4>Memory for the weights alone</h4>{memory_html(info['memory'])}"
             "<p class='pg-note'>Training needs about 4x the fp32 figure (gradients and the optimizer's two "
             "moments); running it needs the weights plus a little for the activations.</p>")  # fmt: skip
    return f"<div class='pg-in-anatomy'>{head}{notes}{parts}</div>"


def fields_html(fields: list[dict]) -> str:
    rows = "".join(
        f"<tr><td><code>{e(f['field'])}</code></td><td>{e(_value(f['value']))}</td>"
        f"<td>{e(f['explanation'].split(': ', 1)[-1])}</td></tr>"
        for f in fields
    )
    return ("<table class='pg-table pg-in-fields'><tr><th>Config field</th><th>Value</th><th>What it means</th></tr>"
            f"{rows}</table>")  # fmt: skip


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def tree_html(modules: list[dict], shapes: dict | None = None) -> str:
    """Every named module as a folding tree (the blocks folded), each with its parameters and its share."""
    if not modules:
        return ""
    total = max(1, modules[0]["parameters"])
    names = {m["name"] for m in modules}
    children: dict[str, list[dict]] = {}
    for m in modules[1:MAX_TREE_ROWS]:
        parent = m["name"].rpartition(".")[0]
        while parent and parent not in names:  # a ModuleList's items hang under it, never under a bare index
            parent = parent.rpartition(".")[0]
        children.setdefault(parent, []).append(m)

    def node(m: dict, depth: int) -> str:
        label = m["name"].rpartition(".")[2] or "(the whole model)"
        share = 100 * m["parameters"] / total
        bar = f"<span class='pg-in-mini'><i style='width:{min(100.0, share):.1f}%'></i></span>"
        line = (f"<span class='pg-in-node'><code>{e(label)}</code> <small>{e(m['type'])}</small>"
                f"<span class='pg-in-count' title='{m['parameters']:,} parameters'>{_count(m['parameters'])}"
                f"</span>{bar}</span>")  # fmt: skip
        own = (shapes or {}).get(m["name"]) or {}
        if own:  # its own weights: "weight 576×1536 · bias 1536"
            dims = " · ".join(f"{e(k)} {'×'.join(str(d) for d in v)}" for k, v in own.items())
            line = line.replace("</span></span>", f"</span><small class='pg-in-shape'>{dims}</small></span>", 1)
        kids = children.get(m["name"], [])
        if not kids:
            return f"<div class='pg-in-leaf'>{line}</div>"
        inner = "".join(node(k, depth + 1) for k in kids)
        return f"<details{' open' if depth == 0 else ''}><summary>{line}</summary>{inner}</details>"

    more = len(modules) - MAX_TREE_ROWS
    tail = f"<p class='pg-note'>{more:,} more modules are not shown.</p>" if more > 0 else ""
    return f"<div class='pg-in-tree'>{node(modules[0], 0)}</div>{tail}"


def tokens_html(pieces: list[str], ids: list[int], total: int) -> str:
    chips = "".join(
        f"<span class='pg-in-tok' title='token {i} · id {tid}'><sub>{i}</sub>{piece(p)}</span>"
        for i, (p, tid) in enumerate(zip(pieces, ids, strict=True))
    )
    extra = f" (of {total:,})" if total > len(pieces) else ""
    return f"<p class='pg-note'>{len(pieces)} tokens{extra}:</p><div class='pg-in-toks'>{chips}</div>"


def heads_html(summary: dict, layers: int, heads: int) -> str:
    """Every head as a coloured cell (its kind): layers across, heads down, with the legend of kinds and counts."""
    kinds = summary["kinds"]
    cells = {(h["layer"], h["head"]): h for h in summary["heads"]}
    rows = []
    for head in range(heads):
        tds = []
        for layer in range(layers):
            h = cells[(layer, head)]
            tip = (f"layer {layer}, head {head}: {h['label']}. Previous {h['previous']:.0%}, first "
                   f"{h['first']:.0%}, itself {h['self']:.0%}, same word {h.get('same_word', 0):.0%}; spread "
                   f"{h['entropy']:.2f}")  # fmt: skip
            tds.append(f"<td style='background:{KIND_COLOURS.get(h['kind'], '#e5e7eb')}' title='{e(tip)}'></td>")
        rows.append(f"<tr><th>{head}</th>{''.join(tds)}</tr>")
    head_row = "<tr><th></th>" + "".join(f"<th>{layer}</th>" for layer in range(layers)) + "</tr>"
    used = {h["kind"] for h in summary["heads"]}
    legend = "".join(
        f"<div><i style='background:{KIND_COLOURS.get(k, '#e5e7eb')}'></i><b>{e(v['label'])}</b> "
        f"({summary['counts'].get(v['label'], 0)}): {e(v['meaning'])}</div>"
        for k, v in kinds.items() if k in used
    )  # fmt: skip
    return (f"<div class='pg-in-heads'><table><caption>head ↓ · layer →</caption>{head_row}{''.join(rows)}"
            f"</table><div class='pg-in-kinds'>{legend}</div></div>")  # fmt: skip


def updates_html(updates: list[dict]) -> str:
    """How much each block changes the hidden states (mean over tokens), as bars."""
    if not updates:
        return ""
    top = max(u["mean_norm"] for u in updates) or 1.0
    rows = "".join(
        f"<div class='pg-hrow'><code>layer {u['layer']}</code><div class='pg-hbar' title='mean change "
        f"{u['mean_norm']:.3g}, {100 * u['relative']:.0f} % of the hidden state'><div style='width:"
        f"{100 * u['mean_norm'] / top:.1f}%'></div><span>{u['mean_norm']:.3g} · {100 * u['relative']:.0f} %</span>"
        "</div></div>"
        for u in updates
    )
    return f"<div class='pg-in-updates'>{rows}</div>"


def lens_html(lens: dict | None, position: int | None = None) -> str:
    """The logit lens for one position: per layer, its top guesses shaded by probability, and how likely the
    model's final answer already is there."""
    if not lens or not lens.get("positions"):
        return "<div class='pg-empty'>No logit lens for this model (see the notice above).</div>"
    rows_of = {row["position"]: row for row in lens["positions"]}
    row = rows_of.get(position) if position is not None else None
    row = row or lens["positions"][-1]
    final = row["prediction"]
    body = []
    for layer in row["layers"]:
        guesses = "".join(
            f"<td style='background:rgba(245,158,11,{min(1.0, g['probability']):.3f})' "
            f"title='{e(g['token'])} · {g['probability']:.1%}'><code>{piece(g['token'])}</code>"
            f"<small>{g['probability']:.0%}</small></td>"
            for g in layer["top"]
        )
        mark = f"{layer.get('final_token_probability', 0):.1%}"
        body.append(f"<tr><th>{e(layer['label'])}</th>{guesses}<td class='pg-in-final'>{mark}</td></tr>")
    guess = "next token" if lens["kind"] == "next-token" else "word at the mask"
    head = (f"<p>The model's {guess} at position {row['position']}: <b><code>{piece(final['token'])}</code></b> "
            f"({final['probability']:.1%}). Each row reads the hidden state after that layer through the model's "
            "own final norm and output head: the guess takes shape layer by layer.</p>")  # fmt: skip
    cols = "".join(f"<th>#{i + 1}</th>" for i in range(lens["top_k"]))
    return (f"<div class='pg-in-lens'>{head}<table><tr><th>after</th>{cols}<th title='the probability of the final "
            f"answer at this layer'>final answer</th></tr>{''.join(body)}</table></div>")  # fmt: skip


def lines_svg(weights: Any, pieces: list[str], causal: bool) -> str:
    """bertviz's line view for one head: the tokens twice, a line from each token (left) to each token it looks
    at (right), as thick and dark as the attention. Hover a token on the left to see only its lines."""
    n = len(pieces)
    row_h, width = 18, 420
    height = row_h * n + 10
    groups = []
    for q in range(n):
        lines = []
        for k in range(n):
            w = float(weights[q][k])
            if w < 0.02:
                continue
            y1, y2 = 12 + q * row_h, 12 + k * row_h
            lines.append(f"<line x1='150' y1='{y1}' x2='{width - 150}' y2='{y2}' stroke-width='{1 + 5 * w:.2f}' "
                         f"style='stroke-opacity:{w:.3f}'/>")  # fmt: skip
        label = piece(pieces[q][:16])
        groups.append(f"<g class='pg-q'><text x='140' y='{16 + q * row_h}' text-anchor='end'>{label}</text>"
                      f"{''.join(lines)}</g>")  # fmt: skip
    keys = "".join(f"<text x='{width - 140}' y='{16 + k * row_h}'>{piece(p[:16])}</text>" for k, p in
                   enumerate(pieces))  # fmt: skip
    note = " (a causal model: a token only looks back)" if causal else ""
    return (f"<p class='pg-note'>Hover a token on the left: its lines go to the tokens it attends to{note}.</p>"
            f"<svg class='pg-in-lines' viewBox='0 0 {width} {height}' width='{width}' height='{height}'>"
            f"{''.join(groups)}<g class='pg-k'>{keys}</g></svg>")  # fmt: skip
