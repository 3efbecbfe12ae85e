"""The Fine-tune tab's curves as inline SVG: loss, and the evaluation metrics, each series with its own colour, dash
and marker (accuracy and F1 are often equal: both stay visible), axis ticks at round values, and a chart of one
step shown as its values instead. Above them, the sentence that says when the model starts to overfit.
Plain functions of the curve rows ``{step, epoch, series, value}``; no Gradio here."""

from __future__ import annotations

import html
import math

from services.training.curves import one_per_step, overfit_note
from services.training.metrics import NAMES

LOSSES = ("loss", "eval_loss")
# colour, dash pattern, marker: told apart by shape as well as colour, drawn last-on-top with hollow markers.
STYLES = [
    ("#ea580c", "", "circle"),
    ("#2563eb", "7 4", "square"),
    ("#16a34a", "2 3", "triangle"),
    ("#9333ea", "9 3 2 3", "diamond"),
    ("#0891b2", "4 2", "circle"),
    ("#be123c", "1 2", "square"),
]
W, H, LEFT, RIGHT, TOP, BOTTOM = 520, 230, 56, 14, 34, 36
_MARKED_POINTS = 80  # more points than this: a line only (a dense training loss)


def label(series: str) -> str:
    """The name a person reads: "training loss", "evaluation loss", "F1", ..."""
    if series in LOSSES:
        return "training loss" if series == "loss" else "evaluation loss"
    name = series.removeprefix("eval_")
    return NAMES.get(name, name.replace("_", " "))


def nice_ticks(low: float, high: float, count: int = 5, whole: bool = False) -> list[float]:
    """About `count` round tick values covering [low, high] (1, 2 or 5 times a power of ten apart)."""
    if high <= low:
        high = low + (1 if whole else abs(low) * 0.1 or 0.1)
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, round(step))
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999 and len(ticks) < 12:
        ticks.append(round(value, 12))
        value += step
    return ticks


