"""SAM prompts from an attribution map: several positive points at separated peaks, negative
points spread over the low-attribution area, and a box around the strongest thresholded blob.

VALE prompted SAM with the single highest pixel; one point is ambiguous (part or whole?) and a
noisy maximum can sit on the background. Several separated peaks, negatives where the map is
low, and a box bound the object from both sides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MapPrompts:
    """Prompts for one map, in pixels of the image.

    Attributes:
        positive: float ``(P, 2)`` points as ``(x, y)``, strongest peak first, ``P >= 1``.
        negative: float ``(Q, 2)`` points as ``(x, y)`` in the low-attribution area, ``Q >= 0``.
        box: ``(x0, y0, x1, y1)`` (XYXY, end exclusive) around the thresholded blob holding the
            most attribution, or ``None`` for an all-zero map.
    """

    positive: np.ndarray
    negative: np.ndarray
    box: tuple[int, int, int, int] | None


def smooth_positive(values: np.ndarray, sigma_frac: float = 0.03) -> np.ndarray:
    """The positive part of a ``(H, W)`` map, Gaussian-smoothed (``sigma`` = ``sigma_frac`` of
    the shorter side) and scaled to ``[0, 1]``; all zeros if the map has no positive value."""
    from scipy.ndimage import gaussian_filter

    v = np.clip(np.asarray(values, dtype=np.float64), 0, None)
    s = sigma_frac * min(v.shape)
    if s > 0.3:
        v = gaussian_filter(v, s)
    m = float(v.max())
    return v / m if m > 0 else np.zeros_like(v)


def peak_points(v: np.ndarray, n: int = 3, min_distance_frac: float = 0.1, threshold_rel: float = 0.5) -> np.ndarray:
    """Up to ``n`` local maxima of a ``[0, 1]`` map, at least ``min_distance_frac`` of the shorter
    side apart, each at least ``threshold_rel`` of the maximum; float ``(P, 2)`` as ``(x, y)``,
    strongest first. The global maximum is always the first point."""
    from skimage.feature import peak_local_max

    d = max(1, int(min_distance_frac * min(v.shape)))
    rc = peak_local_max(v, min_distance=d, threshold_rel=threshold_rel, num_peaks=n, exclude_border=False)
    top = np.array(np.unravel_index(int(np.argmax(v)), v.shape))
    if rc.size == 0 or np.abs(rc - top).max(axis=1).min() > d:
        rc = np.concatenate([top[None], rc])[:n]
    return rc[:, ::-1].astype(np.float64)


def negative_points(v: np.ndarray, avoid: np.ndarray, n: int = 3, low_rel: float = 0.1,
                    seed: int = 0) -> np.ndarray:
    """``n`` points where the ``[0, 1]`` map is below ``low_rel``, spread out by farthest-point
    sampling that starts from the ``avoid`` points (the positives). Float ``(Q, 2)`` as ``(x, y)``;
    fewer than ``n`` (maybe none) if the low area is small."""
    if n <= 0:
        return np.zeros((0, 2))
    ys, xs = np.nonzero(v <= low_rel)
    if ys.size == 0:
        return np.zeros((0, 2))
    cand = np.stack([xs, ys], 1).astype(np.float64)
    if len(cand) > 4096:
        cand = cand[np.random.default_rng(seed).choice(len(cand), 4096, replace=False)]
    chosen: list[np.ndarray] = []
    dist = np.full(len(cand), np.inf)
    for p in avoid:
        dist = np.minimum(dist, np.hypot(*(cand - p).T))
    for _ in range(min(n, len(cand))):
        i = int(np.argmax(dist))
        chosen.append(cand[i])
        dist = np.minimum(dist, np.hypot(*(cand - cand[i]).T))
    return np.array(chosen)


def box_from_map(v: np.ndarray, threshold_rel: float = 0.5) -> tuple[int, int, int, int] | None:
    """XYXY box (end exclusive) of the connected blob of ``v >= threshold_rel`` that holds the
    most of ``v``'s mass; ``None`` when ``v`` is all zeros."""
    from skimage.measure import label

    if float(v.max()) <= 0:
        return None
    comps = label(v >= threshold_rel * float(v.max()), connectivity=2)
    mass = np.bincount(comps.ravel(), weights=v.ravel())
    mass[0] = -1
    ys, xs = np.nonzero(comps == int(np.argmax(mass)))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def map_prompts(values: np.ndarray, n_positive: int = 3, n_negative: int = 3, min_distance_frac: float = 0.1,
                peak_rel: float = 0.5, low_rel: float = 0.1, box_rel: float = 0.5) -> MapPrompts:
    """All prompts for one ``(H, W)`` attribution map (any scale; its positive part is used).

    Args:
        n_positive: at most this many positive points (separated peaks).
        n_negative: at most this many negative points (below ``low_rel`` of the maximum).
        min_distance_frac: minimum peak separation, as a share of the shorter side.
        peak_rel: a peak must reach this share of the maximum.
        box_rel: the box surrounds the blob above this share of the maximum.
    """
    v = smooth_positive(values)
    if float(v.max()) <= 0:
        return MapPrompts(np.zeros((0, 2)), np.zeros((0, 2)), None)
    pos = peak_points(v, n_positive, min_distance_frac, peak_rel)
    neg = negative_points(v, pos, n_negative, low_rel)
    return MapPrompts(pos, neg, box_from_map(v, box_rel))
