"""RAG: text out of every document type (and the bad ones explained), token chunking, ingestion that does not
duplicate, deletion that removes, hybrid retrieval, owner isolation, the shared read-only demo, cited answers from
the packaged SmolLM2, and the CLI contract."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from services.core.errors import PlaygroundError
from services.rag import answer as rag
from services.rag.chunk import chunk_sections, sentences
from services.rag.extract import ExtractError, Section, extract
from services.rag.store import DEMO, Collection, CollectionError, history, new_chat, remember

ROOT = Path(__file__).resolve().parents[2]
EVAL_DOCS = ROOT / "bench" / "rag_eval" / "docs"


def pdf(pages: list[str]) -> bytes:
    """A small valid PDF with one line of Helvetica text per page (an empty string: a page with no text)."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None]
    kids = []
    for text in pages:
        stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode() if text else b""
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objects)} 0 R "
            "/Resources << /Font << /F1 999 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>"
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    font = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        body = body if isinstance(body, bytes) else body.replace("999 0 R", f"{font} 0 R").encode()
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    start = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer << /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{start}\n%%EOF\n".encode()
    return bytes(out)


def docx(paragraphs: list[tuple[str, str | None]]) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    for text, style in paragraphs:
        document.add_heading(text, level=1) if style == "heading" else document.add_paragraph(text)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_every_document_type_gives_text_with_pages_and_headings():
    sections = extract("r.pdf", pdf(["The first page speaks of ravens.", "The second page of owls."]))[0].sections
    assert [(s.page, "ravens" in s.text or "owls" in s.text) for s in sections] == [(1, True), (2, True)]
    sections = extract("n.docx", docx([("Birds", "heading"), ("Owls hunt at night.", None)]))[0].sections
    assert sections[0].heading == "Birds" and "Owls hunt at night." in sections[0].text
    html_text = "<html><script>var x = 1;</script><h2>Owls</h2><p>They hunt &amp; sleep.</p></html>"
    sections = extract("p.html", html_text.encode())[0].sections
    assert (
        sections[0].heading == "Owls" and "They hunt & sleep." in sections[0].text and "var x" not in sections[0].text
    )
    sections = extract("t.csv", b"name;food\nowl;mice\nrobin;worms\n")[0].sections
    assert "name: owl\nfood: mice" in sections[0].text
    md = extract("g.md", b"---\ntitle: x\n---\n# One\ntext a\n## Two\ntext b\n")[0].sections
    assert [s.heading for s in md] == ["One", "Two"] and "title" not in md[0].text


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.txt", b"   \n", "empty"),
        ("photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not a text file"),
        ("scan.pdf", pdf(["", ""]), "no text layer"),
        ("fake.pdf", b"hello, not a pdf", "not a PDF"),
        ("fake.docx", b"plain text", "not a Word document"),
        ("fake.zip", b"plain text", "not a ZIP"),
        ("song.mp3", b"ID3...", "not a document type"),
    ],
)
def test_bad_documents_are_sentences(name, data, words):
    with pytest.raises(ExtractError, match=words):
        extract(name, data)


