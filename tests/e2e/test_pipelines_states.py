"""The Pipelines result panel always shows the current task's state (issue 14): Stop keeps what was generated, an
error is explained in the panel, a task switch goes back to idle; the header badge, the task picker and empty model
pickers read right. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import chromium_page
from tests.e2e.test_pipelines_browser import choose_task, set_slider

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1000) as page:
        yield page


def result_heading(page):
    """The first result panel's heading (model, timings, state)."""
    return page.locator(".pg-result-title").first


def test_stop_keeps_the_coloured_tokens_generated_so_far(page, shots):
    from playwright.sync_api import expect

    expect(page.get_by_label("Model").first).to_have_value("smollm2-135m-instruct", timeout=30_000)
    page.get_by_label("Text", exact=True).fill("Write a long story about a lighthouse keeper and the sea.")
    page.get_by_role("button", name="Settings").first.click()
    set_slider(page, "Max new tokens", 400)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Generating…").first).to_be_visible(timeout=120_000)
    page.get_by_role("button", name="Stop", exact=True).click()
    heading = result_heading(page)
    expect(heading).to_contain_text("stopped", timeout=60_000)
    expect(page.get_by_text("Generating…")).to_have_count(0)
    assert page.locator(".pg-tokens .pg-tok:visible").count() > 0, "the tokens generated before Stop, coloured"
    page.screenshot(path=str(shots / "pipelines-stopped.png"), full_page=True)


def test_an_error_is_explained_in_the_panel_and_a_task_switch_clears_it(page, shots):
    from playwright.sync_api import expect

    choose_task(page, "Sentiment / text classification")
    model = page.get_by_label("Model").first
    model.fill("openai-community/gpt2")
    model.press("Enter")
    page.get_by_role("button", name="Run", exact=True).click()
    heading = result_heading(page)
    expect(heading).to_contain_text("offline with no copy", timeout=30_000)
    expect(page.get_by_text("Loading the model and running")).to_have_count(0)
    page.screenshot(path=str(shots / "pipelines-error.png"), full_page=True)

    # A result, then a task switch: nothing of the previous model or its timings stays.
    choose_task(page, "Feature extraction")
    expect(heading).not_to_contain_text("offline with no copy")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(heading).to_contain_text("⏱", timeout=60_000)
    choose_task(page, "Zero-shot classification")
    expect(heading).not_to_contain_text("⏱")
    expect(heading).not_to_contain_text("all-minilm-l6-v2")
    expect(heading).to_contain_text("Run")


def test_header_task_picker_and_an_empty_model_picker_say_what_they_mean(page, shots):
    from playwright.sync_api import expect

    env = page.locator("#pg-env")
    expect(env).to_contain_text("packaged models only")
    expect(env).not_to_contain_text("offline offline")

    choose_task(page, "Sentence similarity / embeddings")
    picker = page.get_by_label("Task")
    assert picker.evaluate("el => el.scrollWidth <= el.clientWidth"), "the whole task name is shown"

    choose_task(page, "Fill the mask")  # offline, nothing packaged or trained here does it
    expect(page.locator("#pl-model")).to_contain_text("no model", ignore_case=True)
    expect(page.locator("#pl-model")).to_contain_text("Fine-tune")
    page.screenshot(path=str(shots / "pipelines-empty-picker.png"), full_page=True)
