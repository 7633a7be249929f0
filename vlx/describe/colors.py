"""Dominant colour names of a set of pixels, from a small fixed palette in HSV terms."""

from __future__ import annotations

import numpy as np


def color_names(rgb: np.ndarray) -> np.ndarray:
    """Name each RGB uint8 pixel ``(N, 3)``; returns an array of ``N`` names from: black, grey,
    white, red, orange, brown, yellow, green, teal, blue, purple, pink."""
    from skimage.color import rgb2hsv

    hsv = rgb2hsv(rgb.reshape(-1, 1, 3).astype(np.uint8)).reshape(-1, 3)
    h, s, v = hsv[:, 0] * 360.0, hsv[:, 1], hsv[:, 2]
    names = np.empty(len(hsv), dtype=object)
    hue = np.select(
        [h < 15, h < 40, h < 70, h < 165, h < 195, h < 255, h < 290, h < 340],
        ["red", "orange", "yellow", "green", "teal", "blue", "purple", "pink"], default="red")
    names[:] = hue
    brown = (h >= 10) & (h < 50) & (v < 0.75) & (s > 0.25)
    names[brown] = "brown"
    grey = s < 0.18
    names[grey & (v >= 0.85)] = "white"
    names[grey & (v < 0.85)] = "grey"
    names[v < 0.18] = "black"
    return names


def dominant_colors(rgb: np.ndarray, k: int = 2, min_share: float = 0.15) -> tuple[tuple[str, float], ...]:
    """The ``k`` most frequent colour names of pixels ``(N, 3)`` holding at least ``min_share``,
    with their shares in ``[0, 1]``, most frequent first."""
    if rgb.size == 0:
        return ()
    names, counts = np.unique(color_names(rgb), return_counts=True)
    order = np.argsort(-counts, kind="stable")
    share = counts / counts.sum()
    return tuple((str(names[i]), float(share[i])) for i in order[:k] if share[i] >= min_share)
