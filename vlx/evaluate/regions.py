"""Region-deletion curve: remove whole regions, in rank order, cumulatively, and track the
target's probability. It asks whether the regions vlx names carry the decision in the order it
names them (a faithful ranking makes the probability fall fastest at the start)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from vlx.evaluate.base import auc, baseline_input, check_target, composite_probs
from vlx.models.classifier import ImageClassifier
from vlx.regions.causal import soft_masks
from vlx.types import ImageInput, MetricResult, Region


def _masks(regions: Sequence[np.ndarray | Region], size_hw: tuple[int, int]) -> np.ndarray:
    out = []
    for r in regions:
        m = np.asarray(r.mask if isinstance(r, Region) else r).astype(bool)
        if m.shape != tuple(size_hw):
            raise ValueError(f"region mask has shape {m.shape} but the image is {tuple(size_hw)}.")
        out.append(m)
    return np.stack(out)


def region_deletion_curve(model: ImageClassifier, image: ImageInput, regions: Sequence[np.ndarray | Region],
                          target_index: int, baseline: str = "blur",
                          batch_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Probability of ``target_index`` after removing regions ``0..k-1`` (union), for
    ``k = 0..K``.

    ``regions`` are boolean ``(H, W)`` masks (or ``Region`` objects) at the image's resolution,
    in rank order. Masks are resized to the model input by area averaging (soft edges), and all
    ``K + 1`` composites are scored in batches.

    Returns:
        ``(area_fractions, probs)``: float64 ``(K + 1,)`` each; the share of image pixels removed
        so far (0 first) and the probability in ``[0, 1]``.
    """
    target_index = check_target(model, target_index)
    if len(regions) == 0:
        raise ValueError("region_deletion_curve needs at least one region mask.")
    masks = _masks(regions, image.size_hw)
    cumulative = np.logical_or.accumulate(masks)                       # along the regions
    stack = np.concatenate([np.zeros((1, *masks.shape[1:]), dtype=bool), cumulative])
    x = model.to_input(image)
    base = baseline_input(model, image, x, baseline)
    m = soft_masks(stack, tuple(x.shape[-2:]), x.device)
    probs = composite_probs(model, x, base, m, target_index, batch_size)
    return stack.mean(axis=(1, 2)), probs                               # bool → float64 shares


def region_deletion(model: ImageClassifier, image: ImageInput, regions: Sequence[np.ndarray | Region],
                    target_index: int, baseline: str = "blur", batch_size: int | None = None) -> MetricResult:
    """Region-deletion score: the mean of the curve over the ``K`` removal steps and the start
    (trapezoid over ``k / K``), ``[0, 1]``; lower is better. ``details``: ``curve``,
    ``area_fractions``, ``first_drop`` (probability lost by removing region 0 alone)."""
    areas, probs = region_deletion_curve(model, image, regions, target_index, baseline, batch_size)
    value = auc(probs)                                                  # steps equally spaced on [0, 1]
    return MetricResult(name="region-deletion", value=value, higher_is_better=False, category="faithfulness",
                        details={"curve": [float(p) for p in probs], "area_fractions": [float(a) for a in areas],
                                 "first_drop": float(probs[0] - probs[1]), "baseline": baseline})
