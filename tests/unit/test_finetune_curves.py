"""The Fine-tune curves (issue 14, item 11): one point per step, the overfitting sentence, charts where accuracy and
F1 stay visible when equal, round axis ticks, a single step shown as values, and progress that never goes back."""

from __future__ import annotations

import itertools
import re

import pytest

ALICE = "anon:alice"


def rows(series: str, points: list[tuple[int, float]], per_epoch: int = 10) -> list[dict]:
    return [{"step": s, "epoch": s / per_epoch, "series": series, "value": v} for s, v in points]


def test_two_evaluations_at_one_step_keep_the_last(manager):
    from services.training.jobs import curves

    def work(ctx):
        ctx.metrics({"loss": 0.7, "epoch": 0.5}, step=5)
        ctx.metrics({"eval_loss": 0.6, "eval_f1": 0.80, "epoch": 1.0}, step=10)
        ctx.metrics({"eval_loss": 0.5, "eval_f1": 0.85, "epoch": 1.0}, step=10)  # the best model evaluated again

    job_id = manager.submit("train", ALICE, work, title="Curves")
    manager.wait(job_id, timeout=30)
    got = curves(manager, job_id, ALICE)
    assert [(r["series"], r["step"], r["value"]) for r in got] == [
        ("loss", 5, 0.7), ("eval_f1", 10, 0.85), ("eval_loss", 10, 0.5)]  # fmt: skip


def test_overfitting_is_named_with_its_epoch():
    from services.training.curves import overfit_epoch, overfit_note

    evals = rows("eval_loss", [(10, 0.50), (20, 0.42), (30, 0.47), (40, 0.55)])
    train = rows("loss", [(5, 0.9), (15, 0.5), (25, 0.3), (35, 0.2)])
    assert overfit_epoch(evals + train) == 2.0
    assert overfit_note(evals + train).startswith("The model starts to overfit after epoch 2:")


@pytest.mark.parametrize(
    ("evals", "train"),
    [
        ([(10, 0.50), (20, 0.42), (30, 0.40)], [(5, 0.9), (25, 0.3)]),  # eval loss still falling
        ([(10, 0.50), (20, 0.42), (30, 0.425)], [(5, 0.9), (25, 0.3)]),  # a rise within noise
        ([(10, 0.50), (20, 0.42), (30, 0.55)], [(5, 0.3), (25, 0.6)]),  # both rise: not overfitting
        ([(10, 0.50)], [(5, 0.9)]),  # one evaluation
    ],
)
def test_no_overfitting_sentence_without_the_pattern(evals, train):
    from services.training.curves import overfit_note

    assert overfit_note(rows("eval_loss", evals) + rows("loss", train)) is None


def test_equal_accuracy_and_f1_are_both_drawn_and_told_apart():
    from tabs.finetune.charts import chart_html

    points = [(10, 0.81), (20, 0.88), (30, 0.90)]
    svg = chart_html("Evaluation", rows("eval_accuracy", points) + rows("eval_f1", points))
    lines = re.findall(r"<polyline points='([^']+)'[^>]*stroke='([^']+)'[^>]*stroke-dasharray='([^']*)'", svg)
    assert len(lines) == 2 and lines[0][0] == lines[1][0], "same values, same path"
    assert lines[0][1] != lines[1][1] and lines[0][2] != lines[1][2], "different colour and dash"
    assert "<circle" in svg and "<rect" in svg, "different markers"
    assert "Accuracy" in svg and "F1" in svg, "a legend"


