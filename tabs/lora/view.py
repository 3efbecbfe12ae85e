"""HTML for the LoRA tab: the data statistics and loss-mask view, the adapter's size and memory/time estimate (and
what the job measured), the curves, the report of base vs adapter answers, and the merge checks. Plain functions of
the services' dicts; no Gradio here."""

from __future__ import annotations

import html

from tabs.finetune.charts import chart_html, charts_html

SHOWN_TOKENS = 400  # per example: a long conversation is cut in the view (the counts cover all of it)


def _e(value) -> str:
    return html.escape(str(value))


def _size(n: float | None) -> str:
    """Bytes in decimal units, as the estimate's sentence writes them."""
    if not n:
        return "–"
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.0f} MB"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f} M" if n >= 1e6 else f"{n:,}"


def mask_html(result: dict) -> str:
    """Statistics of the conversations, the warnings, and the first examples token by token (trained tokens in
    colour, masked ones grey)."""
    counts, stats = result.get("counts") or {}, result.get("statistics") or {}
    turns, tokens, roles = stats.get("turns") or {}, stats.get("tokens") or {}, stats.get("roles") or {}
    trained, masked = counts.get("trained", 0), counts.get("masked", 0)
    mapped = ", ".join(f"{k} ← <code>{_e(v)}</code>" for k, v in (result.get("columns") or {}).items())
    parts = [
        "<div class='pg-lora-mask'>",
        f"<div class='pg-counts'><span><b>{counts.get('rows', 0):,}</b> conversations</span>"
        f"<span>columns: {mapped}</span>"
        + "".join(f"<span>{_e(role)} turns: <b>{n:,}</b></span>" for role, n in roles.items())
        + f"<span>turns per conversation: {turns.get('min', 0)}–{turns.get('max', 0)} (median "
        f"{turns.get('median', 0)})</span><span>tokens: median <b>{tokens.get('median', 0):,}</b>, 95% under "
        f"{tokens.get('p95', 0):,}, longest {tokens.get('max', 0):,}</span>"
        f"<span>longer than max_length: <b>{counts.get('truncated', 0):,}</b> "
        f"({counts.get('truncated_share', 0):.0%})</span></div>",
    ]
    parts += [f"<div class='pg-warn'>⚠️ {_e(w)}</div>" for w in result.get("warnings") or []]
    share = trained / max(trained + masked, 1)
    parts.append(
        f"<div class='pg-legend'>Loss on <b>{_e(result.get('loss_on', 'completion'))}</b>: in the examples below "
        f"<span class='pg-tok pg-trained'>{trained:,} trained</span> and <span class='pg-tok pg-masked'>"
        f"{masked:,} masked</span> tokens ({share:.0%} trained). The model learns to write the coloured tokens; "
        "the grey ones are only read.</div>"
    )
    for example in result.get("examples") or []:
        shown = example["tokens"][:SHOWN_TOKENS]
        pieces = "".join(
            f"<span class='pg-tok {'pg-trained' if t['trained'] else 'pg-masked'}' title='id {t['id']} · "
            f"{'trained' if t['trained'] else 'masked'}'>{_e(t['token']).replace(chr(10), '↵' + chr(10))}</span>"
            for t in shown
        )
        more = len(example["tokens"]) - len(shown)
        tail = f"<span class='pg-more'> … {more:,} more tokens</span>" if more > 0 else ""
        cut = " · cut at max_length" if example.get("truncated") else ""
        parts.append(
            f"<div class='pg-mask-example'><div class='pg-mask-head'>Row {example['row']}: {example['trained']:,} "
            f"trained, {example['masked']:,} masked{cut}</div><div class='pg-tokens'>{pieces}{tail}</div></div>"
        )
    parts.append("</div>")
    return "".join(parts)


