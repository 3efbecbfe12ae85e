"""The Fine-tune curves drawn in Chromium (issue 14, item 11): equal accuracy and F1 both visible, one point per
step, round axis ticks, the overfitting sentence. Rendered from rows like a run's, so no model trains here; the
full training in test_finetune_browser.py checks them in the tab. Screenshot: finetune-charts.png."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import chromium_page

pytestmark = pytest.mark.e2e


def _rows() -> list[dict]:
    """Three epochs of 10 steps: accuracy equal to F1, eval loss up after epoch 2, the last step logged twice."""
    out = [{"step": s, "epoch": s / 10, "series": "loss", "value": 0.9 - 0.025 * s} for s in range(2, 31, 2)]
    for step, loss, score in [(10, 0.50, 0.81), (20, 0.42, 0.88), (30, 0.47, 0.80), (30, 0.55, 0.86)]:
        out += [{"step": step, "epoch": step / 10, "series": name, "value": value}
                for name, value in (("eval_loss", loss), ("eval_accuracy", score), ("eval_f1", score))]  # fmt: skip
    return out


def test_the_curves_are_readable(shots):
    from playwright.sync_api import expect

    from tabs.finetune.charts import charts_html

    with chromium_page("about:blank", height=700) as page:
        page.set_content(f"<body style='font-family:sans-serif;width:1100px'>{charts_html(_rows())}</body>")
        evaluation = page.locator(".pg-chart").nth(1)
        lines = evaluation.locator("polyline")
        assert lines.count() == 2
        styles = [
            (lines.nth(i).get_attribute("stroke"), lines.nth(i).get_attribute("stroke-dasharray")) for i in (0, 1)
        ]
        assert styles[0] != styles[1], "accuracy and F1 differ in colour and dash"
        for i in (0, 1):
            box = lines.nth(i).bounding_box()
            assert box and box["width"] > 100, "each line is drawn"
        # One point per step: the last step's second evaluation only, so no vertical jump at the end.
        points = lines.nth(0).get_attribute("points").split()
        assert len(points) == 3 and len({p.split(",")[0] for p in points}) == 3
        ticks = page.locator(".pg-tick").all_text_contents()
        assert ticks and not any(re.search(r"\.\d{3,}", t) for t in ticks), ticks
        expect(evaluation).to_contain_text("Accuracy")
        expect(evaluation).to_contain_text("F1")
        expect(page.locator(".pg-overfit")).to_contain_text("The model starts to overfit after epoch 2")
        page.screenshot(path=str(shots / "finetune-charts.png"), full_page=True)
