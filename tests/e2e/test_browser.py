"""Click through the app in headless Chromium (Debian's), as a visitor would, and save screenshots.

Screenshots land in test-artifacts/screenshots/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import shutil

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def shots(artifacts_dir):
    folder = artifacts_dir / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_visit_every_tab_prepare_a_model_and_find_the_job_after_reload(browser, live_app, shots, tiny_models):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(live_app["url"])

    # Header: the machine and the offline mode, filled in on load.
    expect(page.locator("#pg-env")).to_contain_text("CPU", timeout=30_000)
    expect(page.locator("#pg-env")).to_contain_text("offline")
    expect(page.locator("#pg-env")).not_to_contain_text("offline offline")  # the chip, then what it means

    # The Pipelines tab opens first, ready to run.
    expect(page.get_by_role("button", name="Run", exact=True)).to_be_visible(timeout=30_000)

    # Models tab: the packaged models are listed and ready.
    page.get_by_role("tab", name="Models").click()
    table = page.locator("#models-table")
    expect(table).to_contain_text("smollm2-135m-instruct", timeout=30_000)
    expect(table).to_contain_text("all-minilm-l6-v2")
    page.screenshot(path=str(shots / "models.png"), full_page=True)

    # A bad id gets a sentence, not a traceback.
    model_box = page.get_by_placeholder("click a row above, or type a Hub id")
    model_box.fill("openai-community/gpt2")
    page.get_by_role("button", name="Prepare in the background").click()
    expect(page.get_by_text("offline with no copy").first).to_be_visible(timeout=20_000)
    page.screenshot(path=str(shots / "models-error.png"), full_page=True)

    # Clicking a row fills the model box; Prepare starts a job.
    table.get_by_text("all-minilm-l6-v2", exact=True).filter(visible=True).first.click()
    expect(model_box).to_have_value("all-minilm-l6-v2")
    # Only a model trained here can be downloaded, and the sentence says so.
    page.get_by_role("button", name="Download model (zip)").click()
    expect(page.get_by_text("Only models trained here").first).to_be_visible(timeout=20_000)
    model_box.fill(str(tiny_models["bert-ner"]))
    page.get_by_role("button", name="Prepare in the background").click()
    expect(page.get_by_text("Started job")).to_be_visible(timeout=20_000)

    # Jobs tab: the job is listed with its status and finishes.
    page.get_by_role("tab", name="Jobs").click()
    jobs = page.locator("#jobs-table")
    expect(jobs).to_contain_text("Prepare", timeout=20_000)
    expect(page.locator("#job-detail")).to_contain_text("succeeded", timeout=120_000)
    page.screenshot(path=str(shots / "jobs.png"), full_page=True)

    # After a reload the same browser (same owner cookie) finds its job again.
    page.reload()
    page.get_by_role("tab", name="Jobs").click()
    expect(page.locator("#jobs-table")).to_contain_text("Prepare", timeout=20_000)
    page.screenshot(path=str(shots / "jobs-after-reload.png"), full_page=True)

    # A different visitor sees none of it.
    stranger = browser.new_context().new_page()
    stranger.goto(live_app["url"])
    stranger.get_by_role("tab", name="Jobs").click()
    expect(stranger.locator("#job-detail")).to_contain_text("No jobs yet", timeout=20_000)
    expect(stranger.locator("#jobs-table")).not_to_contain_text("Prepare")
    assert not errors, errors
    context.close()
