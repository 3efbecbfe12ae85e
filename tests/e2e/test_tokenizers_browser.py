"""The Tokenizers tab in headless Chromium: coloured tokens, counts, ids and tooltips, switching tokenizers,
comparing, batches, chat templates, decoding mistakes, the vocabulary and training a tokenizer.

The tests run in order on one page. Screenshots go to test-artifacts/screenshots/tokenizers-*.png; the tokens and
compare views are also saved as the README's assets/screenshots/tokenizers.png and tokenizers-compare.png.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e

README_SHOTS = Path(__file__).resolve().parents[2] / "assets" / "screenshots"
TEXT = "Tokenizers are naïve about emoji 🤗👩‍💻 and unbelievable words."
LONG_NAME = "e2e-bpe-trained-on-the-bundled-corpus"  # long enough to need its row label wrapped in Compare


@pytest.fixture(scope="module")
def page(live_app):
    with chromium_page(live_app["url"], height=900) as page:
        yield page


def sub_tab(page, name):
    page.get_by_role("tab", name=name, exact=True).click()


def visible_label(page, label):
    """Fields by label on the tab in view (hidden tabs keep theirs in the page)."""
    return page.get_by_label(label, exact=True).filter(visible=True)


def spans(page):
    return page.locator("#tok-spans")


def test_tokens_are_coloured_with_counts(page, shots):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Tokenizers", exact=True).click()
    expect(visible_label(page, "Text").first).to_have_value(re.compile("^Tokenizers don't read words"))
    expect(visible_label(page, "Tokenizer")).to_have_value(re.compile("smollm2-135m-instruct"))
    expect(spans(page).locator(".tk").first).to_be_visible(timeout=60_000)
    assert spans(page).locator(".tk").count() > 20
    stats = page.locator(".pg-stats").filter(visible=True).first
    expect(stats).to_be_visible()
    for card in ("Tokens", "Characters", "Chars / token", "Bytes / token", "Unknown", "Vocabulary"):
        expect(stats.locator(".pg-stat span", has_text=card).first).to_be_visible()
    expect(stats).to_contain_text("BPE · byte-level")
    page.screenshot(path=str(shots / "tokenizers.png"), full_page=True)
    README_SHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shots / "tokenizers.png", README_SHOTS / "tokenizers.png")


def test_compare_aligns_the_tokenizers(page, shots):
    from playwright.sync_api import expect

    sub_tab(page, "Compare")
    page.get_by_role("button", name="Compare", exact=True).click()
    page.mouse.move(0, 0)
    tables = page.locator(".pg-align").filter(visible=True)
    expect(tables.first).to_be_visible(timeout=60_000)
    for name in ("smollm2-135m-instruct", "all-minilm-l6-v2", "unigram-demo"):
        expect(tables.first.locator("th", has_text=name)).to_be_visible()
    counts = page.locator("table:visible").filter(has_text="chars/token")
    expect(counts.first).to_contain_text("WordPiece")
    page.screenshot(path=str(shots / "tokenizers-compare.png"), full_page=True)
    shutil.copyfile(shots / "tokenizers-compare.png", README_SHOTS / "tokenizers-compare.png")


def test_emoji_and_accents_never_show_a_replacement_character(page):
    from playwright.sync_api import expect

    sub_tab(page, "Tokens")
    visible_label(page, "Text").first.fill(TEXT)
    page.get_by_role("button", name="Tokenize", exact=True).click()
    expect(spans(page)).to_contain_text("unbelievable", timeout=30_000)
    expect(spans(page)).to_contain_text("naïve")
    expect(spans(page)).to_contain_text("🤗")
    assert "\ufffd" not in spans(page).inner_text()
    # The emoji is one character split over several byte-level tokens: drawn as one striped group.
    assert spans(page).locator(".tk.grp").count() >= 1
    characters = page.locator(".pg-stats").filter(visible=True).first.locator(".pg-stat", has_text="Characters")
    expect(characters.locator("b")).to_have_text(str(len(TEXT)))


def test_show_ids_and_the_token_tooltip(page, shots):
    from playwright.sync_api import expect

    show_ids = visible_label(page, "Show ids")
    show_ids.check()
    expect(spans(page).locator(".pg-toks.ids")).to_be_visible(timeout=30_000)
    chips = spans(page).locator(".tk")
    assert all(re.fullmatch(r"\d+", t.strip()) for t in chips.all_inner_texts())
    show_ids.uncheck()
    expect(spans(page).locator(".pg-toks.ids")).to_have_count(0, timeout=30_000)
    expect(spans(page)).to_contain_text("naïve")

    token = spans(page).locator(".tk").nth(2)
    token.hover()
    tip = token.get_attribute("data-tip")
    assert re.search(r"\bid \d+", tip), tip
    assert "vocab:" in tip and "chars " in tip
    page.screenshot(path=str(shots / "tokenizers-tooltip.png"), full_page=False)


def test_chat_template(page, shots):
    from playwright.sync_api import expect

    sub_tab(page, "Chat template")
    page.get_by_role("button", name="Render", exact=True).click()
    expect(page.get_by_text("<|im_start|>").filter(visible=True).first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(shots / "tokenizers-chat.png"), full_page=True)


def test_chat_template_counts_say_what_they_count(page, shots):
    """The ratios leave special tokens out: the cards say so, and the numbers they divide give the ratio shown."""
    from playwright.sync_api import expect

    stats = page.locator(".pg-stats").filter(visible=True).first
    tokens = stats.locator(".pg-stat", has_text="Tokens").first
    expect(tokens.locator("small")).to_contain_text("ordinary +")
    total = int(tokens.locator("b").inner_text().replace(",", ""))
    ordinary, special = map(int, re.findall(r"\d+", tokens.locator("small").inner_text()))
    assert ordinary + special == total and special > 0
    ratio = stats.locator(".pg-stat", has_text="Chars / token").first
    note = ratio.locator("small").inner_text()
    found = re.fullmatch(r"([\d,]+) characters ÷ ([\d,]+) ordinary tokens \(special ones left out\)", note)
    assert found, note
    chars, divisor = (int(g.replace(",", "")) for g in found.groups())
    assert divisor == ordinary
    assert float(ratio.locator("b").inner_text()) == round(chars / ordinary, 2)
    characters = int(stats.locator(".pg-stat", has_text="Characters").first.locator("b").inner_text().replace(",", ""))
    assert chars < characters, "the text of <|im_start|> and its kin is left out with them"
    stats.screenshot(path=str(shots / "tokenizers-chat-counts.png"))


def test_another_tokenizer_changes_the_view(page):
    from playwright.sync_api import expect

    sub_tab(page, "Tokens")
    before = spans(page).inner_text()
    visible_label(page, "Tokenizer").click()
    page.get_by_role("option", name=re.compile(r"^all-minilm-l6-v2")).click()
    expect(spans(page)).to_contain_text("[CLS]", timeout=30_000)
    expect(page.locator(".pg-stats").filter(visible=True).first).to_contain_text("WordPiece")
    assert spans(page).inner_text() != before


def compare_picker(page):
    """The chips of the tokenizers chosen in Compare with."""
    return page.locator("#tok-compare-with .token")


def test_compare_with_follows_the_main_tokenizer(page):
    """all-minilm-l6-v2 is now the main tokenizer: Compare with no longer holds it, nor offers it."""
    from playwright.sync_api import expect

    sub_tab(page, "Compare")
    expect(compare_picker(page)).to_have_text([re.compile("^unigram-demo")], timeout=30_000)
    visible_label(page, "Compare with").click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    offered = options.all_inner_texts()
    assert any("smollm2-135m-instruct" in o for o in offered), offered
    assert not any("all-minilm-l6-v2" in o for o in offered), offered
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Compare", exact=True).click()
    table = page.locator(".pg-align").filter(visible=True).first
    expect(table.locator("th", has_text="unigram-demo")).to_be_visible(timeout=30_000)
    expect(table.locator("th", has_text="all-minilm-l6-v2")).to_have_count(1)


def test_batch_and_padding(page, shots):
    from playwright.sync_api import expect

    sub_tab(page, "Batch & padding")
    page.get_by_role("button", name="Encode the batch", exact=True).click()
    batches = page.locator(".pg-batch").filter(visible=True)
    expect(batches.first).to_be_visible(timeout=30_000)
    expect(batches).to_have_count(2)
    expect(batches.first).to_contain_text("attention_mask")
    expect(batches.first).to_contain_text("[PAD]")
    page.screenshot(path=str(shots / "tokenizers-batch.png"), full_page=True)


def test_decoding_an_unknown_id_is_explained(page, shots):
    from playwright.sync_api import expect

    sub_tab(page, "Decode & round trip")
    visible_label(page, "Token ids").fill("99999999")
    page.get_by_role("button", name="Decode", exact=True).click()
    toast = page.locator(".toast-body").filter(has_text="not in the vocabulary")
    expect(toast.first).to_be_visible(timeout=30_000)
    expect(toast.first).to_contain_text("99999999 is not in the vocabulary of all-minilm-l6-v2")
    assert "Traceback" not in toast.first.inner_text()
    page.wait_for_timeout(800)  # the toast flies in
    page.screenshot(path=str(shots / "tokenizers-decode-error.png"), full_page=False)
    page.locator(".toast-close").first.click()

    visible_label(page, "Token ids").fill("101, 7592, 2088, 102")
    page.get_by_role("button", name="Decode", exact=True).click()
    expect(visible_label(page, "Text").last).to_have_value("[CLS] hello world [SEP]", timeout=30_000)
    page.get_by_role("button", name="Check the round trip").click()
    expect(page.locator(".pg-warn").filter(visible=True).first).to_contain_text("Not exact", timeout=30_000)


def test_vocabulary_search(page, shots):
    from playwright.sync_api import expect

    sub_tab(page, "Vocabulary")
    search = visible_label(page, "Search")
    search.fill("ing")
    page.get_by_role("button", name="Search", exact=True).click()
    expect(page.locator(".pg-note").filter(visible=True).filter(has_text="matches")).to_contain_text(
        "30,522 tokens", timeout=30_000
    )
    expect(page.get_by_text("##ing", exact=True).filter(visible=True).first).to_be_visible(timeout=30_000)
    page.screenshot(path=str(shots / "tokenizers-vocabulary.png"), full_page=True)


def test_special_tokens_are_readable_in_the_vocabulary(page, shots):
    """SmolLM2's special tokens look like HTML tags (<repo_name>): drawn as text, never swallowed."""
    from playwright.sync_api import expect

    sub_tab(page, "Tokens")
    visible_label(page, "Tokenizer").click()
    page.get_by_role("option", name=re.compile(r"^smollm2-135m-instruct")).click()
    expect(spans(page)).not_to_contain_text("[CLS]", timeout=30_000)
    sub_tab(page, "Vocabulary")
    visible_label(page, "Search").fill("repo")
    page.get_by_role("button", name="Search", exact=True).click()
    note = page.locator(".pg-note").filter(visible=True).filter(has_text="49,152 tokens")
    expect(note).to_contain_text("<repo_name> 3", timeout=30_000)
    for token in ("<|endoftext|> 0", "<file_sep> 5", "<jupyter_output> 14"):
        expect(note).to_contain_text(token)
    assert note.locator("repo_name, file_sep").count() == 0, "no token became an element"
    page.screenshot(path=str(shots / "tokenizers-vocabulary-special.png"), full_page=True)


