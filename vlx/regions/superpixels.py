"""Regions from superpixels (scikit-image SLIC or Felzenszwalb), the embedded default segmenter: rank superpixels
by attribution mass, keep the smallest set holding ``coverage`` of the positive attribution,
and split it into connected regions."""

from __future__ import annotations

import numpy as np

from vlx.regions.geometry import bbox_xyxy, position_words
from vlx.registry import SEGMENTERS
from vlx.types import AttributionMap, ImageInput, Region

MAX_SIDE = 320


def slic_segments(pixels: np.ndarray, n_segments: int = 64, compactness: float = 10.0) -> np.ndarray:
    """SLIC labels ``(H, W)`` int32, computed on a copy at most ``MAX_SIDE`` px on its longer side
    and resized back (nearest), so cost stays flat in the image size."""
    from skimage.segmentation import slic
    from skimage.transform import resize

    h, w = pixels.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    small = pixels if scale == 1.0 else (resize(pixels, (max(1, round(h * scale)), max(1, round(w * scale))),
                                                 anti_aliasing=True, preserve_range=True)).astype(np.uint8)
    labels = slic(small, n_segments=n_segments, compactness=compactness, start_label=0, channel_axis=-1)
    if scale != 1.0:
        labels = resize(labels, (h, w), order=0, preserve_range=True, anti_aliasing=False)
    return labels.astype(np.int32)


def felzenszwalb_segments(pixels: np.ndarray, n_segments: int = 64) -> np.ndarray:
    """Felzenszwalb labels ``(H, W)`` int32 (graph-based, follows edges; segment sizes vary),
    computed on a copy at most ``MAX_SIDE`` px on its longer side. ``n_segments`` sets the
    minimum segment size (``1 / (4 n_segments)`` of the image) and the scale, so roughly that
    many segments come out."""
    from skimage.segmentation import felzenszwalb
    from skimage.transform import resize

    h, w = pixels.shape[:2]
    scale = min(1.0, MAX_SIDE / max(h, w))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = pixels if scale == 1.0 else \
        resize(pixels, (sh, sw), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    labels = felzenszwalb(small, scale=sh * sw / (4.0 * n_segments), sigma=0.8,
                          min_size=max(4, sh * sw // (4 * n_segments)), channel_axis=-1)
    if scale != 1.0:
        labels = resize(labels, (h, w), order=0, preserve_range=True, anti_aliasing=False)
    return labels.astype(np.int32)


def superpixel_labels(pixels: np.ndarray, algorithm: str = "slic", n_segments: int = 64) -> np.ndarray:
    """Superpixel labels ``(H, W)`` int32 (``0..K-1``) of an RGB uint8 ``(H, W, 3)`` image;
    ``algorithm`` is ``slic`` or ``felzenszwalb``."""
    if algorithm == "slic":
        return slic_segments(pixels, n_segments)
    if algorithm == "felzenszwalb":
        return felzenszwalb_segments(pixels, n_segments)
    raise ValueError(f"unknown superpixel algorithm {algorithm!r}; use slic or felzenszwalb")


@SEGMENTERS.register
class SuperpixelRegions:
    """Superpixel regions.

    Args:
        n_segments: SLIC's target number of superpixels.
        coverage: share of positive attribution the selected superpixels must hold, in ``(0, 1]``.
        max_regions: at most this many connected regions are returned.
        min_area: regions smaller than this share of the image are dropped.
        algorithm: ``slic`` (default) or ``felzenszwalb``.
    """

    name = "superpixels"

    def __init__(self, n_segments: int = 64, coverage: float = 0.5, max_regions: int = 5,
                 min_area: float = 0.005, algorithm: str = "slic") -> None:
        if not 0 < coverage <= 1:
            raise ValueError("coverage must be in (0, 1]")
        if algorithm not in ("slic", "felzenszwalb"):
            raise ValueError(f"unknown superpixel algorithm {algorithm!r}; use slic or felzenszwalb")
        self.algorithm = algorithm
        self.n_segments, self.coverage = n_segments, coverage
        self.max_regions, self.min_area = max_regions, min_area

    def regions(self, image: ImageInput, amap: AttributionMap) -> list[Region]:
        """Regions ranked by attribution mass (``Region.id`` 0 holds the most)."""
        from skimage.measure import label as connected

        values = amap.values
        pos = np.clip(values, 0, None).astype(np.float64)
        total = float(pos.sum())
        if total <= 0:
            return []
        segs = superpixel_labels(image.pixels, self.algorithm, self.n_segments)
        mass = np.bincount(segs.ravel(), weights=pos.ravel())
        chosen, acc = [], 0.0
        for s in np.argsort(-mass, kind="stable"):
            if mass[s] <= 0:
                break
            chosen.append(s)
            acc += mass[s]
            if acc >= self.coverage * total - 1e-9:
                break
        selected = np.isin(segs, chosen)
        comps = connected(selected, connectivity=2)
        n_px = values.size
        out = []
        for c in range(1, int(comps.max()) + 1):
            mask = comps == c
            area = float(mask.sum()) / n_px
            if area < self.min_area:
                continue
            out.append((float(pos[mask].sum()) / total, mask, area))
        out.sort(key=lambda t: -t[0])
        regions = []
        for i, (m_share, mask, area) in enumerate(out[: self.max_regions]):
            regions.append(Region(
                id=i, mask=mask, bbox_xyxy=bbox_xyxy(mask), area_fraction=area,
                attribution_mass=m_share, mean_attribution=float(values[mask].mean()),
                position=position_words(mask, pos), source="superpixel",
            ))
        return regions


@SEGMENTERS.register
class FelzenszwalbRegions(SuperpixelRegions):
    """Superpixel regions with Felzenszwalb's graph segmentation instead of SLIC."""

    name = "felzenszwalb"

    def __init__(self, n_segments: int = 64, coverage: float = 0.5, max_regions: int = 5,
                 min_area: float = 0.005) -> None:
        super().__init__(n_segments, coverage, max_regions, min_area, algorithm="felzenszwalb")
