"""The RAG chat tab in headless Chromium: ask the shared demo collection and open a citation; upload a document
into a collection of your own, preview its chunks, index it, ask about it, and see the retrieval inspector.

Screenshots go to test-artifacts/screenshots/rag-*.png; the answered question about the uploaded document (with
the inspector and the chunk preview) is also the README's assets/screenshots/rag.png.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "bench" / "rag_eval" / "docs" / "quillhaven.md"


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1100) as page:
        yield page


def ask(page, text):
    box = page.locator("#rag-question textarea")
    box.fill(text)
    box.press("Enter")


def test_the_demo_collection_answers_with_citations(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="RAG chat", exact=True).click()
    ask(page, "How do I fine-tune a model on my own data?")
    sources = page.locator("#rag-sources .pg-cite")
    expect(sources.first).to_be_visible(timeout=120_000)
    bot = page.locator("#rag-chat .message.bot, #rag-chat [data-testid='bot']").last
    expect(bot).to_contain_text(re.compile(r"\[\d\]"), timeout=120_000)  # finished: the answer cites a source
    page.wait_for_timeout(1000)
    sources.first.locator("summary").click()
    expect(sources.first.locator(".pg-cite-text")).to_be_visible()
    page.screenshot(path=str(shots / "rag-demo.png"), full_page=True)


def test_my_document_is_previewed_indexed_and_answered(page, shots):
    from playwright.sync_api import expect

    page.get_by_text("Add documents", exact=True).click()
    page.locator("input[type=file]").filter(visible=False).first.set_input_files(str(DOC))
    page.get_by_role("button", name="Preview chunks").click()
    expect(page.locator("#rag-preview .pg-chunks").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Index documents").click()
    expect(page.get_by_text("Indexed 1 document(s)")).to_be_visible(timeout=180_000)
    ask(page, "Who is the present mayor of Quillhaven?")
    expect(page.locator("#rag-sources .pg-cite").first).to_contain_text("quillhaven.md", timeout=120_000)
    bot = page.locator("#rag-chat .message.bot, #rag-chat [data-testid='bot']").last
    expect(bot).to_contain_text(re.compile(r"\[\d\]"), timeout=120_000)  # the finished, cited answer
    page.get_by_text("Retrieval inspector (last question)").click()
    expect(page.get_by_text("BM25 rank (score)")).to_be_visible()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "rag-mine.png"), full_page=True)
    shutil.copyfile(shots / "rag-mine.png", ROOT / "assets" / "screenshots" / "rag.png")
