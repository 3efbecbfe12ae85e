"""The Jobs tab in headless Chromium (issue 14, item 14): every column readable, logs without raw progress bars or
terminal codes, and "Clear finished" removing only the visitor's own finished jobs and their files.

The jobs are made through the app's own job manager for the page's owner (the owner cookie), so no model runs.
Screenshots: test-artifacts/screenshots/jobs-*.png.
"""

from __future__ import annotations

import threading

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e

_COLUMNS = ["Job", "What", "Status", "Progress", "Started", "Duration"]
BAR = "Loading weights: {pct:3d}%|{bar:<10}| {n}/272 [00:00<00:00, 513.06it/s]"


def _owner_of(page) -> str:
    from tabs.guard import OWNER_COOKIE
    from tabs.session import _digest

    token = next(c["value"] for c in page.context.cookies() if c["name"] == OWNER_COOKIE)
    return f"anon:{_digest(token)}"


def _noisy(ctx):
    ctx.log("\x1b[1mPreparing\x1b[0m the model")
    for n in (0, 34, 136, 272):
        ctx.log(BAR.format(pct=round(n / 272 * 100), bar="█" * (n * 10 // 272), n=n))
    ctx.log("\u241b[1mdone\u241b[0m")
    ctx.progress(1.0, "Done")
    return {"ok": True}


def _failing(ctx):
    raise RuntimeError("went wrong on purpose")


@pytest.fixture(scope="module")
def seeded(live_app):
    manager = live_app["manager"]
    release = threading.Event()
    with chromium_page(live_app["url"], height=1000) as page:
        owner = _owner_of(page)
        title = "Fine-tune sentiment-classifier-with-a-long-name (text-classification, all-minilm-l6-v2)"
        ok = manager.submit("train", owner, _noisy, title=title)
        bad = manager.submit("prepare", owner, _failing, title="Prepare a model that fails")
        manager.wait(ok, 30), manager.wait(bad, 30)
        running = manager.submit("prepare", owner, lambda ctx: release.wait(120) and None, title="Still running")
        theirs = manager.submit("prepare", "anon:somebody-else", _noisy, title="Someone else's job")
        manager.wait(theirs, 30)
        yield {"page": page, "manager": manager, "owner": owner, "ok": ok, "bad": bad, "running": running,
               "theirs": theirs}  # fmt: skip
        release.set()
        manager.wait(running, 30)


def _one_line(page, cell) -> bool:
    """Whether a table cell's text is laid out on one line and shown whole: not wrapped, not cut off at the
    cell's edge or the table's."""
    return page.evaluate(
        """(cell) => {
            const range = document.createRange();
            const text = cell.querySelector('.header-content') || cell.querySelector('.cell-wrap') || cell;
            range.selectNodeContents(text);
            const rects = [...range.getClientRects()].filter(r => r.width > 0);
            const tops = rects.map(r => r.top).sort((a, b) => a - b);
            const lines = tops.filter((top, i) => i === 0 || top - tops[i - 1] > 5);  // an element box and its text
            //  line differ by a pixel; a second line is a line-height lower
            const shown = document.querySelector('#jobs-table').getBoundingClientRect();
            const right = Math.max(...rects.map(r => r.right));
            return lines.length === 1 && right <= cell.getBoundingClientRect().right + 1 && right <= shown.right + 1;
        }""",
        cell.element_handle(),
    )


def test_every_column_and_the_log_are_readable(seeded, shots):
    from playwright.sync_api import expect

    page = seeded["page"]
    page.set_viewport_size({"width": 1024, "height": 1000})
    page.get_by_role("tab", name="Jobs", exact=True).click()
    table = page.locator("#jobs-table")
    expect(table).to_contain_text("sentiment-classifier-with-a-long-name", timeout=20_000)
    for name in ("Job", "Status", "Progress", "Started", "Duration"):
        assert _one_line(page, table.locator(f"th[title='{name}']")), f"the {name} header wraps or is cut off"
    for row in range(3):
        for column in (0, 2, 3, 4, 5):
            cell = table.locator(f"[data-testid='cell-{row}-{column}']")
            assert _one_line(page, cell), f"row {row}, column {_COLUMNS[column]} wraps or is cut off"

    table.get_by_role("gridcell").filter(has_text="sentiment-classifier-with-a-long-name").click()
    log = page.locator("#job-log")
    expect(log).to_contain_text("272/272", timeout=20_000)
    text = log.inner_text()
    assert "0/272" not in text and "136/272" not in text, "the bar shows its last state only"
    assert "\u241b" not in text and "[1m" not in text and "Preparing the model" in text and "done" in text
    page.screenshot(path=str(shots / "jobs-readable.png"), full_page=True)


def test_clear_finished_removes_only_your_finished_jobs(seeded, shots):
    from playwright.sync_api import expect

    page, manager = seeded["page"], seeded["manager"]
    workdir = manager.jobs_dir / seeded["ok"]
    assert workdir.is_dir()
    page.get_by_role("button", name="Clear finished").click()
    table = page.locator("#jobs-table")
    expect(table).not_to_contain_text("sentiment-classifier-with-a-long-name", timeout=20_000)
    expect(table).not_to_contain_text("Prepare a model that fails")
    expect(table).to_contain_text("Still running")
    assert [r.id for r in manager.list(seeded["owner"])] == [seeded["running"]]
    assert not workdir.exists(), "a cleared job's files are removed"
    assert manager.store.get(seeded["theirs"]) is not None, "another visitor's job is never cleared"
    page.screenshot(path=str(shots / "jobs-cleared.png"), full_page=True)
