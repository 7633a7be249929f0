"""Pictures for reports: heatmap overlays, region outlines, PNG encoding (no matplotlib)."""

from __future__ import annotations

import base64
import io
from typing import Sequence

import numpy as np
from PIL import Image

# Anchor colours of a perceptually ordered dark-blue → red → yellow map (like "turbo"/"inferno").
_ANCHORS = np.array([[48, 18, 59], [70, 107, 227], [40, 188, 235], [50, 241, 153], [164, 252, 60],
                     [237, 208, 58], [251, 128, 34], [210, 48, 5], [122, 4, 3]], dtype=np.float32)
REGION_COLORS = [(255, 255, 255), (0, 229, 255), (255, 64, 129), (118, 255, 3), (255, 234, 0)]


def colormap(values01: np.ndarray) -> np.ndarray:
    """Map values in ``[0, 1]`` (any shape) to RGB uint8 (shape + ``(3,)``)."""
    v = np.clip(np.nan_to_num(values01), 0, 1) * (len(_ANCHORS) - 1)
    lo = np.floor(v).astype(int)
    hi = np.minimum(lo + 1, len(_ANCHORS) - 1)
    f = (v - lo)[..., None]
    return (_ANCHORS[lo] * (1 - f) + _ANCHORS[hi] * f).round().astype(np.uint8)


def overlay(pixels: np.ndarray, values01: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Blend a ``[0, 1]`` map ``(H, W)`` over an RGB uint8 image ``(H, W, 3)``; stronger where the
    map is higher so low-attribution areas keep the photo visible."""
    heat = colormap(values01).astype(np.float32)
    a = (alpha * (0.35 + 0.65 * np.clip(values01, 0, 1)))[..., None]
    return (pixels.astype(np.float32) * (1 - a) + heat * a).round().astype(np.uint8)


def outline_regions(pixels: np.ndarray, masks: Sequence[np.ndarray], width: int = 3,
                    colors: Sequence[tuple[int, int, int]] | None = None) -> np.ndarray:
    """Draw each mask's outline in its own colour (region 0 white, then cyan, pink, ...; or
    ``colors``) and dim the area outside all masks."""
    from skimage.morphology import dilation, disk
    from skimage.segmentation import find_boundaries

    out = pixels.astype(np.float32)
    if masks:
        inside = np.any(np.stack(masks), axis=0)
        out[~inside] *= 0.45
    fp = disk(max(1, width // 2))
    for i, m in enumerate(masks):
        edge = dilation(find_boundaries(m, mode="inner"), fp)
        out[edge] = colors[i] if colors is not None else REGION_COLORS[i % len(REGION_COLORS)]
    return out.round().astype(np.uint8)


def png_bytes(pixels: np.ndarray, max_side: int | None = 900) -> bytes:
    """Encode RGB uint8 ``(H, W, 3)`` as PNG, downscaled to ``max_side`` on the longer side.
    zlib level 3: on a 451×300 photo 19 ms and 225 KiB, against 114 ms and 213 KiB with
    ``optimize=True`` (a report holds five such images)."""
    im = Image.fromarray(pixels)
    if max_side and max(im.size) > max_side:
        im.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=3)
    return buf.getvalue()


def data_uri(pixels: np.ndarray, max_side: int | None = 900) -> str:
    """A ``data:image/png;base64,...`` URI for embedding in self-contained HTML."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels, max_side)).decode("ascii")


def jpeg_bytes(pixels: np.ndarray, max_side: int = 160, quality: int = 85) -> bytes:
    """Encode RGB uint8 ``(H, W, 3)`` as a small JPEG thumbnail (``max_side`` on the longer side)."""
    im = Image.fromarray(pixels)
    im.thumbnail((max_side, max_side), Image.LANCZOS)
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()
