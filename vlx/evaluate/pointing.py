"""Localisation: pointing game (Zhang et al. 2016) and energy pointing game (Wang et al. 2020,
Score-CAM). Both compare the map at image resolution with a ground-truth mask of the object."""

from __future__ import annotations

import numpy as np

from vlx.evaluate.base import Metric, check_map, check_mask
from vlx.models.classifier import ImageClassifier
from vlx.registry import METRICS
from vlx.types import AttributionMap, ImageInput, MetricResult


def box_mask(box_xyxy: tuple[int, int, int, int], size_hw: tuple[int, int]) -> np.ndarray:
    """A boolean ``(H, W)`` mask of an XYXY box (exclusive end), clipped to the image."""
    h, w = size_hw
    x0, y0, x1, y1 = (int(v) for v in box_xyxy)
    m = np.zeros((h, w), dtype=bool)
    m[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)] = True
    return m


def dilate(mask: np.ndarray, tolerance_px: float) -> np.ndarray:
    """Pixels within ``tolerance_px`` (Euclidean) of ``mask``; boolean ``(H, W)``."""
    from scipy.ndimage import distance_transform_edt

    if tolerance_px <= 0 or not mask.any():
        return mask.copy()
    return distance_transform_edt(~mask) <= tolerance_px


@METRICS.register
class PointingGame(Metric):
    """1.0 if the map's maximum lies inside the ground-truth mask grown by ``tolerance_px``
    (15 px by default, as in the paper), else 0.0; higher is better.

    The map's maximum is the first maximum in raster order; ``details`` records its
    ``(y, x)`` position and how many pixels share the maximum value (a flat map points
    nowhere in particular).
    """

    name = "pointing-game"
    higher_is_better = True
    category = "localisation"
    needs_gt_mask = True

    def __init__(self, tolerance_px: float = 15.0) -> None:
        self.tolerance_px = tolerance_px

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        v = check_map(amap, image)
        mask = check_mask(gt_mask, v.shape, self.name)
        y, x = np.unravel_index(int(np.argmax(v)), v.shape)
        hit = bool(dilate(mask, self.tolerance_px)[y, x])
        return self.result(1.0 if hit else 0.0, point_yx=[int(y), int(x)], n_maxima=int((v == v.max()).sum()),
                           tolerance_px=self.tolerance_px)


@METRICS.register
class EnergyPointingGame(Metric):
    """Share of the map's positive attribution that lies inside the ground-truth mask,
    ``[0, 1]``; higher is better. A map with no positive attribution scores 0.0
    (``details['total_positive'] == 0``)."""

    name = "energy-pointing-game"
    higher_is_better = True
    category = "localisation"
    needs_gt_mask = True

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        v = check_map(amap, image)
        mask = check_mask(gt_mask, v.shape, self.name)
        pos = np.clip(v, 0, None)
        total = float(pos.sum())
        value = float(pos[mask].sum()) / total if total > 0 else 0.0
        return self.result(value, total_positive=total, mask_area_fraction=float(mask.mean()))
