"""Mask geometry: boxes, areas and positions in words."""

from __future__ import annotations

import numpy as np

ROWS = ("top", "centre", "bottom")
COLS = ("left", "centre", "right")


def bbox_xyxy(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight box of a boolean ``(H, W)`` mask as ``(x0, y0, x1, y1)``, end exclusive."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        return (0, 0, 0, 0)
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1


def position_words(mask: np.ndarray, weights: np.ndarray | None = None) -> str:
    """Where a mask lies on a 3×3 grid, from its (optionally weighted) centroid: "top-left",
    "top-centre", "centre-left", "centre", ..., "bottom-right"."""
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return "centre"
    wt = np.ones(ys.size) if weights is None else np.clip(weights[ys, xs], 0, None) + 1e-12
    cy = float(np.average(ys, weights=wt)) / h
    cx = float(np.average(xs, weights=wt)) / w
    row = ROWS[min(2, int(cy * 3))]
    col = COLS[min(2, int(cx * 3))]
    return "centre" if row == col == "centre" else f"{row}-{col}"