def test_a_zip_never_leads_outside_and_keeps_unicode_names(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../escape.txt", "I should never be read.")
        archive.writestr("/etc/absolute.txt", "Nor me.")
        archive.writestr("notes/报告.md", "# 报告\nThe harbour opens at dawn.")
        archive.writestr("notes/broken.pdf", b"%PDF-1.4 broken")
    documents = extract("bundle.zip", buffer.getvalue())
    readable = [d for d in documents if d.sections]
    assert [d.name for d in readable] == ["notes/报告.md"]
    assert {d.name for d in documents if d.error} >= {"../../escape.txt", "/etc/absolute.txt", "notes/broken.pdf"}
    assert not (tmp_path.parent / "escape.txt").exists()


def test_chunks_respect_the_size_the_overlap_and_the_sections():
    tokenizer = rag.embedder().tokenizer
    text = " ".join(f"Sentence number {i} tells about the harbour of Quillhaven." for i in range(60))
    sections = [Section(text, page=1), Section("A short second page.", page=2)]
    chunks = chunk_sections(sections, tokenizer, size=64, overlap=16)
    assert all(c.tokens <= 64 for c in chunks) and chunks[-1].page == 2 and chunks[-1].text == "A short second page."
    first, second = chunks[0], chunks[1]
    assert second.start < first.end  # the overlap
    assert all(sections[c.section].text[c.start : c.end] == c.text for c in chunks)
    assert len(tokenizer(first.text, add_special_tokens=False)["input_ids"]) <= 64
    with pytest.raises(PlaygroundError, match="overlap"):
        chunk_sections(sections, tokenizer, size=64, overlap=64)


def test_sentences_end_at_the_end_of_the_text():
    text = "# Title\n\nFirst is 12.5 kWh. Second!\nLast one."
    assert [text[a:b] for a, b in sentences(text)] == ["# Title", "First is 12.5 kWh.", "Second!", "Last one."]


@pytest.fixture
def eval_collection(settings):
    owner = "anon:reader"
    summary = rag.ingest("towns", [EVAL_DOCS / "quillhaven.md", EVAL_DOCS / "brackenmoor-on-sill.md"], owner)
    return owner, summary


def test_ingestion_adds_once_and_retrieval_finds_the_right_document(eval_collection):
    owner, summary = eval_collection
    assert [d["name"] for d in summary["added"]] == ["quillhaven.md", "brackenmoor-on-sill.md"] and summary[
        "chunks"
    ] > 2
    again = rag.ingest("towns", [EVAL_DOCS / "quillhaven.md"], owner)
    assert again["added"] == [] and "already in the collection" in again["skipped"][0]
    hits = rag.retrieve("towns", "Who is the mayor of Quillhaven?", owner, top_k=3)
    assert hits[0].source == "quillhaven.md" and hits[0].rank == 1
    assert hits[0].vector_rank is not None and hits[0].bm25_rank is not None and hits[0].fused > 0
    vectors_only = rag.retrieve("towns", "Who is the mayor of Quillhaven?", owner, top_k=3, hybrid_weight=1.0)
    assert [h.vector_rank for h in vectors_only] == sorted(h.vector_rank for h in vectors_only)


def test_deleting_a_document_removes_its_chunks_and_vectors(eval_collection):
    owner, _ = eval_collection
    store = Collection.open("towns", owner)
    doc = next(d for d in store.documents() if d["name"] == "quillhaven.md")
    store.delete(doc["id"])
    ids, vectors = store.vectors()
    assert len(ids) == len(vectors) == len(store.chunks()) and {c["source"] for c in store.chunks()} == {
        "brackenmoor-on-sill.md"
    }
    assert all(h.source != "quillhaven.md" for h in rag.retrieve("towns", "mayor of Quillhaven", owner, top_k=5))


def test_collections_belong_to_their_owner(eval_collection):
    owner, _ = eval_collection
    with pytest.raises(CollectionError, match="no collection called 'towns'"):
        rag.retrieve("towns", "mayor?", "anon:someone-else")
    assert "towns" not in [c["name"] for c in rag.collections("anon:someone-else")]
    with pytest.raises(CollectionError, match="letters, digits"):
        Collection.open("../../etc", owner, create=True)


def test_a_question_before_any_document_is_a_sentence(settings):
    Collection.open("empty", "anon:new", create=True)
    with pytest.raises(CollectionError, match="no documents yet"):
        rag.retrieve("empty", "Anything?", "anon:new")


def test_the_demo_collection_is_shared_and_read_only(settings):
    hits = rag.retrieve(DEMO, "How do I fine-tune a model on my own data?", "anon:first-visit", top_k=3)
    assert hits and any("fine" in h.source.lower() or "README" in h.source for h in hits)
    with pytest.raises(PlaygroundError, match="read-only"):
        Collection.open(DEMO, "anon:first-visit").delete(1)


def test_the_sentence_that_answers_outranks_the_one_that_only_repeats_the_name(eval_collection):
    owner, _ = eval_collection
    # the intro sentence ("Quillhaven is a small harbour town ...") shares more words; the answer has the number
    hits = rag.retrieve("towns", "How many people live in the harbour town of Quillhaven?", owner, top_k=4)
    best = max((s for h in hits for s in h.scored), key=lambda s: s[1])[2]
    assert "5,215" in best and "horseshoe" not in best
    # what the model reads is a subset of the hits' sentences, and the inspector gets it per hit
    read = rag.shown(hits)
    assert len(read) == len(hits) and 0 < sum(map(len, read)) <= rag.PROMPT_SENTENCES
    assert all(sentence in hit.text for hit, sentences in zip(hits, read, strict=True) for sentence in sentences)


def test_answers_cite_their_sources_and_say_when_the_documents_do_not(eval_collection):
    owner, _ = eval_collection
    result = rag.ask("towns", "Who is the present mayor of Quillhaven?", owner, top_k=3)
    assert result["citations"][0]["source"] == "quillhaven.md"
    assert set(result["citations"][0]) == {"source", "text", "score", "page"}
    assert "Hesper Colley" in result["answer"] and "[" in result["answer"]
    assert any("Hesper Colley" in " ".join(h["shown"]) for h in result["hits"])
    unrelated = rag.ask("towns", "What is the boiling point of liquid nitrogen in kelvin?", owner)
    assert unrelated["answer"] == rag.NOT_FOUND and all(h["shown"] == [] for h in unrelated["hits"])


def test_context_aware_decoding_subtracts_what_the_model_says_without_the_sources(eval_collection):
    import torch

    from services.models import loading
    from services.pipelines import chat

    loaded = loading.load(rag.CHAT_MODEL, "text-generation")
    asked = "Question: What colour is the dial?"
    with_sources = [{"role": "user", "content": f"Sources:\n[1] The dial is saffron yellow.\n\n{asked}"}]
    without = [{"role": "user", "content": asked}]
    ids = chat.encode_prompt(loaded, with_sources)["input_ids"]
    plain = chat.encode_prompt(loaded, without)["input_ids"]
    contrast = chat._context_contrast(loaded, without, 0.5, ids.shape[1])
    with torch.no_grad():
        for _step in range(2):  # the first step reads the whole plain prompt, the next only the new token (cache)
            scores = loaded.model(ids).logits[:, -1, :]
            mixed = contrast(ids, scores.clone())
            expected = 1.5 * scores - 0.5 * loaded.model(plain).logits[:, -1, :]
            assert torch.allclose(mixed, expected, atol=1e-3) and not torch.allclose(mixed, scores, atol=1e-3)
            token = mixed.argmax(-1, keepdim=True)
            ids, plain = torch.cat([ids, token], 1), torch.cat([plain, token], 1)
    owner, _ = eval_collection
    result = rag.ask("towns", "Who is the present mayor of Quillhaven?", owner, top_k=3, contrast=0.5)
    assert result["answer"] and result["citations"][0]["source"] == "quillhaven.md"


def test_chat_history_is_kept_per_owner_and_collection(settings):
    remember("anon:a", "towns", "user", "Hello?")
    remember("anon:a", "towns", "assistant", "Hi [1]", [{"source": "x.md"}])
    assert [m["content"] for m in history("anon:a", "towns")] == ["Hello?", "Hi [1]"]
    assert history("anon:b", "towns") == [] and history("anon:a", "other") == []
    new_chat("anon:a", "towns")
    assert history("anon:a", "towns") == []


def test_the_cli_contract(tmp_path, settings):
    env = {"HF_HUB_OFFLINE": "1", "PLAYGROUND_HOME": str(settings.home), "PATH": "/usr/bin:/bin"}
    import os

    env = {**os.environ, **env}
    base = [sys.executable, "-m", "services", "rag"]
    done = subprocess.run([*base, "ingest", "--collection", "cli", str(EVAL_DOCS / "nebuloscope.md")], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    done = subprocess.run([*base, "ask", "--collection", "cli", "--top-k", "2", "What does a nebuloscope measure?"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert set(out) == {"answer", "citations"} and isinstance(out["answer"], str) and len(out["citations"]) == 2
    assert all(set(c) == {"source", "text", "score", "page"} for c in out["citations"])
    assert (
        out["citations"][0]["source"] == "nebuloscope.md"
        and out["citations"][0]["score"] >= out["citations"][1]["score"]
    )


def test_a_dataset_column_is_indexed_row_by_row(tmp_path, settings):
    table = tmp_path / "facts.csv"
    table.write_text(
        "id,text\n1,The Velmora lighthouse was rebuilt in 1887.\n2,\n3,Quillhaven's market opens on Tuesdays.\n"
    )
    summary = rag.ingest_dataset("facts", str(table), "text", "anon:rows")
    assert summary["chunks"] == 2 and summary["added"][0]["pages"] == 2
    hits = rag.retrieve("facts", "When was the Velmora lighthouse rebuilt?", "anon:rows", top_k=1)
    assert hits[0].page == 1 and "1887" in hits[0].text
    assert "already in the collection" in rag.ingest_dataset("facts", str(table), "text", "anon:rows")["skipped"][0]
    with pytest.raises(PlaygroundError, match="offline"):
        rag.ingest_dataset("facts", "stanfordnlp/imdb", "text", "anon:rows")


def test_the_demo_collection_follows_its_pages(tmp_path, settings, monkeypatch):
    from services.rag import ingest as rag_ingest

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "page.md").write_text("# Page\nThe ferry leaves at nine.")
    monkeypatch.setattr(rag_ingest, "DOCS_DIR", docs)
    names = lambda: sorted(d["name"] for d in rag.ensure_demo().documents())  # noqa: E731
    assert names() == ["README.md", "page.md"]
    (docs / "page.md").write_text("# Page\nThe ferry leaves at ten.")
    assert names() == ["README.md", "page.md"]
    texts = [c["text"] for c in rag.ensure_demo().chunks() if c["source"] == "page.md"]
    assert any("ten" in t for t in texts) and not any("nine" in t for t in texts)


def test_a_declined_answer_cites_nothing_and_a_made_up_citation_is_replaced():
    hits = [rag.Hit(n, "The documents say the ferry leaves at nine.", "a.md", None, None, 0.5, n) for n in (1, 2, 3)]
    assert rag.tidy(f"{rag.NOT_FOUND} [3]", hits) == rag.NOT_FOUND  # a small model may number its refusal
    assert rag.tidy("The ferry leaves at nine [2].", hits) == "The ferry leaves at nine [2]."
    assert rag.tidy("The ferry leaves at nine [7].", hits) == "The ferry leaves at nine. [1]"  # no source 7


def test_the_model_reads_passages_without_markdown_markup():
    # a table row of the README, as the demo collection holds it: the 135M model looped on "| **Fine-tune** |"
    row = "| **Fine-tune** | The 🤗 Trainer on `samples/sentiment` |\n- Battery: 612 Wh\n## Specs"
    assert rag.plain(row) == "Fine-tune The 🤗 Trainer on samples/sentiment Battery: 612 Wh Specs"
    hit = rag.Hit(1, row, "README.md", None, None, 0.5, 1)
    assert "[1] Fine-tune The 🤗 Trainer" in rag.build_prompt("What is Fine-tune?", [hit])[-1]["content"]
