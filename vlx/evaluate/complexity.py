"""Complexity of a map: sparseness (Gini index, Chalasani et al. 2020) and complexity (entropy,
Bhatt et al. 2020). Neither needs the model; both read ``|map|`` at image resolution."""

from __future__ import annotations

import numpy as np

from vlx.evaluate.base import Metric, check_map
from vlx.models.classifier import ImageClassifier
from vlx.registry import METRICS
from vlx.types import AttributionMap, ImageInput, MetricResult


def gini(values: np.ndarray) -> float:
    """Gini index of ``|values|`` in ``[0, 1]``: 0 for a flat (or all-zero) map, towards 1 when
    one pixel holds everything."""
    a = np.sort(np.abs(np.asarray(values, dtype=np.float64)).ravel())
    n, total = a.size, a.sum()
    if total <= 0:                          # an empty map too
        return 0.0
    i = np.arange(1, n + 1)
    return float(np.sum((2 * i - n - 1) * a) / (n * total))


def entropy(values: np.ndarray) -> float:
    """Shannon entropy (nats) of ``|values|`` normalised to sum 1; ``log(n)`` for an all-zero map
    (treated as uniform: it says nothing)."""
    a = np.abs(np.asarray(values, dtype=np.float64)).ravel()
    total = a.sum()
    if total <= 0:
        return float(np.log(a.size))
    p = a[a > 0] / total
    return float(-(p * np.log(p)).sum())


@METRICS.register
class Sparseness(Metric):
    """Gini index of ``|map|``, ``[0, 1]``; higher is better (fewer pixels carry the mass)."""

    name = "sparseness"
    higher_is_better = True
    category = "complexity"

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        return self.result(gini(check_map(amap, image)))


@METRICS.register
class Complexity(Metric):
    """Entropy of ``|map|`` normalised to sum 1, divided by ``log(H*W)`` so the value lies in
    ``[0, 1]`` for any image size (1 = uniform); lower is better. ``details['entropy_nats']``
    holds the raw entropy."""

    name = "complexity"
    higher_is_better = False
    category = "complexity"

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        v = check_map(amap, image)
        h = entropy(v)
        return self.result(h / np.log(v.size) if v.size > 1 else 0.0, entropy_nats=h)
