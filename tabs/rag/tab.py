"""RAG chat tab: upload documents into a collection of your own (an ingest job), see how they are cut, ask questions;
answers stream with numbered citations that open their passages, and the retrieval inspector shows how each
passage ranked (BM25, vectors, fused, re-ranked). The shared demo collection holds the playground's own guide, so
a first-time visitor can ask at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from services.core.config import get_settings
from services.core.limits import check_id, run_gate
from services.hub import cards
from services.jobs.manager import JobManager
from services.models.catalog import catalog
from services.rag import answer as rag
from services.rag import guide as rag_guide
from services.rag import reading
from services.rag.history import choose_collection, last_collection
from services.rag.store import DEMO, Collection, check_new_name, history, new_chat, remember
from tabs import hub_push
from tabs.jobs import detail_html
from tabs.rag import adapt_panel
from tabs.rag import view as rag_view
from tabs.session import friendly, owner_of, uploaded_paths

EXAMPLES = rag_guide.DEMO_QUESTIONS  # the demo collection's; every other collection gets its own


@dataclass
class RagTab:
    on_load: object
    load_outputs: list
    answer_model: gr.Dropdown


def _collection_folder(name: str, owner: str) -> str:
    """A collection is pushed as a dataset repo: its SQLite, vectors and ids, with a card."""
    return str(rag.open_collection(name or DEMO, owner).folder)


def _choices(owner: str) -> list[tuple[str, str]]:
    return [
        (f"{c['name']} · {c['documents']} docs" + (" (shared demo)" if c["shared"] else ""), c["name"])
        for c in rag.collections(owner)
    ]


def answering_models(owner: str | None = None) -> list[tuple[str, str]]:
    """The answering-model choices: the packaged SmolLM2 first, then every other chat model the visitor can use
    (their own adapters, the ones adapted to a collection among them, and trained models)."""
    chat_models = [e.id for e in catalog("text-generation", owner) if e.available] if owner else []
    packaged = [("SmolLM2 + grounded-answers adapter", rag.ANSWER_MODEL), ("plain SmolLM2", rag.CHAT_MODEL)]
    return packaged + [(m, m) for m in chat_models if m not in (rag.CHAT_MODEL, rag.ANSWER_MODEL)]


def _lean_for(model: str | None):
    """The "Lean on the sources" default of an answering model (services.rag.reading.default_contrast)."""
    return gr.update(value=reading.default_contrast((model or "").strip() or rag.ANSWER_MODEL))


def build(manager: JobManager) -> RagTab:
    gr.Markdown(
        "Ask questions about your documents. Answers come from the passages retrieved for each question and cite "
        "them as [1], [2]; open a source below the chat to read it. The **playground-docs** collection holds this "
        "app's own guide: try it, or upload your files into a collection of your own (only you can see it)."
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=320):
            collection = gr.Dropdown(
                [(DEMO, DEMO)], value=DEMO, label="Collection", interactive=True, elem_id="rag-collection"
            )
            with gr.Accordion("Add documents", open=False):
                new_name = gr.Textbox(label="Into (a new or existing collection)", value="my-documents", max_lines=1)
                files = gr.File(
                    label="TXT, Markdown, HTML, PDF, DOCX, CSV or a ZIP of them",
                    file_count="multiple",
                    file_types=[".txt", ".md", ".html", ".htm", ".pdf", ".docx", ".csv", ".zip"],
                )
                with gr.Row():
                    chunk_size = gr.Slider(32, 512, value=160, step=16, label="Chunk size (tokens)")
                    overlap = gr.Slider(0, 128, value=32, step=8, label="Overlap (tokens)")
                with gr.Row():
                    preview_btn = gr.Button("Preview chunks", size="sm")
                    index_btn = gr.Button("Index documents", variant="primary", size="sm")
                with gr.Row(equal_height=True):
                    hub_dataset = gr.Textbox(label="…or a Hub dataset" + (" (needs the Hub)" if get_settings().offline
                                             else ""), placeholder="e.g. stanfordnlp/imdb", scale=3,
                                             interactive=not get_settings().offline)  # fmt: skip
                    hub_column = gr.Textbox(label="Text column", value="text", scale=2)
                    hub_btn = gr.Button("Index column", size="sm", scale=1, interactive=not get_settings().offline)
                job_status = gr.HTML()
            with gr.Accordion("Documents in this collection", open=False):
                documents = gr.Dataframe(headers=["document", "chunks", "pages", "size"], interactive=False, wrap=True)
                with gr.Row():
                    doomed = gr.Dropdown([], label="Document", scale=3)
                    delete_btn = gr.Button("Delete", variant="stop", size="sm", scale=1)
            with gr.Accordion("Settings", open=False):
                top_k = gr.Slider(1, 10, value=4, step=1, label="Passages per answer (top-k)")
                weight = gr.Slider(0, 1, value=0.5, step=0.05, label="Hybrid weight (0 = BM25 only, 1 = vectors only)")
                rerank = gr.Checkbox(
                    label="Re-rank with a cross-encoder" + (" (needs the Hub)" if get_settings().offline else ""),
                    value=False,
                    interactive=not get_settings().offline,
                )
                answer_model = gr.Dropdown(
                    answering_models(), value=rag.ANSWER_MODEL, label="Answering model", allow_custom_value=True,
                    elem_id="rag-model", info="any chat model: packaged, your trained:<name>, adapters (also one "
                    "adapted to this collection below). SmolLM2 reads the best sentences one at a time, others the "
                    "six best together.",
                )  # fmt: skip
                temperature = gr.Slider(0, 1.5, value=0, step=0.05, label="Temperature (0 = the likeliest words)")
                max_new = gr.Slider(16, 512, value=96, step=16, label="Max new tokens")
                contrast = gr.Slider(
                    0, 1, value=reading.default_contrast(rag.ANSWER_MODEL), step=0.1, elem_id="rag-contrast",
                    label="Lean on the sources (context-aware decoding, 0 = off)",
                    info="Subtracts what the model would say without the sources; costs a second pass per token. "
                    "0.5 for plain SmolLM2 (it then copies the fact far more often); 0 for the adapter, which "
                    "learned to, and for other models.",
                )  # fmt: skip
                system = gr.Textbox(label="System prompt", value=rag.SYSTEM_PROMPT, lines=3)
                answer_model.change(_lean_for, [answer_model], [contrast], api_visibility="private")
        with gr.Column(scale=2):
            chatbot = gr.Chatbot(label="Chat", height=430, elem_id="rag-chat", placeholder="Ask about the documents.")
            with gr.Row():
                question = gr.Textbox(
                    placeholder="Ask a question…", show_label=False, scale=5, max_lines=3, elem_id="rag-question"
                )
                send = gr.Button("Ask", variant="primary", scale=1, min_width=90)
                new_btn = gr.Button("New chat", scale=1, min_width=90)
            suggest = gr.Dataset(components=[question], samples=[[q] for q in EXAMPLES], label="Try",
                                 elem_id="rag-try")  # fmt: skip
            sources = gr.HTML(rag_view.citations_html([]), elem_id="rag-sources")
            with gr.Accordion("Retrieval inspector (last question)", open=False):
                inspector = gr.HTML(rag_view.inspector_html([]), elem_id="rag-inspector")
            adapt_panel.build(manager, collection, answer_model, answering_models)
            hub_push.build(manager, _collection_folder, collection, prepare=cards.write_collection_card,
                           repo_type="dataset")  # fmt: skip
    chunks_view = gr.HTML(elem_id="rag-preview")
    job, timer = gr.State(None), gr.Timer(1.5, active=False)

    def refresh(name: str, owner: str, choices: list | None = None) -> dict:
        store = rag.open_collection(name, owner)
        choose_collection(owner, name)  # a reload opens this collection again
        docs = store.documents()
        turns = history(owner, name)
        last = next((t["citations"] for t in reversed(turns) if t["role"] == "assistant"), [])
        tried = rag_guide.suggested_questions(store)  # questions this collection's own documents answer
        return {
            collection: gr.update(choices=choices or _choices(owner), value=name),
            documents: rag_view.documents_rows(docs),
            doomed: gr.update(
                choices=[(d["name"], d["id"]) for d in docs], value=None, interactive=not store.read_only
            ),
            delete_btn: gr.update(interactive=not store.read_only),
            chatbot: [{"role": t["role"], "content": rag_view.chat_html(t["content"])} for t in turns],
            sources: rag_view.citations_html(last),
            suggest: gr.Dataset(samples=[[q] for q in tried], visible=bool(tried)),
        }

    view = [collection, documents, doomed, delete_btn, chatbot, sources, suggest]

    @friendly
    def on_load(request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        choices = _choices(owner)
        last = last_collection(owner)  # the visitor's collection before the reload, while it still exists
        return {**refresh(last if last in {value for _, value in choices} else DEMO, owner, choices),
                answer_model: gr.update(choices=answering_models(owner))}  # fmt: skip

    @friendly
    def on_collection(name: str, request: gr.Request, profile: gr.OAuthProfile | None):
        return refresh(name or DEMO, owner_of(request, profile))

    collection.input(on_collection, [collection], view, api_visibility="private")
    suggest.click(lambda sample: sample[0], suggest, question, api_visibility="private")

    @friendly
    def ui_preview(uploaded, size, over, request: gr.Request, profile: gr.OAuthProfile | None):
        if not uploaded:
            raise gr.Error("Add a file first, then preview how it is cut.")
        path = uploaded_paths(uploaded[:1], owner_of(request, profile))[0]
        return rag_view.preview_html(rag.preview(path, int(size), int(over)))

    preview_btn.click(ui_preview, [files, chunk_size, overlap], chunks_view, api_visibility="private",
                      concurrency_id="rag-preview", concurrency_limit=2)  # fmt: skip

    @friendly
    def ui_index(name, uploaded, size, over, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        if not uploaded:
            raise gr.Error("Add at least one document to index.")
        target = check_new_name(name, owner)  # the name and the per-owner limit, checked now (nothing made yet)
        staged = rag.stage(uploaded_paths(uploaded, owner), owner)
        args = ["rag", "--owner", owner, "ingest", "--collection", target, "--chunk-size", str(int(size)),
                "--overlap", str(int(over)), *staged]  # fmt: skip
        job_id = manager.submit_command("rag-ingest", owner, args, title=f"Index {len(staged)} file(s) into {target}",
                                        config={"collection": target})  # fmt: skip
        return {job: job_id, timer: gr.Timer(active=True), job_status: "<div class='pg-empty'>Starting…</div>"}

    @friendly
    def ui_index_dataset(name, dataset, column, size, over, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        if not (dataset or "").strip():
            raise gr.Error("Type a Hub dataset id, such as stanfordnlp/imdb.")
        target = check_new_name(name, owner)
        dataset, column = check_id(dataset, "The dataset name"), check_id(column or "text", "The column name")
        # --name=value: a value that starts with '-' stays a value, never another option.
        args = ["rag", f"--owner={owner}", "ingest", f"--collection={target}", f"--dataset={dataset}",
                f"--column={column}", f"--chunk-size={int(size)}", f"--overlap={int(over)}"]  # fmt: skip
        job_id = manager.submit_command("rag-ingest", owner, args, title=f"Index {dataset} into {target}",
                                        config={"collection": target})  # fmt: skip
        return {job: job_id, timer: gr.Timer(active=True), job_status: "<div class='pg-empty'>Starting…</div>"}

    hub_btn.click(ui_index_dataset, [new_name, hub_dataset, hub_column, chunk_size, overlap], [job, timer, job_status],
                  api_visibility="private")  # fmt: skip

    index_btn.click(ui_index, [new_name, files, chunk_size, overlap], [job, timer, job_status],
                    api_visibility="private")  # fmt: skip

    @friendly
    def poll(job_id, request: gr.Request, profile: gr.OAuthProfile | None):
        if not job_id:
            return {timer: gr.Timer(active=False)}
        owner = owner_of(request, profile)
        record = manager.get(job_id, owner)
        update = {job_status: detail_html(record), timer: gr.Timer(active=not record.done)}
        if record.done and record.result:
            result = record.result
            notes = "".join(
                f"<div class='pg-warn'>{rag_view._e(n)}</div>" for n in result["skipped"] + result["refused"]
            )
            update[job_status] = (
                f"<div class='pg-ok'>✓ Indexed {len(result['added'])} document(s), {result['chunks']} chunks, into "
                f"<b>{rag_view._e(result['collection'])}</b>.</div>{notes}"
            )
            update.update(refresh(result["collection"], owner))
        return update

    timer.tick(poll, [job], [job_status, timer, *view], api_visibility="private", show_progress="hidden")

    @friendly
    def ui_delete(name, doc_id, request: gr.Request, profile: gr.OAuthProfile | None):
        owner = owner_of(request, profile)
        if doc_id is None:
            raise gr.Error("Choose the document to delete.")
        gone = Collection.open(name, owner).delete(int(doc_id))
        gr.Info(f"Deleted {gone}: its passages are gone from the index.")
        return refresh(name, owner)

    delete_btn.click(ui_delete, [collection, doomed], view, api_visibility="private")

    @friendly
    def ui_ask(name, text, turns, k, w, rr, temp, new_tokens, prompt, lean, answerer, request: gr.Request,
               profile: gr.OAuthProfile | None):  # fmt: skip
        owner = owner_of(request, profile)
        text = (text or "").strip()
        if not text:
            raise gr.Error("Type a question first.")
        turns = [*(turns or []), {"role": "user", "content": rag_view.chat_html(text)},
                 {"role": "assistant", "content": "…"}]  # fmt: skip
        yield {chatbot: turns, question: ""}
        # what the model reads is the text as typed and answered, not its escaped display
        earlier = [{"role": t["role"], "content": rag_view.chat_text(t.get("content"))} for t in turns[:-2]]
        choose_collection(owner, name)
        last: dict = {}
        with run_gate().hold(owner):  # one answer at a time per visitor: the model is shared with everyone
            answers = rag.stream_answer(name, text, owner, top_k=int(k), hybrid_weight=float(w), rerank=bool(rr),
                                        temperature=float(temp), max_new_tokens=int(new_tokens), system_prompt=prompt,
                                        history=earlier, contrast=float(lean or 0),
                                        model=answerer)  # fmt: skip
            for last in answers:
                turns[-1] = {"role": "assistant", "content": rag_view.chat_html(last["answer"]) or "…"}
                cited = rag_view.explain(last["citations"], last["hits"])
                yield {chatbot: turns, sources: rag_view.citations_html(cited),
                       inspector: rag_view.inspector_html(last["hits"])}  # fmt: skip
        remember(owner, name, "user", text)
        cited = rag_view.explain(last.get("citations") or [], last.get("hits") or [])
        remember(owner, name, "assistant", last.get("answer", ""), cited)

    ask_inputs = [collection, question, chatbot, top_k, weight, rerank, temperature, max_new, system, contrast,
                  answer_model]  # fmt: skip
    ask_outputs = [chatbot, question, sources, inspector]
    send.click(ui_ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="inference")
    question.submit(ui_ask, ask_inputs, ask_outputs, api_visibility="private", concurrency_id="inference")

    @friendly
    def ui_new(name, request: gr.Request, profile: gr.OAuthProfile | None):
        new_chat(owner_of(request, profile), name)
        return {chatbot: [], sources: rag_view.citations_html([]), inspector: rag_view.inspector_html([])}

    new_btn.click(ui_new, [collection], [chatbot, sources, inspector], api_visibility="private")
    _api(manager)
    return RagTab(on_load, [*view, answer_model], answer_model)


def _api(manager: JobManager) -> None:
    @friendly
    def rag_collections(request: gr.Request, profile: gr.OAuthProfile | None) -> list[dict]:
        """Your collections and the shared demo, with document and chunk counts."""
        return rag.collections(owner_of(request, profile))

    @friendly
    def rag_documents(collection: str, request: gr.Request, profile: gr.OAuthProfile | None) -> list[dict]:
        """The documents of one of your collections."""
        return rag.open_collection(collection, owner_of(request, profile)).documents()

    @friendly
    def rag_ingest(collection: str, files: list[str], request: gr.Request, profile: gr.OAuthProfile | None) -> str:
        """Index files (handle_file(...) uploads) into a collection; returns the job id (follow it with /job)."""
        owner = owner_of(request, profile)
        target = check_new_name(collection, owner)
        staged = rag.stage(uploaded_paths(files, owner), owner)
        args = ["rag", "--owner", owner, "ingest", "--collection", target, "--", *staged]
        return manager.submit_command(
            "rag-ingest", owner, args, title=f"Index into {target}", config={"collection": target}
        )

    @friendly
    def rag_ask(
        collection: str, question: str, top_k: int, request: gr.Request, profile: gr.OAuthProfile | None
    ) -> dict:
        """{"answer", "citations": [{source, text, score, page}]}, citations in rank order."""
        owner = owner_of(request, profile)
        with run_gate().hold(owner):
            result = rag.ask(collection, question, owner, top_k=int(top_k or 4))
        return {"answer": result["answer"], "citations": result["citations"]}

    @friendly
    def rag_retrieve(collection: str, question: str, top_k: int, hybrid_weight: float, request: gr.Request,
                     profile: gr.OAuthProfile | None) -> list[dict]:  # fmt: skip
        """The passages for a question with their BM25, vector, fused and re-ranked ranks and scores."""
        hits = rag.retrieve(collection, question, owner_of(request, profile), top_k=int(top_k or 4),
                            hybrid_weight=float(0.5 if hybrid_weight is None else hybrid_weight))  # fmt: skip
        return [h.to_dict() for h in hits]

    @friendly
    def rag_delete_document(collection: str, document_id: int, request: gr.Request,
                            profile: gr.OAuthProfile | None) -> list[dict]:  # fmt: skip
        """Delete one document (and its passages) from one of your collections; returns the documents left."""
        store = Collection.open(collection, owner_of(request, profile))
        store.delete(int(document_id))
        return store.documents()

    adapt_panel.register(manager)
    gr.api(rag_collections, api_name="rag_collections")
    gr.api(rag_documents, api_name="rag_documents")
    gr.api(rag_ingest, api_name="rag_ingest")
    gr.api(rag_ask, api_name="rag_ask")
    gr.api(rag_retrieve, api_name="rag_retrieve")
    gr.api(rag_delete_document, api_name="rag_delete_document")
