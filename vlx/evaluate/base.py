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

from vlx.models.classifier import ImageClassifier
from vlx.regions.causal import blurred, composite_probs  # noqa: F401  (composite_probs: shared with regions)
from vlx.types import AttributionMap, ImageInput, MetricResult

Category = Literal["faithfulness", "localisation", "sanity", "complexity", "text", "fewshot"]
Baseline = Literal["blur", "mean", "zero"]
BASELINES: tuple[str, ...] = ("blur", "mean", "zero")


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


def pixel_ranks(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rank of every pixel by attribution, most important first: ``ranks[i, j] == 0`` for the
    highest value. Ties are broken by a seeded random permutation (not raster order), so a flat
    map behaves like a random order. Returns int64 ``(h, w)``."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    tie = np.random.default_rng(seed).permutation(flat.size)
    order = np.lexsort((tie, -flat))
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(values.shape)


def baseline_input(model: ImageClassifier, image: ImageInput, x: torch.Tensor, kind: str) -> torch.Tensor:
    """The "removed" content in model input space, shape of ``x`` ``(1, 3, h, w)``.

    ``blur``: the image blurred (Gaussian, sigma = 1/20 of its longer side), preprocessed;
    ``mean``: the per-channel mean of ``x``; ``zero``: zeros in model input space (black for
    models fed ``[0, 1]`` inputs, the normalisation mean colour for ImageNet-normalised ones).
    """
    if kind == "blur":
        return model.to_input(blurred(image.pixels))
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if kind == "zero":
        return torch.zeros_like(x)
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}.")


def step_counts(n_pixels: int, steps: int) -> np.ndarray:
    """Pixels perturbed after each of ``steps`` equal steps: ``steps + 1`` ints from 0 to ``n``."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return np.round(np.linspace(0, n_pixels, steps + 1)).astype(np.int64)


def auc(curve: np.ndarray, xs: np.ndarray) -> float:
    """Trapezoid area under ``curve`` over ``xs`` (for ``xs`` spanning ``[0, 1]`` and a
    probability curve, a value in ``[0, 1]``)."""
    c = np.asarray(curve, dtype=np.float64)
    x = np.asarray(xs, dtype=np.float64)
    return float(np.sum((c[1:] + c[:-1]) * np.diff(x)) / 2.0)


def check_target(model: ImageClassifier, target_index: int) -> int:
    """Return ``target_index`` as int; raise ValueError when out of the model's range."""
    n = len(model.labels)
    i = int(target_index)
    if n and not 0 <= i < n:
        raise ValueError(f"target index {i} is out of range; the model has classes 0..{n - 1}.")
    return i
