"""The Deploy tab's "fast CPU copy" panel: SmolLM2's own 4-bit weights in ONNX Runtime
(`smollm2-135m-instruct-fast-cpu`) checked against the float32 model, as a job, and the report shown the way an ONNX
export's is: the same answers? how much faster, how much smaller?

The job runs ``python -m services check-fast-cpu`` (`services.serve.fast_report`).
"""

from __future__ import annotations

import html

import gradio as gr

from services.jobs.manager import JobManager
from services.models.fast_cpu import BASE, FAST_ID
from tabs.hub_push import follow_job
from tabs.session import friendly, owner_of


def report_html(report: dict) -> str:
    speed, sizes = report.get("tokens_per_s") or {}, report.get("size_mb") or {}
    rows = [("PyTorch float32", BASE, speed.get("pytorch_fp32"), sizes.get("pytorch_fp32"), "reference"),
            ("ONNX Runtime, 4-bit", FAST_ID, speed.get("onnx_4bit"), sizes.get("onnx_4bit"),
             f"{100 * report.get('agreement', 0):.0f} % of {report.get('prompts', '?')} prompts")]  # fmt: skip
    body = "".join(
        f"<tr><td>{html.escape(a)}</td><td><code>{html.escape(b)}</code></td><td>{c if c is not None else '—'}</td>"
        f"<td>{f'{d:,.1f} MB' if d is not None else '—'}</td><td>{html.escape(e)}</td></tr>"
        for a, b, c, d, e in rows
    )
    return (
        f"<p><b>The fast copy decodes {report.get('speedup', 0):.2f}x as fast</b> through the app's own generation "
        f"code, and chose the same {report.get('new_tokens', '?')} greedy tokens on "
        f"{100 * report.get('agreement', 0):.0f} % of the prompts (largest difference in a chosen token's "
        f"probability: {report.get('max_abs_prob_diff', 0):.2g}).</p><table class='pg-table'><tr><th>Engine</th>"
        "<th>Model id</th><th>Tokens/s</th><th>Weights</th><th>Same greedy answer</th></tr>"
        f"{body}</table><p class='pg-note'>Medians of {report.get('runs', '?')} timed rounds each, in turns, on this "
        "machine; the full benchmark is <code>python -m bench.cpu_onnx_decode</code>.</p>"
    )


def build(manager: JobManager) -> None:
    with gr.Accordion("Fast CPU generation: SmolLM2's 4-bit weights in ONNX Runtime", open=False):
        gr.Markdown(
            f"`{FAST_ID}` is the packaged SmolLM2 with its own 4-bit weights (exactly those of its GGUF) run by "
            "ONNX Runtime: pick it in Pipelines, RAG chat or as the REST API's `model`. Check it here against the "
            "float32 model: the same greedy answers, and how much faster (a job of about a minute)."
        )
        start = gr.Button("Check the fast CPU copy", elem_id="deploy-fast-check")
        status = gr.HTML(elem_id="deploy-fast-report")
        job = gr.State(None)
        timer = gr.Timer(1.0, active=False)

    @friendly
    def check(request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        job_id = manager.submit_command("check", owner, ["check-fast-cpu", "--owner", owner],
                                        title=f"Check {FAST_ID}", config={"model": FAST_ID})  # fmt: skip
        return {job: job_id, timer: gr.Timer(active=True), status: "<div class='pg-empty'>Starting…</div>"}

    start.click(check, None, [job, timer, status], api_visibility="private")
    follow_job(manager, job, timer, status, report_html)
