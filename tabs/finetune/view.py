"""HTML for the Fine-tune tab: the data report (labels, gaps, token lengths), and the evaluation report of a trained
model (metrics, per-class table, confusion matrix, sample predictions). Plain functions of dicts; no Gradio here."""

from __future__ import annotations

import html

from services.training.metrics import NAMES

_NAMES = NAMES


def _e(value) -> str:
    return html.escape(str(value))


def _bar(share: float, label: str = "") -> str:
    return (
        f"<div class='pg-hbar'><div style='width:{max(0.0, min(1.0, share)) * 100:.1f}%'></div>"
        f"<span>{_e(label)}</span></div>"
    )


def data_report_html(report: dict) -> str:
    """The data checks: counts, label balance, warnings and the token length histogram."""
    parts = [
        "<div class='pg-ft-report'>",
        f"<div class='pg-counts'><span><b>{report['rows']:,}</b> rows</span>"
        + "".join(f"<span>{_e(name)}: <b>{n:,}</b></span>" for name, n in report.get("splits", {}).items())
        + f"<span>empty: <b>{report.get('empty', 0):,}</b></span>"
        f"<span>duplicates: <b>{report.get('duplicates', 0):,}</b></span>"
        f"<span>no label: <b>{report.get('missing_labels', 0):,}</b></span></div>",
    ]
    for warning in report.get("warnings", []):
        parts.append(f"<div class='pg-warn'>⚠️ {_e(warning)}</div>")
    labels = report.get("labels") or []
    if labels:
        parts.append(f"<h4>Labels ({len(labels)})</h4>")
        for row in labels[:30]:
            count = f"{row['count']:,} · {row['share']:.0%}"
            parts.append(f"<div class='pg-hrow'><code>{_e(row['label'])}</code>{_bar(row['share'], count)}</div>")
        if len(labels) > 30:
            parts.append(f"<div class='pg-note'>… and {len(labels) - 30} more labels.</div>")
    target = report.get("target")
    if target:
        parts.append(
            f"<h4>Target</h4><div>from {target['min']:g} to {target['max']:g}, mean {target['mean']:.3g}</div>"
        )
    lengths = report.get("lengths")
    if lengths:
        top = max((b["count"] for b in lengths["histogram"]), default=1) or 1
        cut = lengths["max_length"]
        bars = "".join(
            f"<div class='pg-hist-bar{' pg-cut' if b['start'] >= cut else ''}' "
            f"style='height:{b['count'] / top * 100:.1f}%' "
            f"title='{b['start']}–{b['end'] - 1} tokens: {b['count']:,} texts'></div>"
            for b in lengths["histogram"]
        )
        parts.append(
            f"<h4>Token lengths (with the model's tokenizer, {lengths['sampled']:,} texts)</h4>"
            f"<div class='pg-hist'>{bars}</div>"
            f"<div class='pg-note'>median {lengths['p50']} · 95% under {lengths['p95']} · longest {lengths['max']} · "
            f"<b>{lengths['truncated_share']:.1%}</b> longer than max_length ({cut}) would be cut "
            "(red bars).</div>"
        )
    parts.append("</div>")
    return "".join(parts)


def _metrics_table(metrics: dict, title: str) -> str:
    rows = "".join(
        f"<tr><td>{_NAMES[k]}</td><td><b>{v:.4g}</b></td></tr>"
        for k, v in metrics.items()
        if k in _NAMES and isinstance(v, int | float)
    )
    return f"<div><h4>{_e(title)}</h4><table class='pg-table'>{rows}</table></div>" if rows else ""


def _confusion(matrix: list[list[int]], labels: list[str]) -> str:
    top = max((max(row) for row in matrix), default=1) or 1
    head = "".join(f"<th>{_e(label)}</th>" for label in labels)
    body = ""
    for i, (label, row) in enumerate(zip(labels, matrix, strict=False)):
        cells = "".join(
            f"<td style='background:rgba(234,88,12,{0.08 + 0.8 * n / top:.2f})'"
            f"{' class=pg-diag' if i == j else ''}>{n}</td>"
            for j, n in enumerate(row)
        )
        body += f"<tr><th>{_e(label)}</th>{cells}</tr>"
    return (
        "<div><h4>Confusion matrix</h4><table class='pg-confusion'>"
        f"<tr><th>true ↓ / predicted →</th>{head}</tr>{body}</table></div>"
    )


def result_html(outputs: dict) -> str:
    """The report of a finished training: where the model is, its metrics, per class, confusion, samples."""
    summary, report = outputs.get("summary") or {}, outputs.get("report") or {}
    if not summary:
        return ""
    parts = ["<div class='pg-ft-result'>"]
    if outputs.get("model_id"):
        parts.append(
            f"<div class='pg-ok'>✓ <b>{_e(outputs['model_id'])}</b> is ready: {summary.get('train_rows', 0):,} rows, "
            f"{summary.get('epochs') or 0:.1f} epochs in {summary.get('seconds', 0):.0f} s. Try it in the Pipelines "
            "tab, push it to the Hub, or make a demo Space below.</div>"
        )
    push = summary.get("push") or {}
    if push.get("url"):
        parts.append(
            f"<div class='pg-ok'>Pushed to <a href='{_e(push['url'])}' target='_blank'>{_e(push['url'])}</a></div>"
        )
    elif push.get("error"):
        parts.append(f"<div class='pg-warn'>The push failed: {_e(push['error'])} The model is kept here.</div>")
    parts.append("<div class='pg-ft-metrics'>")
    parts.append(_metrics_table(summary.get("metrics") or {}, "Evaluation (held out)"))
    if summary.get("test_metrics"):
        parts.append(_metrics_table(summary["test_metrics"], "Test split (never seen in training)"))
    if report.get("confusion_matrix"):
        parts.append(_confusion(report["confusion_matrix"], report.get("labels") or []))
    parts.append("</div>")
    per_class = report.get("per_class") or {}
    if per_class:
        rows = "".join(
            f"<tr><td><code>{_e(name)}</code></td><td>{m.get('precision', float('nan')):.3f}</td>"
            f"<td>{m.get('recall', float('nan')):.3f}</td><td>{m['f1']:.3f}</td><td>{m['support']}</td></tr>"
            for name, m in per_class.items()
        )
        parts.append(
            "<h4>Per class</h4><table class='pg-table'><tr><th>class</th><th>precision</th><th>recall</th>"
            f"<th>F1</th><th>support</th></tr>{rows}</table>"
        )
    samples = report.get("samples") or []
    if samples:
        rows = "".join(
            f"<tr class='{'pg-right' if str(s['expected']) == str(s['predicted']) else 'pg-wrong'}'>"
            f"<td>{_e(str(s['text'])[:300])}</td><td>{_e(s['expected'])}</td><td>{_e(s['predicted'])}</td></tr>"
            for s in samples
        )
        parts.append(
            "<h4>Sample predictions (evaluation rows)</h4><table class='pg-table pg-samples'><tr><th>text</th>"
            f"<th>expected</th><th>predicted</th></tr>{rows}</table>"
        )
    parts.append("</div>")
    return "".join(parts)
