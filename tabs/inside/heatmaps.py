"""Attention drawn as pictures for the "Inside a model" tab: every head of every layer at once (a grid of small
heatmaps a student clicks to pick one), and one head large with its tokens on both axes.

Pictures rather than thousands of HTML cells: 30 layers x 9 heads x 64 x 64 tokens is over a million numbers, which
a browser lays out slowly as elements but shows at once as one PNG. Drawn with Pillow from a float array
[layer, head, query, key]; white is no attention, dark orange all of it (a square-root scale, so the small
weights most heads spread stay visible).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

CELL = 40  # px per head in the overview grid
GAP = 4
MARGIN = 34  # for the layer and head numbers
_LOW, _HIGH = np.array([255, 255, 255], dtype=np.float32), np.array([194, 65, 12], dtype=np.float32)


@cache
def _font(size: int) -> Any:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # a Pillow without FreeType: its small bitmap font
        return ImageFont.load_default()


def _colour(weights: np.ndarray) -> np.ndarray:
    """[..., q, k] weights in [0, 1] -> RGB uint8 [..., q, k, 3]."""
    level = np.sqrt(np.clip(weights, 0.0, 1.0))[..., None]
    return (_LOW + (_HIGH - _LOW) * level).astype(np.uint8)


def _fit(matrix: np.ndarray, size: int) -> np.ndarray:
    """An n x n matrix as size x size pixels: averaged down (box filter), or repeated up (nearest)."""
    n = matrix.shape[-1]
    resample = Image.Resampling.BOX if n > size else Image.Resampling.NEAREST
    return np.asarray(Image.fromarray(matrix.astype(np.float32), mode="F").resize((size, size), resample))


def overview(attentions: np.ndarray, selected: tuple[int, int] | None = None) -> Image.Image:
    """Every head as a small heatmap: layers across (the text flows left to right through them), heads down; the
    selected one framed."""
    layers, heads = attentions.shape[:2]
    width = MARGIN + layers * (CELL + GAP)
    height = MARGIN + heads * (CELL + GAP)
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font(12)
    for layer in range(layers):
        draw.text((MARGIN + layer * (CELL + GAP) + CELL // 2, MARGIN // 2), str(layer), fill="#57606a", font=font,
                  anchor="mm")  # fmt: skip
    for head in range(heads):
        top = MARGIN + head * (CELL + GAP)
        draw.text((MARGIN // 2, top + CELL // 2), str(head), fill="#57606a", font=font, anchor="mm")
        for layer in range(layers):
            left = MARGIN + layer * (CELL + GAP)
            image.paste(Image.fromarray(_colour(_fit(attentions[layer, head], CELL))), (left, top))
            draw.rectangle((left - 1, top - 1, left + CELL, top + CELL), outline="#d0d7de")
    if selected is not None:
        layer, head = selected
        left, top = MARGIN + layer * (CELL + GAP), MARGIN + head * (CELL + GAP)
        draw.rectangle((left - 3, top - 3, left + CELL + 2, top + CELL + 2), outline="#2563eb", width=3)
    return image


def cell_at(x: float, y: float, layers: int, heads: int) -> tuple[int, int] | None:
    """The (layer, head) under a click on the overview, or None between cells."""
    col, row = (x - MARGIN) / (CELL + GAP), (y - MARGIN) / (CELL + GAP)
    if col < 0 or row < 0 or int(col) >= layers or int(row) >= heads:
        return None
    return int(col), int(row)


def head_map(weights: np.ndarray, pieces: list[str]) -> Image.Image:
    """One head: a row per token that looks (query), a column per token looked at (key), labelled."""
    n = weights.shape[0]
    cell = max(6, min(28, 560 // max(1, n)))
    label = 96 if n <= 96 else 0  # past ~96 tokens the labels no longer fit: the picture alone
    font = _font(max(8, min(12, cell - 2)))
    size = n * cell
    image = Image.new("RGB", (label + size + 8, label + size + 8), "white")
    grid = _colour(weights).repeat(cell, axis=0).repeat(cell, axis=1)
    image.paste(Image.fromarray(grid), (label, label))
    if label:
        draw = ImageDraw.Draw(image)
        for i, piece in enumerate(pieces[:n]):
            text = (piece.replace("\n", "⏎") or "␣")[:12]
            middle = label + i * cell + cell // 2
            draw.text((label - 4, middle), text, fill="#1f2328", font=font, anchor="rm")
            column = Image.new("RGBA", (label, cell), (255, 255, 255, 0))
            ImageDraw.Draw(column).text((4, cell // 2), text, fill="#1f2328", font=font, anchor="lm")
            rotated = column.rotate(90, expand=True)
            image.paste(rotated, (label + i * cell, 0), rotated)
    return image
