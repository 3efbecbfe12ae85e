"""The LoRA tab in headless Chromium: look at the bundled weekday sample and its loss mask, size an adapter on a
tiny chat model, train it, compare base and adapter on a held-back prompt, merge it, open it in Pipelines, and find
the job again after a reload.

The tests run in order on one page. Screenshots go to test-artifacts/screenshots/lora-*.png.
"""

from __future__ import annotations

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1000) as page:
        page.get_by_role("tab", name="LoRA", exact=True).click()
        yield page


def field(page, label):
    return page.get_by_label(label, exact=True).filter(visible=True)


def _choose(page, label, option):
    field(page, label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_the_data_and_its_loss_mask(page, shots):
    from playwright.sync_api import expect

    page.get_by_text("Command preview and config file").filter(visible=True).click()
    expect(page.locator("#lora-config")).to_contain_text("task: chat", timeout=20_000)
    expect(page.locator("#lora-config")).to_contain_text("lora:")
    _choose(page, "Sample", "samples/chat-days")
    expect(field(page, "Name of the adapter")).to_have_value("days-adapter")
    page.locator("button:visible", has_text="Look at the data").click()
    mask = page.locator("#lora-mask")
    expect(mask).to_contain_text("400 conversations", timeout=90_000)
    expect(mask).to_contain_text("trained")
    assert mask.locator(".pg-trained").count() >= 3 and mask.locator(".pg-masked").count() > 10
    page.get_by_text("Columns", exact=True).filter(visible=True).first.click()
    expect(field(page, "prompt / instruction column")).to_have_value("prompt")
    expect(field(page, "completion / output column")).to_have_value("completion")
    page.screenshot(path=str(shots / "lora-data.png"), full_page=True)


def test_estimate_then_train_on_a_tiny_chat_model(page, shots, tiny_chat_model):
    from playwright.sync_api import expect

    model = field(page, "2 · Chat model")
    model.fill(str(tiny_chat_model))
    model.press("Enter")
    field(page, "3 · Epochs").fill("0.5")
    field(page, "3 · Epochs").press("Tab")
    page.get_by_role("button", name="Estimate memory and time").click()
    estimate = page.locator("#lora-estimate")
    expect(estimate).to_contain_text("trainable", timeout=60_000)
    expect(estimate).to_contain_text("fits")
    page.get_by_role("button", name="Start training").click()
    result = page.locator("#lora-result")
    expect(result.locator(".pg-ok")).to_contain_text("trained:days-adapter", timeout=300_000)
    expect(result).to_contain_text("Held-back test prompts")
    expect(page.locator("#lora-status")).to_contain_text("succeeded")
    expect(page.locator("#lora-charts")).to_contain_text("Loss")
    expect(page.locator("#lora-estimate")).to_contain_text("Measured")
    expect(field(page, "Adapter")).to_have_value("trained:days-adapter")
    page.screenshot(path=str(shots / "lora-trained.png"), full_page=True)


def test_compare_a_held_back_prompt(page, shots):
    from playwright.sync_api import expect

    page.locator("#lora-tests button").first.click()
    expect(page.locator("#lora-prompt textarea")).not_to_have_value("", timeout=10_000)
    page.get_by_role("button", name="Compare", exact=True).click()
    for side in ("#lora-base", "#lora-adapter"):
        expect(page.locator(f"{side} textarea")).not_to_have_value("", timeout=60_000)
        expect(page.locator(f"{side} textarea")).not_to_have_value("…", timeout=60_000)
    page.screenshot(path=str(shots / "lora-compare.png"), full_page=True)


def test_merge_and_try_it_in_pipelines(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("button", name="Merge and check").click()
    merged = page.locator("#lora-merge")
    expect(merged).to_contain_text("Merged into", timeout=180_000)
    expect(merged).to_contain_text("must differ")
    expect(field(page, "Model to push or serve")).to_have_value("trained:days-adapter-merged")
    page.screenshot(path=str(shots / "lora-merged.png"), full_page=True)
    page.get_by_role("button", name="Try it in Pipelines").click()
    expect(page.get_by_role("tab", name="Pipelines", exact=True)).to_have_attribute("aria-selected", "true")
    expect(field(page, "Model").first).to_have_value("trained:days-adapter-merged", timeout=20_000)


def test_try_it_in_rag_chat_picks_it_as_the_answering_model(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="LoRA", exact=True).click()
    page.get_by_role("button", name="Try it in RAG chat").click()
    expect(page.get_by_role("tab", name="RAG chat", exact=True)).to_have_attribute("aria-selected", "true")
    page.get_by_text("Settings", exact=True).filter(visible=True).first.click()
    expect(page.locator("#rag-model input")).to_have_value("trained:days-adapter-merged", timeout=20_000)


def test_a_reload_finds_the_job_and_the_adapter_again(page):
    from playwright.sync_api import expect

    page.reload()
    page.get_by_role("tab", name="LoRA", exact=True).click()
    expect(page.locator("#lora-status")).to_contain_text("succeeded", timeout=30_000)
    expect(page.locator("#lora-result")).to_contain_text("trained:days-adapter")
    expect(field(page, "Adapter")).to_have_value("trained:days-adapter")
