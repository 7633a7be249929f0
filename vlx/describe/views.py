"""What a describer shows a model of one region: the region's crop, or the whole image with
the region's outline drawn on it."""

from __future__ import annotations

from typing import Literal

import numpy as np

View = Literal["crop", "outline"]
VIEWS: tuple[str, ...] = ("crop", "outline")


def crop_box(pixels: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.1) -> np.ndarray:
    """The pixels of the XYXY ``box`` (exclusive end) grown by ``margin`` of its size on each
    side and clipped to the image; RGB uint8 ``(h, w, 3)`` with ``h, w >= 1``."""
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = box
    mx, my = int((x1 - x0) * margin), int((y1 - y0) * margin)
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    return pixels[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


def outlined(pixels: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (255, 0, 0),
             width: int | None = None) -> np.ndarray:
    """A copy of ``pixels`` (RGB uint8 ``(H, W, 3)``) with the boundary of the boolean ``mask``
    ``(H, W)`` drawn in ``color``, ``width`` px thick (default: 1/150 of the longer side, >= 2)."""
    from scipy import ndimage

    width = width or max(2, round(max(mask.shape) / 150))
    m = mask.astype(bool)
    ring = ndimage.binary_dilation(m, iterations=width) & ~ndimage.binary_erosion(m, iterations=1)
    out = pixels.copy()
    out[ring] = color
    return out


def region_view(pixels: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], view: str,
                margin: float = 0.1) -> np.ndarray:
    """The image a describer model sees for one region: ``crop`` (its box plus ``margin``) or
    ``outline`` (the whole image, region outlined in red). RGB uint8 ``(h, w, 3)``."""
    if view == "crop":
        return crop_box(pixels, box, margin)
    if view == "outline":
        return outlined(pixels, mask)
    raise ValueError(f"unknown region view {view!r}; choose one of {', '.join(VIEWS)}")
