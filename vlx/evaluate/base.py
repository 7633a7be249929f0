"""The metric contract and the helpers that perturbation metrics share.

A metric is a class registered with ``@METRICS.register("name")``; options go to the constructor
and one call measures one map::

    metric = METRICS.get("deletion")(steps=50, baseline="blur")
    result = metric(model, image, amap, target_index, gt_mask=None)   # -> MetricResult

Perturbation metrics work in the model's input space: the map is resized to the model input
``(h, w)``, pixels are ranked there, and every perturbed image is a composite of the model input
``x`` and a baseline tensor of the same shape, so the whole curve is built as one tensor and
scored in batches.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F

from vlx.evaluate.curves import BASELINES, auc, baseline_image, baseline_tensor, pixel_ranks, step_counts  # noqa: F401
from vlx.models.classifier import ImageClassifier
from vlx.regions.causal import composite_probs  # noqa: F401  (composite_probs: shared with regions)
from vlx.types import AttributionMap, ImageInput, MetricResult

Category = Literal["faithfulness", "localisation", "sanity", "complexity", "text", "fewshot"]
Baseline = Literal["blur", "mean", "zero"]


class Metric:
    """Base of all metrics that score one attribution map of an image classifier.

    Class flags: ``name`` (registry name), ``higher_is_better``, ``category`` and
    ``needs_gt_mask`` (localisation metrics need a ground-truth mask). Subclasses implement
    ``__call__``.
    """

    name: ClassVar[str] = ""
    higher_is_better: ClassVar[bool] = True
    category: ClassVar[Category] = "faithfulness"
    needs_gt_mask: ClassVar[bool] = False

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        """Measure ``amap`` (explaining ``target_index`` on ``image``) and return a MetricResult."""
        raise NotImplementedError

    def result(self, value: float, **details: object) -> MetricResult:
        """Wrap ``value`` with this metric's name, direction and category."""
        return MetricResult(name=self.name, value=float(value), higher_is_better=self.higher_is_better,
                            category=self.category, details=dict(details))


def check_map(amap: AttributionMap, image: ImageInput) -> np.ndarray:
    """Return ``amap.values`` as float64 ``(H, W)``; raise ValueError if it does not match the
    image's size or holds non-finite values."""
    v = np.asarray(amap.values, dtype=np.float64)
    if v.shape != image.size_hw:
        raise ValueError(f"attribution map has shape {v.shape} but the image is {image.size_hw}; "
                         "compute the map on this image (vlx.attribute.attribute).")
    if not np.isfinite(v).all():
        raise ValueError("attribution map holds NaN or infinite values; check the attribution method.")
    return v


def check_mask(gt_mask: np.ndarray | None, size_hw: tuple[int, int], metric: str) -> np.ndarray:
    """Return ``gt_mask`` as boolean ``(H, W)``; raise ValueError when missing or mis-sized."""
    if gt_mask is None:
        raise ValueError(f"metric {metric!r} needs a ground-truth mask (gt_mask, boolean (H, W)).")
    m = np.asarray(gt_mask).astype(bool)
    if m.shape != tuple(size_hw):
        raise ValueError(f"gt_mask has shape {m.shape} but the map is {tuple(size_hw)}; resize the mask.")
    return m


def map_to_input(values: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize a map ``(H, W)`` to the model input size ``(h, w)`` (bilinear with antialiasing,
    like the image itself), float64."""
    if tuple(values.shape) == tuple(size_hw):
        return np.asarray(values, dtype=np.float64)
    t = torch.from_numpy(np.asarray(values, dtype=np.float32))[None, None]
    out = F.interpolate(t, size=tuple(size_hw), mode="bilinear", align_corners=False, antialias=True)
    return out[0, 0].double().numpy()


def baseline_input(model: ImageClassifier, image: ImageInput, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The "removed" content in model input space, shape of ``x`` ``(1, 3, h, w)``.

    ``blur``: the image blurred (Gaussian, sigma = 1/20 of its longer side), preprocessed;
    ``mean``: the per-channel mean of ``x``; ``zero``: zeros in model input space (black for
    models fed ``[0, 1]`` inputs, the normalisation mean colour for ImageNet-normalised ones).
    """
    if kind == "blur":
        return model.to_input(baseline_image(image.pixels, "blur"))
    return baseline_tensor(x, kind)


def check_target(model: ImageClassifier, target_index: int) -> int:
    """Return ``target_index`` as int; raise ValueError when out of the model's range."""
    n = len(model.labels)
    i = int(target_index)
    if n and not 0 <= i < n:
        raise ValueError(f"target index {i} is out of range; the model has classes 0..{n - 1}.")
    return i
