"""The Deploy tab in headless Chromium: pick a model, read its endpoint and snippets, send a request from the page
and see the server's real answer, for a chat model and an embedding model.

Screenshots go to test-artifacts/screenshots/deploy-*.png.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1100) as page:
        page.get_by_role("tab", name="Deploy", exact=True).click()
        yield page


def test_a_chat_request_from_the_page(page, shots):
    from playwright.sync_api import expect

    endpoint = page.locator("#deploy-endpoint")
    expect(endpoint).to_contain_text("/v1/chat/completions", timeout=30_000)
    expect(page.get_by_text("$PLAYGROUND_API_KEY").first).to_be_visible()
    page.get_by_role("button", name="Send", exact=True).click()
    answer = page.locator("#deploy-answer")
    expect(answer).to_contain_text("HTTP 200", timeout=120_000)
    expect(answer).to_contain_text('"chat.completion"')
    expect(answer).to_contain_text('"finish_reason"')
    page.screenshot(path=str(shots / "deploy-chat.png"), full_page=True)


def test_an_embedding_model_gets_its_own_endpoint(page, shots):
    from playwright.sync_api import expect

    picker = page.locator("#deploy-model input")
    picker.click()
    page.get_by_role("option", name="all-minilm-l6-v2", exact=True).click()
    expect(page.locator("#deploy-endpoint")).to_contain_text("/v1/embeddings", timeout=30_000)
    page.get_by_role("button", name="Send", exact=True).click()
    answer = page.locator("#deploy-answer")
    expect(answer).to_contain_text('"embedding"', timeout=60_000)
    expect(answer).to_contain_text("more numbers")
    page.screenshot(path=str(shots / "deploy-embeddings.png"), full_page=True)


def test_an_onnx_export_shows_its_reports(page, shots):
    from playwright.sync_api import expect

    picker = page.locator("#deploy-model input")
    picker.click()
    page.get_by_role("option", name="minilm-sentiment", exact=True).click()
    expect(page.locator("#deploy-endpoint")).to_contain_text("/predict", timeout=30_000)
    page.get_by_text("Export to ONNX (int8) for fast CPU inference").click()
    page.locator("#deploy-onnx").click()
    report = page.locator("#deploy-onnx-report")
    expect(report).to_contain_text("ONNX int8", timeout=240_000)
    expect(report).to_contain_text("as fast as PyTorch")
    report.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "deploy-onnx.png"), full_page=True)


def test_the_fast_cpu_copy_is_checked_against_the_float32_model(page, shots):
    from playwright.sync_api import expect

    page.get_by_text("Fast CPU generation: SmolLM2's 4-bit weights in ONNX Runtime").click()
    page.locator("#deploy-fast-check").click()
    report = page.locator("#deploy-fast-report")
    expect(report).to_contain_text("Same greedy answer", timeout=300_000)
    expect(report).to_contain_text("100 % of 6 prompts")  # greedy answers unchanged
    speedup = float(report.locator("b").first.inner_text().split("decodes ")[1].split("x")[0])
    assert speedup > 1.0, "the copy is the faster one"
    report.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "deploy-fast-cpu.png"), full_page=True)
