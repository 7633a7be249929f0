"""Region scores: geometry and attribution share of a mask, and causal checks (target probability
when a region is removed, when only it is kept, and Shapley values with regions as players),
all model calls batched.

"Removed" means replaced by a strongly blurred copy of the image (``causal.blurred``); masks
are resized to the model input with area interpolation, so borders blend softly.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from typing import Sequence

import numpy as np
import torch

from vlx.models.classifier import ImageClassifier
from vlx.regions.causal import blurred, composite_probs, soft_masks
from vlx.regions.geometry import bbox_xyxy, position_words
from vlx.types import ImageInput, Region

EXACT_SHAPLEY_MAX = 8


def region_from_mask(id: int, mask: np.ndarray, values: np.ndarray, source: str) -> Region:
    """A ``Region`` for a boolean ``(H, W)`` mask over the ``(H, W)`` map ``values``:
    ``attribution_mass`` is the mask's share of the map's positive part, in ``[0, 1]``."""
    pos = np.clip(values, 0, None)
    total = float(pos.sum())
    mass = float(pos[mask].sum()) / total if total > 0 else 0.0
    return Region(id=id, mask=mask, bbox_xyxy=bbox_xyxy(mask), area_fraction=float(mask.mean()),
                  attribution_mass=mass, mean_attribution=float(values[mask].mean()) if mask.any() else 0.0,
                  position=position_words(mask, pos), source=source)


def causal_scores(model: ImageClassifier, image: ImageInput, masks: Sequence[np.ndarray], target_index: int,
                  batch_size: int | None = None) -> tuple[list[float], list[float]]:
    """Target probability, in ``[0, 1]``, when each mask is removed and when only it is kept
    (everything else removed): one batched pass over ``2 * len(masks)`` composites.

    Args:
        masks: boolean ``(H, W)`` at the image's resolution.
    Returns:
        ``(after_removal, when_kept)``, one float per mask each.
    """
    if len(masks) == 0:
        return [], []
    x = model.to_input(image)
    xb = model.to_input(blurred(image.pixels))
    m = soft_masks(masks, tuple(x.shape[-2:]), x.device)
    p = composite_probs(model, x, xb, torch.cat([m, 1 - m]), target_index, batch_size)
    n = len(masks)
    return [float(v) for v in p[:n]], [float(v) for v in p[n:]]


def shapley_values(model: ImageClassifier, image: ImageInput, masks: Sequence[np.ndarray], target_index: int,
                   n_permutations: int = 32, seed: int = 0, batch_size: int | None = None,
                   x: torch.Tensor | None = None, baseline: torch.Tensor | None = None) -> np.ndarray:
    """Shapley values of regions as players, in probability units (float64 ``(M,)``).

    The value of a coalition ``S`` is the target probability with every region outside ``S``
    removed (pixels in no region stay as they are), so the values sum to
    ``p(image) - p(all regions removed)``. Regions should be disjoint (vlx's are); overlaps
    are removed once. Exact (all ``2^M`` coalitions, batched) for
    ``M <= 8``; otherwise estimated from ``n_permutations`` random permutations and their
    reverses (antithetic), each coalition evaluated once. ``x`` / ``baseline``: the image and
    its blurred copy as model input ``(1, 3, h, w)``, when the caller already has them.
    """
    n = len(masks)
    if n == 0:
        return np.zeros(0)
    x = model.to_input(image) if x is None else x
    xb = model.to_input(blurred(image.pixels)) if baseline is None else baseline
    m = soft_masks(masks, tuple(x.shape[-2:]), x.device)[:, 0]            # (M, h, w)
    if n <= EXACT_SHAPLEY_MAX:
        coalitions = list(itertools.product((0, 1), repeat=n))
    else:
        rng = np.random.default_rng(seed)
        perms = [rng.permutation(n) for _ in range(n_permutations)]
        perms += [p[::-1] for p in perms]
        coalitions = sorted({_prefix(p, k) for p in perms for k in range(n + 1)})
    present = torch.tensor(coalitions, dtype=torch.float32, device=x.device)  # (C, M)
    absent = 1 - present
    # removed area = union of the absent regions; area resizing is linear, so for disjoint masks
    # the resized union is the sum of the resized masks (clamped for overlapping ones)
    removed = torch.einsum("cm,mhw->chw", absent, m).clamp(max=1.0)
    v = dict(zip(coalitions, composite_probs(model, x, xb, removed[:, None], target_index, batch_size)))
    phi = np.zeros(n)
    if n <= EXACT_SHAPLEY_MAX:
        for s in coalitions:
            k = sum(s)
            for i in range(n):
                if not s[i]:
                    with_i = s[:i] + (1,) + s[i + 1:]
                    phi[i] += math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n) * (v[with_i] - v[s])
        return phi
    for p in perms:
        for k, i in enumerate(p):
            phi[i] += v[_prefix(p, k + 1)] - v[_prefix(p, k)]
    return phi / len(perms)


def _prefix(perm: np.ndarray, k: int) -> tuple[int, ...]:
    s = [0] * len(perm)
    for i in perm[:k]:
        s[int(i)] = 1
    return tuple(s)


def score_regions(model: ImageClassifier, image: ImageInput, regions: Sequence[Region], target_index: int,
                  shapley: bool = False, batch_size: int | None = None) -> list[Region]:
    """Copies of ``regions`` with ``score_after_removal`` and ``score_when_kept`` filled (and
    ``shapley_value`` with ``shapley=True``), all probabilities of ``target_index``."""
    masks = [r.mask for r in regions]
    after, kept = causal_scores(model, image, masks, target_index, batch_size)
    phi = shapley_values(model, image, masks, target_index, batch_size=batch_size) if shapley else [None] * len(masks)
    return [dataclasses.replace(r, score_after_removal=a, score_when_kept=k,
                                shapley_value=None if s is None else float(s))
            for r, a, k, s in zip(regions, after, kept, phi)]