def estimate_html(est: dict, measured: dict | None = None) -> str:
    """Trainable parameters and their share, the memory terms against what is free, the time, and once the job
    has run a few steps what it measured."""
    memory, time_ = est.get("memory") or {}, est.get("time") or {}
    total = max(memory.get("total", 0), 1)
    bars = "".join(
        f"<tr><td>{label}</td><td style='min-width:220px'><div class='pg-hbar'><div style='width:"
        f"{100 * memory.get(key, 0) / total:.1f}%'></div><span>{_size(memory.get(key, 0))}</span></div></td></tr>"
        for key, label in (
            ("weights", "base weights"),
            ("adapter_and_optimizer", "adapter + optimizer"),
            ("activations", "activations"),
            ("logits", "logits"),
            ("runtime", "Python + libraries"),
        )
    )
    fits = "pg-ok" if est.get("fits") else "pg-warn"
    seconds = time_.get("total_seconds")
    when = f"about {_minutes(seconds)} for {time_.get('total_steps', 0):,} steps" if seconds else "–"
    modules = ", ".join(est.get("selected_modules") or [])
    heads = ", ".join(est.get("modules_to_save") or [])
    parts = [
        "<div class='pg-lora-estimate'>",
        f"<div class='pg-counts'><span>trainable: <b>{_count(est.get('trainable_parameters', 0))}</b> of "
        f"{_count(est.get('total_parameters', 0))} parameters (<b>{est.get('trainable_percent', 0):.2f}%</b>)"
        f"</span><span>LoRA on {est.get('adapted_layers', 0)} layers: <code>{_e(modules)}</code></span>"
        + (f"<span>trained in full: <code>{_e(heads)}</code></span>" if heads else "")
        + f"<span>time: {when} on {_e(est.get('device', 'this machine'))} (rough)</span></div>",
        f"<table class='pg-table pg-mem'>{bars}<tr><td><b>total</b></td><td><b>{_size(memory.get('total'))}</b> "
        f"of {_size(est.get('free_bytes'))} free</td></tr></table>",
        f"<div class='{fits}'>{'✓' if est.get('fits') else '⚠️'} {_e(est.get('sentence', ''))}</div>",
    ]
    if measured and measured.get("sentence"):
        parts.append(f"<div class='pg-ok pg-measured'>⏱ {_e(measured['sentence'])}</div>")
    parts.append("</div>")
    return "".join(parts)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def curves_html(rows: list[dict], speed: list[dict]) -> str:
    """Loss and evaluation loss (with the overfitting note), then the learning rate and tokens per second."""
    main = charts_html([r for r in rows if r["series"] != "learning_rate"])
    extra = [
        chart_html("Learning rate", [r for r in rows if r["series"] == "learning_rate"]),
        chart_html("Tokens per second", speed),
    ]
    body = "".join(f"<div style='flex:1 1 380px;min-width:0'>{c}</div>" for c in extra if c)
    more = f"<div class='pg-ft-charts' style='display:flex;flex-wrap:wrap;gap:16px'>{body}</div>" if body else ""
    return main + more


def result_html(outputs: dict) -> str:
    """A finished LoRA job: the adapter's id and size, its evaluation, and the held-back prompts answered by the
    base and by the adapter."""
    summary, report = outputs.get("summary") or {}, outputs.get("report") or {}
    if not summary:
        return ""
    parts = ["<div class='pg-ft-result'>"]
    if outputs.get("model_id"):
        parts.append(
            f"<div class='pg-ok'>✓ <b>{_e(outputs['model_id'])}</b> is ready: {summary.get('train_rows', 0):,} "
            f"conversations, {summary.get('epochs') or 0:.1f} epochs in {summary.get('seconds', 0):.0f} s. Compare it "
            "with its base below, merge it, push it, or try it in Pipelines and RAG chat.</div>"
        )
    metrics = {k: v for k, v in (summary.get("metrics") or {}).items() if isinstance(v, int | float)}
    if metrics:
        cells = "".join(f"<span>{_e(k.removeprefix('eval_').replace('_', ' '))}: <b>{v:.4g}</b></span>"
                        for k, v in metrics.items() if k.endswith(("loss", "perplexity")))  # fmt: skip
        parts.append(f"<div class='pg-counts'>Held out: {cells}</div>")
    samples = report.get("samples") or []
    if samples:
        rows = "".join(
            f"<tr><td>{_e(str(s['text'])[:300])}</td><td>{_e(s['expected'])}</td>"
            f"<td class='{_mark(s, 'base')}'>{_e(s.get('base', ''))}</td>"
            f"<td class='{_mark(s, 'adapter')}'>{_e(s.get('adapter', ''))}</td></tr>"
            for s in samples
        )
        right = {side: sum(_mark(s, side) == "pg-right" for s in samples) for side in ("base", "adapter")}
        parts.append(
            f"<h4>Held-back test prompts: base {right['base']}/{len(samples)}, adapter {right['adapter']}/"
            f"{len(samples)} exactly right</h4><table class='pg-table pg-samples'><tr><th>prompt</th>"
            f"<th>expected</th><th>base</th><th>adapter</th></tr>{rows}</table>"
        )
    parts.append("</div>")
    return "".join(parts)


def _mark(sample: dict, side: str) -> str:
    return "pg-right" if str(sample.get(side, "")).strip() == str(sample.get("expected", "")).strip() else "pg-wrong"


def merge_html(checks: dict) -> str:
    """The merge's logit checks, one line each, under the merged model's id."""
    if not checks:
        return ""
    labels = {
        "reloaded_vs_memory": "the saved adapter, reloaded, vs the adapter that was loaded",
        "merged_vs_adapter": "the merged model vs base + adapter (must be ~0)",
        "merged_vs_base": "the merged model vs the base (must differ)",
    }
    rows = "".join(
        f"<tr><td>{label}</td><td>max |Δlogit| <b>{checks[key + '_max_abs_logit_diff']:.2e}</b></td></tr>"
        for key, label in labels.items()
        if isinstance(checks.get(key + "_max_abs_logit_diff"), int | float)
    )
    model = checks.get("model_id") or ""
    size = f", {checks['size_mb']:,.0f} MB" if checks.get("size_mb") else ""
    head = f"<div class='pg-ok'>✓ Merged into <b>{_e(model)}</b>: a full model{size}, no adapter needed.</div>"
    return f"<div class='pg-lora-merge'>{head if model else ''}<table class='pg-table'>{rows}</table></div>"
