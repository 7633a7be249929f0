"""Run several registered metrics on one map: ``evaluate(model, image, amap, target_index)``."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from vlx.errors import UsageError
from vlx.models.classifier import ImageClassifier
from vlx.registry import METRICS
from vlx.types import AttributionMap, ImageInput, MetricResult

DEFAULT_METRICS: tuple[str, ...] = ("deletion", "insertion", "road", "sparseness", "complexity")
LOCALISATION_METRICS: tuple[str, ...] = ("pointing-game", "energy-pointing-game")


def default_metrics(has_gt_mask: bool) -> list[str]:
    """The metrics ``evaluate`` runs when none are named: faithfulness and complexity, plus
    localisation when a ground-truth mask is given. The sanity check is left out by default: it
    recomputes the map once per randomised layer."""
    return list(DEFAULT_METRICS) + (list(LOCALISATION_METRICS) if has_gt_mask else [])


def evaluate(model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
             metrics: Sequence[str] | None = None, gt_mask: np.ndarray | None = None,
             options: Mapping[str, Mapping[str, Any]] | None = None) -> list[MetricResult]:
    """Measure ``amap`` with each named metric, in order.

    Args:
        model: the classifier the map explains.
        image: the image the map was computed on (the map is ``(H, W)`` at its resolution).
        amap: the attribution map.
        target_index: the explained class.
        metrics: registry names (``vlx.registry.METRICS.names()``); ``None`` for
            ``default_metrics``.
        gt_mask: boolean ``(H, W)`` object mask, needed by localisation metrics.
        options: per-metric constructor options, e.g. ``{"deletion": {"steps": 100}}``.

    Returns:
        One MetricResult per metric. Raises UsageError for an unknown metric, a localisation
        metric without ``gt_mask``, or options for a metric that is not run.
    """
    names = list(metrics) if metrics is not None else default_metrics(gt_mask is not None)
    opts = dict(options or {})
    stray = sorted(set(opts) - set(names))
    if stray:
        raise UsageError(f"options given for metrics that are not run: {', '.join(stray)}.")
    classes = [METRICS.get(n) for n in names]
    for n, cls in zip(names, classes):
        if cls.needs_gt_mask and gt_mask is None:
            raise UsageError(f"metric {n!r} needs a ground-truth mask; pass gt_mask or drop the metric.")
    return [cls(**dict(opts.get(n, {})))(model, image, amap, target_index, gt_mask=gt_mask)
            for n, cls in zip(names, classes)]