def tick_text(value: float, ticks: list[float]) -> str:
    """A tick label with just the decimals the ticks need to read apart: 0.25, 5, 1,200, never 5.000000."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = next((d for d in range(7) if all(abs(round(t, d) - t) <= step * 1e-6 for t in ticks)), 6)
    return f"{value:,.{decimals}f}"


def _value(v: float) -> str:
    return f"{v:.4g}"


def _marker(shape: str, x: float, y: float, colour: str, size: float, hollow: bool = False) -> str:
    """A point; `hollow` ones (the later series) let an equal point of another series show through."""
    fill = "none" if hollow else "var(--background-fill-primary, #fff)"
    common = f"fill='{fill}' stroke='{colour}' stroke-width='1.6'"
    if shape == "square":
        return f"<rect x='{x - size:.1f}' y='{y - size:.1f}' width='{2 * size:.1f}' height='{2 * size:.1f}' {common}/>"
    if shape in ("triangle", "diamond"):
        s = size * 1.2
        corners = [(x, y - s), (x - s, y + size), (x + s, y + size)] if shape == "triangle" else [
            (x, y - s), (x + s, y), (x, y + s), (x - s, y)]  # fmt: skip
        return f"<polygon points='{' '.join(f'{a:.1f},{b:.1f}' for a, b in corners)}' {common}/>"
    return f"<circle cx='{x:.1f}' cy='{y:.1f}' r='{size:.1f}' {common}/>"


def _values_card(title: str, by_series: dict[str, list[tuple[int, float]]]) -> str:
    """One step so far: its values, not a chart with a single point and meaningless axes."""
    (step,) = {s for points in by_series.values() for s, _ in points}
    values = "".join(
        f"<span><span style='color:{STYLES[i % len(STYLES)][0]}'>●</span> {html.escape(label(name))} "
        f"<b>{_value(points[-1][1])}</b></span>"
        for i, (name, points) in enumerate(by_series.items())
    )
    return (
        f"<div class='pg-chart pg-chart-values'><h4>{html.escape(title)}</h4><div class='pg-counts'>{values}</div>"
        f"<div class='pg-note'>evaluated once so far, at step {step:,}: a curve needs two evaluations.</div></div>"
    )


def chart_html(title: str, rows: list[dict]) -> str:
    """One chart of `rows` (one line per series), or its values when every row is at the same step; '' if none."""
    by_series: dict[str, list[tuple[int, float]]] = {}
    for row in one_per_step(rows):
        if math.isfinite(row["value"]):
            by_series.setdefault(row["series"], []).append((int(row["step"]), float(row["value"])))
    if not by_series:
        return ""
    steps = [s for points in by_series.values() for s, _ in points]
    if len(set(steps)) == 1:
        return _values_card(title, by_series)
    values = [v for points in by_series.values() for _, v in points]
    xt = nice_ticks(min(steps), max(steps), 6, whole=True)
    yt = nice_ticks(min(values), max(values), 5)
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def px(step: float) -> float:
        return LEFT + (step - x0) / ((x1 - x0) or 1) * (W - LEFT - RIGHT)

    def py(value: float) -> float:
        return H - BOTTOM - (value - y0) / ((y1 - y0) or 1) * (H - TOP - BOTTOM)

    parts = [
        f"<svg viewBox='0 0 {W} {H}' role='img' aria-label='{html.escape(title)}' "
        "style='width:100%;height:auto;font-size:11px' font-family='inherit'>"
    ]
    for v in yt:
        parts.append(
            f"<line x1='{LEFT}' x2='{W - RIGHT}' y1='{py(v):.1f}' y2='{py(v):.1f}' stroke='currentColor' "
            f"stroke-opacity='0.12'/><text x='{LEFT - 6}' y='{py(v) + 4:.1f}' text-anchor='end' fill='currentColor' "
            f"class='pg-tick'>{tick_text(v, yt)}</text>"
        )
    for s in xt:
        parts.append(
            f"<text x='{px(s):.1f}' y='{H - BOTTOM + 16}' text-anchor='middle' fill='currentColor' "
            f"class='pg-tick'>{tick_text(s, xt)}</text>"
        )
    parts.append(
        f"<text x='{(LEFT + W - RIGHT) / 2:.0f}' y='{H - 4}' text-anchor='middle' fill='currentColor' "
        "fill-opacity='0.7'>step</text>"
    )
    legend_x = LEFT
    for i, (name, points) in enumerate(by_series.items()):
        colour, dash, shape = STYLES[i % len(STYLES)]
        size = 3.2 + 1.2 * (i % 3)  # equal values draw nested shapes, not one hiding the other
        width = 2.6 if i == 0 else 1.8
        line = " ".join(f"{px(s):.1f},{py(v):.1f}" for s, v in points)
        parts.append(
            f"<polyline points='{line}' fill='none' stroke='{colour}' stroke-width='{width}' "
            f"stroke-dasharray='{dash}' stroke-linejoin='round' class='pg-series' data-series='{html.escape(name)}'/>"
        )
        if len(points) <= _MARKED_POINTS:
            for s, v in points:
                parts.append(
                    f"<g>{_marker(shape, px(s), py(v), colour, size, hollow=i > 0)}"
                    f"<title>{html.escape(label(name))} at step {s:,}: {_value(v)}</title></g>"
                )
        same = next((other for other, seen in list(by_series.items())[:i] if seen == points), None)
        text = html.escape(label(name) + (f" (= {label(same)})" if same else ""))
        parts.append(
            f"<g class='pg-legend'><line x1='{legend_x}' x2='{legend_x + 26}' y1='12' y2='12' stroke='{colour}' "
            f"stroke-width='{width}' stroke-dasharray='{dash}'/>{_marker(shape, legend_x + 13, 12, colour, 3.4)}"
            f"<text x='{legend_x + 32}' y='16' fill='currentColor'>{text}</text></g>"
        )
        legend_x += 44 + 6.5 * len(text)
    parts.append("</svg>")
    return f"<div class='pg-chart'><h4>{html.escape(title)}</h4>{''.join(parts)}</div>"


def charts_html(rows: list[dict]) -> str:
    """The loss and evaluation charts side by side, under the overfitting sentence when the curves show it."""
    losses = [r for r in rows if r["series"] in LOSSES]
    # Generated length is in tokens, not a score: on the same axis it would flatten the ROUGE lines.
    evals = [r for r in rows if r["series"].startswith("eval_") and r["series"] not in LOSSES
             and not r["series"].endswith("gen_len")]  # fmt: skip
    note = overfit_note(rows)
    charts = [chart_html("Loss", losses), chart_html("Evaluation", evals)]
    body = "".join(f"<div style='flex:1 1 380px;min-width:0'>{c}</div>" for c in charts if c)
    if not body:
        return ""
    warn = f"<div class='pg-warn pg-overfit'>⚠️ {html.escape(note)}</div>" if note else ""
    return f"<div class='pg-ft-charts'>{warn}<div style='display:flex;flex-wrap:wrap;gap:16px'>{body}</div></div>"