def test_axis_ticks_are_round_numbers():
    from tabs.finetune.charts import chart_html, nice_ticks, tick_text

    ticks = nice_ticks(0.31, 0.88)
    gaps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
    assert ticks[0] <= 0.31 and ticks[-1] >= 0.88 and len(gaps) == 1 and 3 <= len(ticks) <= 8
    assert f"{gaps.pop():.0e}"[0] in "125", "1, 2 or 5 times a power of ten apart"
    assert [tick_text(t, [0, 0.25]) for t in (0, 0.25)] == ["0.00", "0.25"]
    assert nice_ticks(5, 5, whole=True)[:2] == [5, 6]
    ticks = re.findall(r"class='pg-tick'>([^<]+)<", chart_html("Loss", rows("loss", [(1, 0.71), (2, 0.69), (3, 0.4)])))
    assert ticks and not any(re.search(r"\.\d{4,}", t) for t in ticks), ticks


def test_one_step_is_shown_as_values_not_a_chart():
    from tabs.finetune.charts import chart_html

    card = chart_html("Evaluation", rows("eval_accuracy", [(5, 0.9167)]) + rows("eval_f1", [(5, 0.9)]))
    assert "<svg" not in card and "5.000000" not in card
    assert "Accuracy <b>0.9167</b>" in card and "F1 <b>0.9</b>" in card and "at step 5" in card


def test_the_charts_carry_the_overfitting_sentence():
    from tabs.finetune.charts import charts_html

    evals = rows("eval_loss", [(10, 0.50), (20, 0.42), (30, 0.55)]) + rows(
        "eval_f1", [(10, 0.7), (20, 0.8), (30, 0.8)]
    )
    html = charts_html(evals + rows("loss", [(5, 0.9), (15, 0.5), (25, 0.3)]))
    assert "The model starts to overfit after epoch 2" in html and html.count("<svg") == 2
    assert charts_html([]) == ""


def test_progress_never_goes_back_and_a_cancelled_job_keeps_it(manager):
    def work(ctx):
        ctx.progress(0.6, "far")
        ctx.progress(0.2, "a late, smaller report")
        while not ctx.cancelled:
            ctx.check_cancelled()

    job_id = manager.submit("train", ALICE, work, title="Progress")
    from tests.unit.test_jobs import wait_for

    wait_for(lambda: manager.get(job_id, ALICE).message == "a late, smaller report")
    assert manager.get(job_id, ALICE).progress == 0.6
    manager.cancel(job_id, ALICE)
    record = manager.wait(job_id, timeout=30)
    assert record.status == "cancelled" and record.progress == 0.6


def test_a_cancelled_training_reports_progress_on_the_same_scale(monkeypatch):
    from types import SimpleNamespace

    from services.training import run as training_run

    reported: list[float] = []
    events = SimpleNamespace(progress=lambda fraction, message="": reported.append(fraction))
    callback = training_run._callback(events, causal=False)
    state = SimpleNamespace(global_step=20, max_steps=100, epoch=0.2)
    control = SimpleNamespace(should_save=False, should_training_stop=False)
    monkeypatch.setattr(training_run, "cancel_requested", lambda: False)
    callback.on_step_end(None, state, control)
    monkeypatch.setattr(training_run, "cancel_requested", lambda: True)
    callback.on_step_end(None, state, control)
    assert len(reported) == 2 and reported[1] >= reported[0], reported


def test_a_training_logs_each_evaluation_once(tmp_path, tiny_models, settings):
    """The final evaluation of the best model is not a point of the curves (it would sit on the last step)."""
    import json

    from services.training.train import train
    from tests.unit.test_training import config, write_csv

    texts = [("loved it", "positive"), ("hated it", "negative"), ("works well", "positive"), ("broken", "negative")]
    source = write_csv(tmp_path / "reviews.csv", ["text", "label"], [list(r) for r in texts * 8])
    cfg = config(tmp_path, "text-classification", tiny_models["bert-encoder"], source, label="label",
                 training={"num_train_epochs": 2})  # fmt: skip
    train(cfg)
    events = [json.loads(line) for line in (tmp_path / "out" / "events.jsonl").read_text().splitlines()]
    steps = [e["step"] for e in events if e["type"] == "metrics" and "eval_loss" in e.get("values", {})]
    assert len(steps) == 2 and len(set(steps)) == 2, steps
