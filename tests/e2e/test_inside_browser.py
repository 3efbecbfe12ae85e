"""The Inside a model tab in headless Chromium, as a student uses it: look inside the packaged SmolLM2 (its parts,
config and module tree), run a text through it (30 layers x 9 heads of attention pictures, a head picked by a click
on the grid, the kinds of heads, the logit lens), then build a smaller model of their own and send it to Fine-tune.

Screenshots go to test-artifacts/screenshots/inside-*.png; the forward pass is also the README's
assets/screenshots/inside.png.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=1100) as page:
        page.get_by_role("tab", name="Inside a model", exact=True).click()
        yield page


def no_errors(page):
    assert page.locator(".toast-body").count() == 0, page.locator(".toast-body").all_inner_texts()


def test_the_anatomy_of_the_packaged_chat_model(page, shots):
    from playwright.sync_api import expect

    expect(page.locator("#in-model input")).to_have_value("smollm2-135m-instruct", timeout=30_000)
    page.locator("#in-look").click()
    summary = page.locator("#in-summary")
    expect(summary).to_contain_text("LlamaForCausalLM", timeout=120_000)
    expect(summary).to_contain_text(re.compile(r"30 × LlamaDecoderLayer"))
    expect(page.locator("#in-fields")).to_contain_text("num_attention_heads")
    page.locator("#in-tree summary").first.click()  # fold the whole model, then unfold it again
    page.locator("#in-tree summary").first.click()
    expect(page.locator("#in-tree")).to_contain_text("embed_tokens")
    no_errors(page)
    page.screenshot(path=str(shots / "inside-anatomy.png"), full_page=True)


def test_one_forward_pass_with_every_head_and_the_logit_lens(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="One forward pass", exact=True).click()
    page.locator("#in-text textarea").fill("The capital of France is Paris, and the capital of Italy is")
    started = time.monotonic()
    page.locator("#in-run").click()
    expect(page.locator("#in-tokens")).to_contain_text("tokens", timeout=120_000)
    expect(page.locator("#in-grid img")).to_be_visible(timeout=60_000)
    expect(page.locator("#in-lens")).to_contain_text("after", timeout=60_000)
    print(f"forward pass views shown after {time.monotonic() - started:.1f} s")
    grid = page.locator("#in-grid img")
    box = grid.bounding_box()
    natural = grid.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    scale = box["width"] / natural[0]
    # the cell of layer 2 (column), head 5 (row) in the picture's pixels (heatmaps.py: MARGIN 34, CELL 40, GAP 4)
    x, y = (34 + 2 * 44 + 20) * scale, (34 + 5 * 44 + 20) * scale
    grid.click(position={"x": x, "y": y})
    expect(page.locator("#in-layer input[type=number]")).to_have_value("2", timeout=10_000)
    expect(page.locator("#in-head input[type=number]")).to_have_value("5")
    page.get_by_text("Kinds of heads", exact=True).click()
    expect(page.locator("#in-heads td[title]")).to_have_count(30 * 9)
    expect(page.locator("#in-lines svg line").first).to_be_attached()
    no_errors(page)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "inside-forward.png"), full_page=True)
    shutil.copyfile(shots / "inside-forward.png", ROOT / "assets" / "screenshots" / "inside.png")


def test_build_a_smaller_model_and_send_it_to_fine_tune(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Build your own", exact=True).click()
    layers = page.locator("#in-b-num_hidden_layers input")
    expect(layers).to_have_value("30", timeout=30_000)
    layers.fill("4")
    layers.press("Tab")
    expect(page.locator("#in-estimate")).to_contain_text("num_hidden_layers", timeout=30_000)
    heads = page.locator("#in-b-num_attention_heads input")
    heads.fill("7")  # 576 is not a multiple of 7
    heads.press("Tab")
    expect(page.locator("#in-estimate .pg-warn")).to_contain_text("576", timeout=30_000)
    heads.fill("9")
    heads.press("Tab")
    expect(page.locator("#in-estimate .pg-warn")).to_have_count(0, timeout=30_000)
    page.locator("#in-b-name input").fill("tiny-smollm")
    page.locator("#in-b-create").click()
    expect(page.locator("#in-b-result")).to_contain_text("trained:tiny-smollm", timeout=120_000)
    page.screenshot(path=str(shots / "inside-build.png"), full_page=True)
    page.locator("#in-b-train").click()
    expect(page.get_by_role("tab", name="Fine-tune", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Base model")).to_have_value("trained:tiny-smollm", timeout=10_000)
    page.wait_for_timeout(1500)  # the form's own task change settles (the stories, the suggested settings)
    expect(page.get_by_label("Base model")).to_have_value("trained:tiny-smollm")
    expect(page.get_by_label("2 · Task")).to_have_value("Causal language model (generation)")
    no_errors(page)
    page.screenshot(path=str(shots / "inside-to-finetune.png"), full_page=True)
