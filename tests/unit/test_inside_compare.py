"""Inside a model's "two trainings side by side" (tabs/inside/build_panel.py): the visitor's causal-LM trainings are
listed (nobody else's), and both runs' losses are drawn on the same axes, each line named by its starting model."""

from __future__ import annotations

from tabs.inside.build_panel import compare_html, trainings


def _training(manager, owner, model, losses):
    def work(ctx):
        for step, (loss, eval_loss) in enumerate(losses, start=1):
            ctx.metrics({"loss": loss}, step=step * 10)
            ctx.metrics({"eval_loss": eval_loss}, step=step * 10)
        return {}

    config = {"task": "causal-lm", "model": model, "output_dir": f"trained/{model}-stories"}
    job_id = manager.submit("train", owner, work, title=f"Fine-tune {model}", config=config)
    manager.wait(job_id, timeout=30)
    return job_id


def test_two_runs_are_listed_and_drawn_on_the_same_axes(manager):
    scratch = _training(manager, "cli:student", "trained:tiny-smollm", [(9.0, 8.5), (7.5, 7.4), (6.9, 7.0)])
    tuned = _training(manager, "cli:student", "smollm2-135m-instruct", [(3.1, 3.0), (2.8, 2.9), (2.6, 2.8)])
    _training(manager, "cli:someone-else", "smollm2-135m-instruct", [(3.0, 3.0), (2.0, 2.0)])
    listed = trainings(manager, "cli:student")
    assert {job_id for _, job_id in listed} == {scratch, tuned}
    assert all("succeeded" in label for label, _ in listed)
    shown = compare_html(manager, [scratch, tuned], "cli:student")
    assert shown.count("<svg") == 2  # evaluation loss and training loss
    assert "data-series='tiny-smollm'" in shown and "data-series='smollm2-135m-instruct'" in shown
    assert "No loss logged" in compare_html(manager, [], "cli:student")
