"""Choosing regions from candidate masks by attribution: a mask is worth the attribution it holds
beyond what its area alone would hold (``mass - area``: 0 for the whole image or a random
blob, up to 1 for a small mask with all the mass), weighted by the segmenter's quality score.
Near-duplicates are dropped and overlaps are cut so that regions are disjoint and their masses
add up."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def mass_and_area(masks: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For bool ``(M, H, W)`` masks and an ``(H, W)`` map: each mask's share of the map's positive
    mass and of the image's pixels, two float64 ``(M,)`` arrays in ``[0, 1]``."""
    pos = np.clip(values, 0, None).astype(np.float64).ravel()
    flat = masks.reshape(len(masks), -1)
    total = pos.sum()
    mass = (flat @ pos) / total if total > 0 else np.zeros(len(masks))
    return mass, flat.mean(axis=1)


def gain(masks: np.ndarray, values: np.ndarray, quality: np.ndarray | None = None) -> np.ndarray:
    """Score of each candidate: ``quality * (mass - area)``, float64 ``(M,)`` in ``[-1, 1]``.
    ``quality`` (SAM's predicted IoU, clipped to ``[0, 1]``) defaults to 1."""
    mass, area = mass_and_area(masks, values)
    q = np.ones(len(masks)) if quality is None else np.clip(np.asarray(quality, dtype=np.float64), 0, 1)
    return q * (mass - area)


def mask_iou(a: np.ndarray, b: np.ndarray, side: int = 128) -> np.ndarray:
    """IoU matrix ``(len(a), len(b))`` of bool ``(N, H, W)`` mask stacks, computed on copies at
    most ``side`` px on their longer side (area-resized, thresholded at 0.5)."""
    def small(m: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(m.astype(np.float32))[:, None]
        h, w = m.shape[-2:]
        s = min(1.0, side / max(h, w))
        if s < 1.0:
            t = F.interpolate(t, size=(max(1, round(h * s)), max(1, round(w * s))), mode="area")
        return (t[:, 0] >= 0.5).flatten(1).float()

    fa, fb = small(a), small(b)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None] - inter
    return (inter / union.clamp(min=1)).numpy()


def select_masks(masks: np.ndarray, values: np.ndarray, quality: np.ndarray | None = None, coverage: float = 0.5,
                 max_regions: int = 5, min_area: float = 0.005, dedupe_iou: float = 0.7) -> list[np.ndarray]:
    """Greedy choice of disjoint regions from candidate masks.

    Candidates are taken in order of ``gain``; one with IoU ``>= dedupe_iou`` to a chosen mask is
    a duplicate and skipped; otherwise the chosen masks are cut out of it, and the rest is kept
    if it still covers ``min_area`` of the image and has positive gain. Stops once the chosen
    masks hold ``coverage`` of the positive attribution or ``max_regions`` are chosen.

    Args:
        masks: bool ``(M, H, W)`` candidates. values: the ``(H, W)`` map.
        quality: float ``(M,)`` segmenter quality, or ``None``.
    Returns:
        bool ``(H, W)`` masks, disjoint, in the order chosen.
    """
    if len(masks) == 0:
        return []
    g = gain(masks, values, quality)
    order = [int(i) for i in np.argsort(-g, kind="stable") if g[i] > 0]
    iou = mask_iou(masks[order], masks[order]) if order else np.zeros((0, 0))
    chosen: list[np.ndarray] = []
    taken: list[int] = []
    union = np.zeros(masks.shape[1:], dtype=bool)
    held = 0.0
    for j, i in enumerate(order):
        if len(chosen) >= max_regions or held >= coverage - 1e-9:
            break
        if taken and iou[j, taken].max() >= dedupe_iou:
            continue
        rest = masks[i] & ~union
        if rest.mean() < min_area:
            continue
        mass, area = mass_and_area(rest[None], values)
        if mass[0] - area[0] <= 0:
            continue
        chosen.append(rest)
        taken.append(j)
        union |= rest
        held += float(mass[0])
    return chosen