def test_decoding_a_lone_byte_piece_names_its_bytes(page, shots):
    from playwright.sync_api import expect

    from services.tokenizers.analysis import tokenize

    first = tokenize("smollm2-135m-instruct", "🤗", add_special_tokens=False)[0]["id"]
    sub_tab(page, "Decode & round trip")
    visible_label(page, "Token ids").fill(str(first))
    page.get_by_role("button", name="Decode", exact=True).click()
    warn = page.locator(".pg-warn").filter(visible=True).filter(has_text="UTF-8")
    expect(warn).to_contain_text("an incomplete UTF-8 sequence (bytes 0xF0", timeout=30_000)
    cell = page.get_by_text(re.compile(r"an incomplete UTF-8 sequence: bytes 0xF0")).filter(visible=True)
    expect(cell.first).to_be_visible()
    page.screenshot(path=str(shots / "tokenizers-decode-bytes.png"), full_page=True)


def test_train_a_tokenizer_and_pick_it(page, shots):
    from playwright.sync_api import expect

    sub_tab(page, "Train")
    visible_label(page, "Name").fill(LONG_NAME)
    page.get_by_role("button", name="Train tokenizer", exact=True).click()
    done = page.locator(".pg-ok").filter(visible=True).filter(has_text="Trained")
    expect(done.first).to_be_visible(timeout=90_000)
    expect(done.first).to_contain_text(f"tokenizer:{LONG_NAME}")
    expect(visible_label(page, "Tokenizer")).to_have_value(re.compile(f"tokenizer:{LONG_NAME}"), timeout=10_000)
    expect(page.get_by_role("button", name="Download tokenizer (.zip)")).to_be_visible()
    page.screenshot(path=str(shots / "tokenizers-train.png"), full_page=True)
    sub_tab(page, "Tokens")
    expect(page.locator(".pg-stats").filter(visible=True).first).to_contain_text("BPE", timeout=30_000)


def test_compare_row_labels_are_whole_names(page, shots):
    """The trained tokenizer is now the main one; its long name is its row label, whole and readable."""
    from playwright.sync_api import expect

    sub_tab(page, "Compare")
    expect(compare_picker(page)).to_have_text([re.compile("^unigram-demo")])
    page.get_by_role("button", name="Compare", exact=True).click()
    table = page.locator(".pg-align").filter(visible=True).first
    label = table.locator("th", has_text=LONG_NAME)
    expect(label).to_have_text(f"tokenizer:{LONG_NAME}", timeout=60_000)
    assert label.get_attribute("title") == f"tokenizer:{LONG_NAME}"
    assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the label is cut"
    box = label.bounding_box()
    assert box and box["width"] <= 220, "a long name wraps instead of pushing the tokens off the row"
    table.screenshot(path=str(shots / "tokenizers-compare-labels.png"))
