"""The RAG chat tab in headless Chromium, used as a visitor does over several steps: ask the shared demo collection
and open a citation, ask a follow-up in the same chat; upload a document into a collection of your own, preview
its chunks, index it, ask about it and read the retrieval inspector; reload the page mid-work and carry on in the
same collection; a document and a question with tags such as <repo_name> show them as text.

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
CITED = re.compile(r"\[\d\]")
TAGS = """# Code model tokens

## <repo_name> and <file_sep>

The token <repo_name> starts the name of a repository. The token <file_sep> separates two files of the repository.
"""


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1100) as page:
        yield page


def ask(page, text):
    box = page.locator("#rag-question textarea")
    box.fill(text)
    box.press("Enter")


def bots(page):
    return page.locator("#rag-chat [data-testid='bot']")


def answered(page, count: int):
    """Wait for the count-th answer of the chat to be finished (it cites a source) and return it."""
    from playwright.sync_api import expect

    expect(bots(page)).to_have_count(count, timeout=120_000)
    expect(bots(page).nth(count - 1)).to_contain_text(CITED, timeout=120_000)
    settled(bots(page).nth(count - 1))  # streamed to its end, so the next question follows a finished answer
    return bots(page).nth(count - 1)


def settled(message, quiet_s: int = 3) -> str:
    """The text of a streamed message once it stops changing (no citation is asked of it)."""
    text, same = "", 0
    for _ in range(180):
        if same >= quiet_s:
            break
        message.page.wait_for_timeout(1000)
        now = message.inner_text().strip()
        same = same + 1 if now == text and now not in ("", "…") else 0
        text = now
    assert same >= quiet_s, f"the message is still changing: {text!r}"
    return text


def close_toasts(page):
    """Toasts of other tabs' page-load work are not this tab's: closed before the step a test checks."""
    while page.locator(".toast-close").count():
        page.locator(".toast-close").first.click()


def no_errors(page):
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()
    assert page.get_by_text("Something went wrong").count() == 0
    assert page.locator("#rag-chat .error, #rag-sources .error, #rag-question .error").count() == 0


def suggestions(page) -> list[str]:
    return [t.strip() for t in page.locator("#rag-try button").all_inner_texts() if t.strip()]


def picker(page):
    return page.locator("#rag-collection input")


def test_the_demo_collection_answers_with_citations(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="RAG chat", exact=True).click()
    expect(page.locator("#rag-try")).to_contain_text("fine-tune")  # the guide's own questions
    ask(page, "How do I fine-tune a model on my own data?")
    answered(page, 1)
    sources = page.locator("#rag-sources .pg-cite")
    expect(sources.first).to_contain_text(re.compile(r"rank 1 · (strong|some|weak) match"))
    expect(page.locator("#rag-sources")).not_to_contain_text("score")  # no bare RRF number
    sources.first.locator("summary").click()
    text = sources.first.locator(".pg-cite-text")
    expect(text).to_be_visible()
    assert "## " not in text.inner_text() and "**" not in text.inner_text()  # the guide's Markdown, rendered
    page.screenshot(path=str(shots / "rag-demo.png"), full_page=True)


def test_a_follow_up_in_the_same_chat_is_answered(page, shots):
    from playwright.sync_api import expect

    if bots(page).count() == 0:  # run alone: the first question of the chat
        page.get_by_role("tab", name="RAG chat", exact=True).click()
        ask(page, "How do I fine-tune a model on my own data?")
        answered(page, 1)
    first = bots(page).count()
    close_toasts(page)
    ask(page, "Can other visitors see my jobs?")
    answered(page, first + 1)
    expect(page.locator("#rag-sources .pg-cite").first).to_be_visible()
    no_errors(page)
    page.screenshot(path=str(shots / "rag-follow-up.png"), full_page=True)


def test_my_document_is_previewed_indexed_and_answered(page, shots):
    from playwright.sync_api import expect

    demo = suggestions(page)
    page.get_by_text("Add documents", exact=True).click()
    page.locator("input[type=file]").filter(visible=False).first.set_input_files(str(DOC))
    page.get_by_role("button", name="Preview chunks").click()
    expect(page.locator("#rag-preview .pg-chunks").first).to_be_visible(timeout=60_000)
    page.get_by_role("button", name="Index documents").click()
    expect(page.get_by_text("Indexed 1 document(s)")).to_be_visible(timeout=180_000)
    expect(picker(page)).to_have_value(re.compile("my-documents"))
    expect(page.locator("#rag-try")).to_contain_text("Quillhaven")  # questions from the new collection
    assert suggestions(page) != demo and not set(suggestions(page)) & set(demo)
    ask(page, "Who is the present mayor of Quillhaven?")
    answered(page, 1)
    expect(page.locator("#rag-sources .pg-cite").first).to_contain_text("quillhaven.md")
    expect(page.locator("#rag-sources .pg-cite").first).to_contain_text("strong match")
    page.get_by_text("Retrieval inspector (last question)").click()
    table = page.locator("#rag-inspector table")
    expect(table).to_be_visible()
    headers = table.locator("th")
    short = ["#", "doc", "match", "BM25", "vector", "RRF", "passage", "read"]  # "rerank" only when it is on
    assert headers.all_inner_texts() == short
    heights = {round(box["height"]) for box in (h.bounding_box() for h in headers.all())}
    line = page.evaluate("parseFloat(getComputedStyle(document.querySelector('#rag-inspector th')).lineHeight)")
    assert max(heights) < 2 * line + 10, heights  # every header on one line: no word broken over two
    assert "cosine" in (headers.nth(4).get_attribute("title") or "")  # each header explained on hover
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth + 1")  # every column in view
    for cell in table.locator("tbody tr").first.locator("td").all()[:6]:  # short cells never wrap either
        assert cell.evaluate("e => e.scrollWidth <= e.clientWidth + 1 && e.getClientRects().length === 1")
    page.wait_for_timeout(1000)
    page.locator("#rag-inspector").screenshot(path=str(shots / "rag-inspector.png"))
    page.screenshot(path=str(shots / "rag-mine.png"), full_page=True)
    shutil.copyfile(shots / "rag-mine.png", ROOT / "assets" / "screenshots" / "rag.png")


def test_a_reload_keeps_my_collection_its_chat_and_its_questions(page, shots):
    from playwright.sync_api import expect

    page.reload()
    page.get_by_role("tab", name="RAG chat", exact=True).click()
    expect(picker(page)).to_have_value(re.compile("my-documents"), timeout=30_000)
    expect(page.locator("#rag-try")).to_contain_text("Quillhaven")
    expect(bots(page)).to_have_count(1)  # the chat about this collection is back
    expect(page.locator("#rag-sources .pg-cite").first).to_contain_text("quillhaven.md")
    close_toasts(page)
    page.locator("#rag-try button").filter(has_text="What is Quillhaven?").click()
    expect(page.locator("#rag-question textarea")).to_have_value("What is Quillhaven?")
    page.locator("#rag-question textarea").press("Enter")
    answered(page, 2)  # the question went to this collection, as a follow-up in its chat
    expect(page.locator("#rag-sources .pg-cite").first).to_contain_text("quillhaven.md")
    no_errors(page)
    page.screenshot(path=str(shots / "rag-after-reload.png"), full_page=True)


def test_tags_in_a_document_and_a_question_show_as_text(page, shots, tmp_path):
    from playwright.sync_api import expect

    doc = tmp_path / "code-tokens.md"
    doc.write_text(TAGS)
    page.get_by_role("tab", name="RAG chat", exact=True).click()
    page.get_by_text("Add documents", exact=True).click()  # closed again since the reload
    into = page.get_by_label("Into (a new or existing collection)")
    expect(into).to_have_value("my-documents")
    for _ in range(10):  # right after the reload the box may be mounted again once, with its first value
        into.fill("code-notes")
        page.wait_for_timeout(700)
        if into.input_value() == "code-notes":
            break
    expect(into).to_have_value("code-notes")
    page.locator("input[type=file]").filter(visible=False).first.set_input_files(str(doc))
    page.get_by_role("button", name="Preview chunks").click()
    expect(page.locator("#rag-preview")).to_contain_text("The token <repo_name> starts", timeout=60_000)
    expect(into).to_have_value("code-notes")
    page.get_by_role("button", name="Index documents").click()
    expect(page.get_by_text("Indexed 1 document(s)")).to_be_visible(timeout=180_000)
    expect(picker(page)).to_have_value(re.compile("code-notes"))
    expect(page.locator("#rag-try")).to_contain_text("What is said about “<repo_name> and <file_sep>”?")
    close_toasts(page)
    ask(page, "What does the <file_sep> token do? <i>Briefly</i>")  # a tag, and one HTML knows
    expect(page.locator("#rag-sources .pg-cite").first).to_contain_text("code-tokens.md", timeout=120_000)
    settled(bots(page).last)  # what the small model says about its own special tokens is not checked
    expect(page.locator("#rag-chat [data-testid='user']").last).to_contain_text(
        "What does the <file_sep> token do? <i>Briefly</i>"
    )
    source = page.locator("#rag-sources .pg-cite").first
    source.locator("summary").click()
    expect(source.locator(".pg-cite-text")).to_contain_text("The token <repo_name> starts the name")
    page.get_by_text("Retrieval inspector (last question)").click()
    expect(page.locator("#rag-inspector table")).to_contain_text("<file_sep>")
    no_errors(page)
    page.wait_for_timeout(800)
    page.screenshot(path=str(shots / "rag-tags.png"), full_page=True)
