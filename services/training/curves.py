"""What the curves of a training say, as plain functions of its rows ``{step, epoch, series, value}``: one point per
step and series, and the step where the model starts to overfit (evaluation loss rising while training loss falls).
"""

from __future__ import annotations

# A rise smaller than this share of the lowest evaluation loss is noise, not overfitting.
RISE = 0.02


def one_per_step(rows: list[dict]) -> list[dict]:
    """One row per (series, step), the last one logged (the final evaluation of the best model re-logs the last
    step), in step order; a chart of these has no vertical jumps."""
    last: dict[tuple[str, int], dict] = {}
    for row in rows:
        last[(row["series"], row["step"])] = row
    return sorted(last.values(), key=lambda r: (r["step"], r["series"]))


def overfit_epoch(rows: list[dict]) -> float | None:
    """The epoch after which the model overfits: the lowest evaluation loss, when a later evaluation is clearly
    higher while the training loss kept falling. None when the curves do not show that (yet)."""
    rows = one_per_step(rows)
    evals = [r for r in rows if r["series"] == "eval_loss"]
    train = [r for r in rows if r["series"] == "loss"]
    if len(evals) < 2:
        return None
    best = min(evals, key=lambda r: r["value"])
    later = [r for r in evals if r["step"] > best["step"]]
    if not later or later[-1]["value"] <= best["value"] * (1 + RISE):
        return None
    before = [r["value"] for r in train if r["step"] <= best["step"]]
    after = [r["value"] for r in train if r["step"] > best["step"]]
    if not before or not after or after[-1] >= before[-1]:
        return None
    return float(best.get("epoch") or 0)


def overfit_note(rows: list[dict]) -> str | None:
    """The sentence the Fine-tune tab shows when the model starts to overfit, else None."""
    epoch = overfit_epoch(rows)
    if epoch is None:
        return None
    shown = f"{epoch:.2f}".rstrip("0").rstrip(".")
    return (
        f"The model starts to overfit after epoch {shown}: the evaluation loss rises while the training loss still "
        "falls. The checkpoint with the best evaluation score is the one kept; fewer epochs would end the run there."
    )
