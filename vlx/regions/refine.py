"""Region-refined maps: the attribution averaged inside each segment of a partition of the image
(superpixels, or SAM's automatic masks), a post-processing step for any method. The refined
map is piecewise constant on the segments, so it follows their edges instead of the method's own
grid; its total mass is unchanged.

It is a presentation option, not a faithfulness improvement: averaging mixes the object's high
values with the background inside segments that straddle its edge, and on EfficientNet-Lite0
deletion was reported worse with it for Grad-CAM, Grad-CAM++ and LayerCAM (issue 16;
``benchmarks/regions.py`` prints deletion and insertion with and without it; docs/defaults.md).

The refined map keeps the method's name and its ``raw`` map; only ``values`` change.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Protocol

import numpy as np

from vlx.regions.superpixels import superpixel_labels
from vlx.types import AttributionMap, ImageInput

RefineKind = Literal["none", "superpixels", "felzenszwalb", "sam"]


def segment_mean(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """float32 ``(H, W)``: each pixel gets the mean of ``values`` over its segment in the int
    ``(H, W)`` ``labels`` (non-negative). Sums over each segment, hence in total, are kept."""
    lab = labels.ravel()
    sums = np.bincount(lab, weights=values.ravel().astype(np.float64))
    counts = np.bincount(lab)
    means = sums / np.maximum(counts, 1)
    return means[lab].reshape(values.shape).astype(np.float32)


def mask_partition(masks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Partition labels ``(H, W)`` int32 from overlapping bool ``(M, H, W)`` masks: each pixel
    belongs to the smallest mask covering it (so parts win over wholes); each connected
    component of pixels that no mask covers becomes a segment of its own."""
    from skimage.measure import label

    out = np.full(shape, -1, dtype=np.int32)
    order = np.argsort(-masks.reshape(len(masks), -1).sum(1), kind="stable") if len(masks) else []
    for k, i in enumerate(order):                       # largest first, smaller ones overwrite
        out[masks[i]] = k
    rest = label(out < 0, connectivity=1)
    out[out < 0] = len(masks) + rest[out < 0] - 1
    return out


def refine_map(amap: AttributionMap, labels: np.ndarray) -> AttributionMap:
    """A copy of ``amap`` whose ``values`` are averaged inside each segment of ``labels``
    (int ``(H, W)`` at the map's resolution)."""
    if labels.shape != amap.values.shape:
        raise ValueError(f"labels {labels.shape} and map {amap.values.shape} differ in shape")
    return dataclasses.replace(amap, values=segment_mean(amap.values, labels))


class MaskSource(Protocol):
    def automatic(self, image: ImageInput) -> tuple[np.ndarray, np.ndarray]: ...


class Refiner:
    """Refines maps by a partition of each image.

    Args:
        kind: ``superpixels`` (SLIC), ``felzenszwalb``, ``sam`` (automatic SAM masks, needs
            ``sam``), or ``none`` (the map is returned unchanged).
        n_segments: superpixel count for the superpixel kinds.
        sam: a ``SamRegions`` (anything with ``automatic(image) -> (masks, iou)``) for ``sam``.
    """

    def __init__(self, kind: RefineKind = "superpixels", n_segments: int = 96, sam: MaskSource | None = None) -> None:
        if kind not in ("none", "superpixels", "felzenszwalb", "sam"):
            raise ValueError(f"unknown refinement {kind!r}; use none, superpixels, felzenszwalb or sam")
        if kind == "sam" and sam is None:
            raise ValueError("refine 'sam' needs a SAM segmenter (e.g. --segmenter hf:<SAM id or folder>)")
        self.kind, self.n_segments, self.sam = kind, n_segments, sam

    def labels(self, image: ImageInput) -> np.ndarray:
        """The partition of ``image`` used for refinement: int32 ``(H, W)``."""
        if self.kind == "sam":
            masks, _ = self.sam.automatic(image)
            return mask_partition(masks, image.size_hw)
        algorithm = "slic" if self.kind == "superpixels" else "felzenszwalb"
        return superpixel_labels(image.pixels, algorithm, self.n_segments)

    def refine(self, image: ImageInput, amap: AttributionMap) -> AttributionMap:
        """The region-refined copy of ``amap`` (or ``amap`` itself for ``none``)."""
        if self.kind == "none":
            return amap
        return refine_map(amap, self.labels(image))
