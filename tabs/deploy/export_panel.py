"""The Deploy tab's "Export to ONNX" panel: an encoder model exported (float32 and int8) as a job, then its parity
and speed reports side by side: how close ONNX answers to PyTorch, and how much faster and smaller it is.

The job runs ``python -m services export-onnx MODEL --output-dir DIR`` (an adapter is merged into its base first).
The folder is among the visitor's own models, as ``trained:<model>-onnx``: Pipelines, the REST API and the server
bundle run it in ONNX Runtime (`services.models.onnx_runtime`). Its `onnx_report.json` is what the table shows.
"""

from __future__ import annotations

import html
import os

import gradio as gr

from services.core.errors import PlaygroundError
from services.core.owners import safe_name
from services.jobs.manager import JobManager
from services.models.catalog import TRAINED_PREFIX, resolve, trained_root
from services.serve.onnx_export import export_task
from tabs.hub_push import follow_job
from tabs.session import friendly, owner_of

_ENGINES = (("pytorch_fp32", "PyTorch float32"), ("onnx_fp32", "ONNX float32"), ("onnx_int8", "ONNX int8"))


def export_name(model_id: str) -> str:
    """The name the export of `model_id` has among the visitor's models: `trained:<this>`."""
    base = (model_id or "").strip().removeprefix(TRAINED_PREFIX).replace("/", "--").replace(":", "-")
    return safe_name(base, fallback="model", max_len=75) + "-onnx"


def start_export(manager: JobManager, model_id: str, owner: str) -> str:
    """Check the model now (a sentence at once beats a failed job), then export it as a child-process job into
    the visitor's own models (an earlier export of the same model is replaced)."""
    model_id = (model_id or "").strip()
    resolved = resolve(model_id, owner)
    export_task(resolved.tasks)  # refuses a model that is no encoder, in a sentence
    if model_id.startswith(TRAINED_PREFIX) and model_id.endswith("-onnx"):
        raise PlaygroundError(f"'{model_id}' is already an ONNX export: pick the model it was made from.")
    out = trained_root(owner) / export_name(model_id)
    target = resolved.location if resolved.source == "local" else model_id
    return manager.submit_command(
        "export", owner, ["export-onnx", "--owner", owner, f"--output-dir={out}", "--", target],
        title=f"Export {model_id} to ONNX", config={"model": model_id}, needs_gpu=False,
    )  # fmt: skip


def report_html(report: dict) -> str:
    """The three engines in one table: latency, throughput, size, and how far each is from PyTorch."""
    speed, parity, sizes = report.get("speed") or {}, report.get("parity") or {}, report.get("size_mb") or {}
    accuracy = parity.get("accuracy") or {}
    batch_key = next((k for k in (speed.get("pytorch_fp32") or {}) if k.startswith("texts_per_s")), None)
    rows = []
    for key, label in _ENGINES:
        if key not in speed and key not in parity:
            continue
        timing, close = speed.get(key) or {}, parity.get(key) or {}
        cells = [label, _num(timing.get("p50_ms_batch1"), " ms"), _num(timing.get(batch_key), "/s"),
                 _num(sizes.get(key), " MB"), _num(close.get("max_abs_diff")),
                 _pct(close.get("label_agreement")), _pct(accuracy.get(key))]  # fmt: skip
        if key == "pytorch_fp32":
            cells[4:6] = ["reference", "reference"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    head = ["Engine", "Latency (batch 1, p50)", f"Throughput ({(batch_key or '').rsplit('batch', 1)[-1] or '?'} "
            "texts)", "Size", "max |Δ| vs PyTorch", "Same label", "Accuracy"]  # fmt: skip
    speedup = speed.get("int8_speedup_vs_pytorch_batch1")
    said = f"<p><b>int8 is {speedup:.2f}x as fast as PyTorch at batch 1</b> on this machine.</p>" if speedup else ""
    load = [x for x in speed.get("load_average") or [] if isinstance(x, int | float)]
    if load and max(load) > (os.cpu_count() or 1) + 0.5:  # the export itself keeps the cores busy
        said += ("<p class='pg-note'>Other work kept the CPU busy while this ran (load average "
                 f"{max(load):.1f}): PyTorch's threads suffer most from that, so the ratio is larger than on a quiet "
                 "machine.</p>")  # fmt: skip
    made = f"{TRAINED_PREFIX}{export_name(str(report.get('source') or ''))}"
    said += (f"<p>It is one of your models now, <b>{html.escape(made)}</b>: pick it in Pipelines, use it as the "
             "<code>model</code> of the REST API, or build a server bundle of it.</p>")  # fmt: skip
    return (
        f"{said}<table class='pg-table'><tr>{''.join(f'<th>{h}</th>' for h in head)}</tr>{''.join(rows)}</table>"
        f"<p class='pg-note'>{parity.get('samples', '?')} sample texts; times are medians, measured in turns on "
        f"the same {speed.get('threads', '?')} CPU thread(s).</p>"
    )


def _num(value, unit: str = "") -> str:
    if value is None:
        return "—"
    return f"{value:.3g}{unit}" if isinstance(value, float) and value < 1 else f"{value:,.1f}{unit}"


def _pct(value) -> str:
    return "—" if value is None else f"{100 * value:.1f} %"


def build(manager: JobManager, model: gr.Dropdown) -> None:
    with gr.Accordion("Export to ONNX (int8) for fast CPU inference", open=False):
        gr.Markdown(
            "Encoder models (classifiers, NER, question answering, embeddings) exported with transformers' own "
            "ONNX exporter, with a copy whose weights are int8 (onnxruntime's dynamic quantization). The job "
            "reports how close each copy answers to PyTorch and how fast and small it is; the export then is one "
            "of your models, `trained:<model>-onnx`, that Pipelines, the REST API and a server bundle run."
        )
        start = gr.Button("Export to ONNX", elem_id="deploy-onnx")
        status = gr.HTML(elem_id="deploy-onnx-report")
        job = gr.State(None)
        timer = gr.Timer(1.0, active=False)

    @friendly
    def export(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None):
        job_id = start_export(manager, model_id, owner_of(request, profile))
        return {job: job_id, timer: gr.Timer(active=True), status: "<div class='pg-empty'>Starting…</div>"}

    start.click(export, [model], [job, timer, status], api_visibility="private")
    follow_job(manager, job, timer, status, report_html)

    @friendly
    def deploy_export_onnx(model_id: str, request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Export an encoder model to ONNX float32 and int8 as a job; its result is the parity and speed report."""
        return start_export(manager, model_id, owner_of(request, profile))

    gr.api(deploy_export_onnx, api_name="deploy_export_onnx")
