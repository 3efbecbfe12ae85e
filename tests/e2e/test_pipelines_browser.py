"""The Pipelines tab in headless Chromium: streaming generation with the token view, zero-shot, similarity,
comparing two models, and a mistake explained. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1000) as page:
        yield page


def choose_task(page, label):
    from playwright.sync_api import expect

    page.get_by_label("Task").click()
    page.get_by_role("option", name=label).click()
    # Wait until the server has switched the form (its reply resets the model box).
    expect(page.locator(".pg-explain").filter(has_text=f"{label}.").first).to_be_visible(timeout=20_000)


def set_slider(page, label, value):
    page.get_by_label(f"number input for {label}").fill(str(value))
    page.keyboard.press("Tab")


def test_generation_streams_and_colours_tokens(page, artifacts_dir):
    from playwright.sync_api import expect

    expect(page.get_by_label("Model").first).to_have_value("smollm2-135m-instruct", timeout=30_000)
    page.get_by_role("button", name="Settings").first.click()
    set_slider(page, "Max new tokens", 12)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("tokens/s")).to_be_visible(timeout=120_000)
    assert page.locator(".pg-tok").count() > 3, "each generated token is shown with its probability"
    assert "alternatives" in page.locator(".pg-tokens .pg-tok").first.get_attribute("title")
    page.get_by_role("button", name="Copy as code").click()
    expect(page.get_by_text("HuggingFaceTB/SmolLM2-135M-Instruct").first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "screenshots" / "pipelines-generation.png"), full_page=True)


def test_the_fast_cpu_copy_streams_with_its_token_view(page, artifacts_dir):
    from playwright.sync_api import expect

    model = page.get_by_label("Model").first
    for _ in range(10):  # a late reply of an earlier event may set the model box back once: pick it until it stays
        model.fill("smollm2-135m-instruct-fast-cpu")
        model.press("Enter")
        page.wait_for_timeout(1000)
        if model.input_value() == "smollm2-135m-instruct-fast-cpu":
            break
    expect(model).to_have_value("smollm2-135m-instruct-fast-cpu")
    page.get_by_role("button", name="Run", exact=True).click()
    # the code panel the first test opened follows the model of the run, once the run has ended
    expect(page.get_by_text("in ONNX Runtime in the playground").first).to_be_visible(timeout=180_000)
    expect(page.get_by_role("heading", name="smollm2-135m-instruct-fast-cpu")).to_be_visible()
    expect(page.get_by_text("tokens/s")).to_be_visible(timeout=60_000)
    expect(page.locator(".pg-tokens .pg-tok").nth(3)).to_be_visible(timeout=60_000)  # each token, its probability
    page.screenshot(path=str(artifacts_dir / "screenshots" / "pipelines-fast-cpu.png"), full_page=True)
    model.fill("smollm2-135m-instruct")  # as the next tests expect it
    model.press("Enter")


def test_zero_shot_with_the_embedding_model(page, artifacts_dir):
    from playwright.sync_api import expect

    choose_task(page, "Zero-shot classification")
    expect(page.get_by_label("Model").first).to_have_value("all-minilm-l6-v2", timeout=20_000)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("[data-testid='label-output-value']").first).to_contain_text("sports", timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "screenshots" / "pipelines-zero-shot.png"), full_page=True)


def test_similarity_and_compare_side_by_side(page, tiny_models, artifacts_dir):
    from playwright.sync_api import expect

    choose_task(page, "Sentence similarity / embeddings")
    expect(page.get_by_label("Sentences to compare with it, one per line")).to_be_visible(timeout=20_000)
    compare = page.get_by_label("Compare with (optional)")
    compare.fill(str(tiny_models["bert-encoder"]))
    compare.press("Enter")
    expect(page.get_by_text("Compared with").first).to_be_attached(timeout=20_000)
    page.get_by_role("button", name="Run", exact=True).click()
    tables = page.locator("table:visible")
    label = "Similarity to the source sentence"
    expect(page.get_by_text(label).filter(visible=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("bert-encoder").filter(visible=True).first).to_be_visible(timeout=60_000)
    expect(tables.filter(has_text="Someone is strumming a guitar.").first).to_be_visible(timeout=60_000)
    page.screenshot(path=str(artifacts_dir / "screenshots" / "pipelines-compare.png"), full_page=True)


def test_an_empty_text_is_explained(page):
    from playwright.sync_api import expect

    page.get_by_label("Source sentence", exact=True).fill("")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Please type a source sentence").first).to_be_visible(timeout=20_000)


def test_question_answering_highlights_the_answer_in_place(page, artifacts_dir):
    from pathlib import Path

    from playwright.sync_api import expect

    choose_task(page, "Question answering")
    model = page.get_by_label("Model").first
    model.fill(str(Path(__file__).resolve().parents[1] / "data" / "qa" / "bert-wordpiece"))
    model.press("Enter")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.get_by_text("Answer", exact=True).filter(visible=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("In the text").filter(visible=True).first).to_be_visible()
    page.screenshot(path=str(artifacts_dir / "screenshots" / "pipelines-qa.png"), full_page=True)


def test_batch_over_a_csv_file(page, tmp_path, artifacts_dir):
    from playwright.sync_api import expect

    rows = ["text"] + [f"the match was thrilling {i}" if i % 2 else f"the soup was salty {i}" for i in range(200)]
    path = tmp_path / "reviews.csv"
    path.write_text("\n".join(rows) + "\n")
    choose_task(page, "Zero-shot classification")
    expect(page.get_by_label("Model").first).to_have_value("all-minilm-l6-v2", timeout=20_000)
    page.get_by_label("Candidate labels, separated by commas").fill("sports, food")
    page.get_by_role("button", name="Run on a file (batch)").click()
    page.locator("input[type=file]").set_input_files(str(path))
    expect(page.get_by_text("200 rows")).to_be_visible(timeout=20_000)
    page.get_by_role("button", name="Run on every row").click()
    expect(page.get_by_text("All results (CSV)")).to_be_visible(timeout=120_000)
    results = page.locator("table:visible").filter(has_text="the match was thrilling 1").last
    expect(results).to_contain_text("sports")
    page.screenshot(path=str(artifacts_dir / "screenshots" / "pipelines-batch.png"), full_page=True)
