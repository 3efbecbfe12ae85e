"""RAG chat's "Adapt the answering model to this collection" panel (issue 17): draft question/answer pairs from the
collection's own sentences, let the visitor check and edit them, and train a LoRA adapter on them as a job; when it
is done the adapter is picked as the answering model (`services.rag.adapt` does the work)."""

from __future__ import annotations

import gradio as gr

from services.core.limits import run_gate
from services.core.owners import safe_name
from services.jobs.manager import JobManager
from services.rag import adapt
from services.rag.store import DEMO
from services.training import jobs as training_jobs
from tabs.jobs import detail_html
from tabs.session import friendly, owner_of

HEADERS = ["question", "answer", "passage"]


def build(manager: JobManager, collection: gr.Dropdown, answer_model: gr.Dropdown, choices) -> None:
    """`choices(owner)` gives the answering-model choices (the tab's own list)."""
    with gr.Accordion("Adapt the answering model to this collection", open=False, elem_id="rag-adapt"):
        gr.Markdown(
            "Teach the answering model your documents' way of saying things: **1** draft question/answer pairs "
            "from this collection (the chat model writes them; a pair is kept only when its answer is copied from "
            "its passage), **2** check and edit them (fix a question, write your own beside a passage, clear a row "
            "to drop it), **3** train a LoRA adapter on them, asked exactly as RAG chat asks (a few minutes of CPU "
            "per dozen pairs). The new adapter becomes the answering model."
        )
        with gr.Row(equal_height=True):
            count = gr.Slider(adapt.MIN_PAIRS, adapt.MAX_DRAFT, value=8, step=1, label="Pairs to draft", scale=3)
            draft = gr.Button("1 · Draft question/answer pairs", scale=2)
        pairs = gr.Dataframe(
            headers=HEADERS, col_count=(3, "fixed"), type="array", interactive=True, wrap=True,
            label="2 · Pairs (editable: the answer must be words of its passage)", elem_id="rag-adapt-pairs",
        )  # fmt: skip
        with gr.Row(equal_height=True):
            name = gr.Textbox(label="Name of the adapter", value="my-answers", max_lines=1, scale=3)
            train = gr.Button("3 · Train the adapter", variant="primary", scale=2)
        status = gr.HTML(elem_id="rag-adapt-status")
    job, timer = gr.State(None), gr.Timer(2.0, active=False)

    @friendly
    def ui_draft(collection_name, n, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        with run_gate().hold(owner):  # the chat model is shared with everyone: one draft at a time per visitor
            drafted = adapt.draft_pairs(collection_name or DEMO, owner, int(n))
        rows = [[p["question"], p["answer"], p["passage"]] for p in drafted]
        # passages without a usable draft stay as rows to write a question for
        seen = {p["passage"] for p in drafted}
        spare = [c for c in adapt.candidate_sentences(collection_name or DEMO, owner, 2 * int(n))
                 if c["passage"] not in seen][: max(0, int(n) - len(rows))]  # fmt: skip
        rows += [["", "", c["passage"]] for c in spare]
        note = (f"{len(drafted)} pair(s) drafted" + (f", {len(spare)} passage(s) left for you to write a question "
                "for" if spare else "") + ". Check each one before training.")  # fmt: skip
        return {pairs: rows, status: f"<div class='pg-empty'>{note}</div>"}

    draft.click(ui_draft, [collection, count], [pairs, status], api_visibility="private")

    @friendly
    def ui_train(collection_name, table, adapter_name, request: gr.Request, profile: gr.OAuthProfile | None):
        job_id, checked, rows = start(manager, owner_of(request, profile), collection_name, table, adapter_name)
        return {job: job_id, timer: gr.Timer(active=True),
                status: f"<div class='pg-empty'>Training on {len(checked)} pairs ({len(rows)} conversations with "
                        "the bundled grounded answers)…</div>"}  # fmt: skip

    train.click(ui_train, [collection, pairs, name], [job, timer, status], api_visibility="private")

    def poll(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        if not job_id:
            return {timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        update = {status: detail_html(record), timer: gr.Timer(active=not record.done)}
        if record.done and record.status == "succeeded":
            model = f"trained:{(record.config or {}).get('name', '')}"
            update[answer_model] = gr.update(choices=choices(owner), value=model)
            update[status] = (f"<div class='pg-ok'>✓ <b>{model}</b> is trained and is now the answering model "
                              "(Settings). Ask a question to try it.</div>")  # fmt: skip
        return update

    timer.tick(poll, [job], [status, timer, answer_model], api_visibility="private", show_progress="hidden")


def start(manager: JobManager, owner: str, collection: str | None, table, name: str | None) -> tuple[str, list, list]:
    """Check the pairs and the name, build the conversations, start the LoRA job: (job id, pairs, rows)."""
    checked = adapt.check_pairs(table)
    wanted = (name or "").strip()
    if not wanted or safe_name(wanted) != wanted:
        raise gr.Error("Name the adapter with letters, digits, '-' or '_' (such as my-answers).")
    rows = adapt.training_rows(collection or DEMO, owner, checked)
    source = adapt.write_dataset(rows, owner, wanted)
    return training_jobs.start(manager, owner, adapt.job_config(source), wanted), checked, rows


def register(manager: JobManager) -> None:
    """/rag_adapt_draft and /rag_adapt_train."""

    @friendly
    def rag_adapt_draft(collection: str, count: int, request: gr.Request, profile: gr.OAuthProfile | None) -> list:
        """Question/answer pairs drafted from a collection: [{question, answer, passage, source}]."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            return adapt.draft_pairs(collection or DEMO, owner, int(count or 8))

    @friendly
    def rag_adapt_train(collection: str, pairs: list, name: str, request: gr.Request,
                        profile: gr.OAuthProfile | None) -> str:  # fmt: skip
        """Train an answering-model adapter on [{question, answer, passage}] pairs; returns the job id (/job)."""
        return start(manager, owner_of(request, profile), collection, pairs, name)[0]

    gr.api(rag_adapt_draft, api_name="rag_adapt_draft")
    gr.api(rag_adapt_train, api_name="rag_adapt_train")
