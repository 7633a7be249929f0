"""What a describer shows a model of one region: the region itself (its box crop with everything
outside the region's mask dimmed), the plain box crop, or the whole image with the region's
outline drawn on it."""

from __future__ import annotations

from typing import Literal

import numpy as np

View = Literal["masked", "crop", "outline"]
VIEWS: tuple[str, ...] = ("masked", "crop", "outline")
DIM = 0.2


def box_with_margin(shape_hw: tuple[int, int], box: tuple[int, int, int, int],
                    margin: float = 0.1) -> tuple[int, int, int, int]:
    """The XYXY ``box`` (exclusive end) grown by ``margin`` of its size on each side, clipped to
    an image of ``shape_hw``; at least 1 px wide and high."""
    h, w = shape_hw
    x0, y0, x1, y1 = box
    mx, my = int((x1 - x0) * margin), int((y1 - y0) * margin)
    x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
    return x0, y0, max(x1, x0 + 1), max(y1, y0 + 1)


def crop_box(pixels: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.1) -> np.ndarray:
    """The pixels of the XYXY ``box`` (exclusive end) grown by ``margin`` of its size on each
    side and clipped to the image; RGB uint8 ``(h, w, 3)`` with ``h, w >= 1``."""
    x0, y0, x1, y1 = box_with_margin(pixels.shape[:2], box, margin)
    return pixels[y0:y1, x0:x1]


def masked_crop(pixels: np.ndarray, mask: np.ndarray, box: tuple[int, int, int, int], margin: float = 0.1,
                dim: float = DIM) -> np.ndarray:
    """The region itself: ``crop_box`` of ``pixels`` (RGB uint8 ``(H, W, 3)``) with every pixel
    outside the boolean ``mask`` ``(H, W)`` dimmed to ``dim`` of its value (``round(v * dim)``;
    ``dim = 0`` removes it to black). Pixels inside the mask are unchanged. RGB uint8."""
    if not 0.0 <= dim <= 1.0:
        raise ValueError(f"dim must lie in [0, 1], got {dim}")
    m = np.asarray(mask, dtype=bool)
    if m.shape != pixels.shape[:2]:
        raise ValueError(f"mask has shape {m.shape} but the image is {pixels.shape[:2]}")
    x0, y0, x1, y1 = box_with_margin(pixels.shape[:2], box, margin)
    crop = pixels[y0:y1, x0:x1].copy()
    outside = ~m[y0:y1, x0:x1]
    crop[outside] = np.round(crop[outside].astype(np.float64) * dim).astype(np.uint8)
    return crop


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
    """The image a describer model sees for one region: ``masked`` (its box plus ``margin``,
    outside the mask dimmed, see ``masked_crop``), ``crop`` (its box plus ``margin``, background
    included) or ``outline`` (the whole image, region outlined in red). RGB uint8 ``(h, w, 3)``."""
    if view == "masked":
        return masked_crop(pixels, mask, box, margin)
    if view == "crop":
        return crop_box(pixels, box, margin)
    if view == "outline":
        return outlined(pixels, mask)
    raise ValueError(f"unknown region view {view!r}; choose one of {', '.join(VIEWS)}")
