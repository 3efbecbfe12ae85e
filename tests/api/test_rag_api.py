"""The RAG chat API through gradio_client: index a file as a job, ask with citations, inspect retrieval, delete;
owners stay apart; twenty sessions asking at once all get answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from tests.api.conftest import wait_job

pytestmark = pytest.mark.api

DOC = Path(__file__).resolve().parents[2] / "bench" / "rag_eval" / "docs" / "quillhaven.md"


def test_the_endpoints_are_listed(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert {"/rag_collections", "/rag_documents", "/rag_ingest", "/rag_ask", "/rag_retrieve",
            "/rag_delete_document", "/rag_adapt_draft", "/rag_adapt_train"} <= names  # fmt: skip


def test_index_ask_inspect_and_delete(client, other_client):
    job_id = client.predict("harbour", [handle_file(str(DOC))], api_name="/rag_ingest")
    job = wait_job(client, job_id, timeout=240)
    assert job["status"] == "succeeded", job
    assert job["result"]["added"][0]["name"] == "quillhaven.md"
    assert "harbour" in [c["name"] for c in client.predict(api_name="/rag_collections")]
    result = client.predict("harbour", "Who is the present mayor of Quillhaven?", 3, api_name="/rag_ask")
    assert set(result) == {"answer", "citations"} and result["citations"][0]["source"] == "quillhaven.md"
    hits = client.predict("harbour", "Which quarry supplied the lighthouse stone?", 3, 0.5, api_name="/rag_retrieve")
    assert hits[0]["rank"] == 1 and {"bm25_rank", "vector_rank", "fused", "rerank_rank"} <= set(hits[0])

    with pytest.raises(Exception, match="no collection called 'harbour'"):
        other_client.predict("harbour", "Who is the mayor?", 3, api_name="/rag_ask")
    assert "harbour" not in [c["name"] for c in other_client.predict(api_name="/rag_collections")]

    documents = client.predict("harbour", api_name="/rag_documents")
    left = client.predict("harbour", documents[0]["id"], api_name="/rag_delete_document")
    assert left == []
    with pytest.raises(Exception, match="no documents yet"):
        client.predict("harbour", "Who is the mayor?", 3, api_name="/rag_ask")


def test_bad_uploads_are_sentences(client, tmp_path):
    renamed = tmp_path / "photo.txt"
    renamed.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00 binary")
    job_id = client.predict("bad", [handle_file(str(renamed))], api_name="/rag_ingest")
    job = wait_job(client, job_id, timeout=120)
    assert job["status"] == "failed" and "not a text file" in job["error"]
    song = tmp_path / "song.mp3"
    song.write_bytes(b"ID3 not a document")
    with pytest.raises(Exception, match="not a document type"):
        client.predict("bad", [handle_file(str(song))], api_name="/rag_ingest")


def test_twenty_sessions_ask_at_once(live_app):
    """Twenty sessions at once on the shared demo collection: every one retrieves, five also get a generated
    answer (generation takes turns on the one model, a few seconds each on a CPU)."""
    question = "How do I fine-tune a model on my own data?"

    # Sessions are opened first (each fetches the app's config); then all twenty ask at the same moment.
    sessions = [Client(live_app["url"], verbose=False, httpx_kwargs={"timeout": 120}) for _ in range(20)]

    def ask(n):
        session = sessions[n]
        hits = session.predict("playground-docs", question, 2, 0.5, api_name="/rag_retrieve")
        answer = session.predict("playground-docs", question, 2, api_name="/rag_ask") if n < 5 else None
        return hits, answer

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(ask, range(20)))
    assert all(len(hits) == 2 for hits, _ in results)
    assert len({hits[0]["source"] for hits, _ in results}) == 1  # the same retrieval for everyone
    answers = [a for _, a in results if a is not None]
    assert len(answers) == 5 and all(a["answer"] and len(a["citations"]) == 2 for a in answers)


def test_adapting_the_answering_model_drafts_and_checks_pairs(client, other_client):
    """/rag_adapt_draft drafts pairs from the visitor's own collection (nobody else's); /rag_adapt_train refuses a
    table that cannot be trained on with a sentence, before any job starts."""
    job_id = client.predict("adapt-me", [handle_file(str(DOC))], api_name="/rag_ingest")
    assert wait_job(client, job_id, timeout=240)["status"] == "succeeded"
    pairs = client.predict("adapt-me", 2, api_name="/rag_adapt_draft")
    assert isinstance(pairs, list) and len(pairs) <= 2
    for pair in pairs:
        assert pair["answer"].lower() in pair["passage"].lower() and pair["source"] == "quillhaven.md"
    with pytest.raises(Exception, match="no collection called 'adapt-me'"):
        other_client.predict("adapt-me", 2, api_name="/rag_adapt_draft")
    few = [{"question": "Who is the mayor?", "answer": "Hesper Colley", "passage": "The mayor is Hesper Colley."}]
    with pytest.raises(Exception, match="at least 4"):
        client.predict("adapt-me", few, "mine", api_name="/rag_adapt_train")
    made_up = few * 3 + [{"question": "How tall?", "answer": "99 metres", "passage": "It is 31 metres tall."}]
    with pytest.raises(Exception, match="Row 4: the answer must be words copied from its passage"):
        client.predict("adapt-me", made_up, "mine", api_name="/rag_adapt_train")
    with pytest.raises(Exception, match="Name the adapter"):
        client.predict("adapt-me", few * 4, "../escape", api_name="/rag_adapt_train")
