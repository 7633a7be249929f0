"""Perturbation curves, one implementation for every family: image deletion / insertion
(``vlx.evaluate.deletion``), MLLM answer-token deletion / insertion (``vlx.mllm.metrics``) and
few-shot support deletion / insertion (``vlx.fewshot.metrics``).

The pieces, each used by all three:

* ``pixel_ranks``: rank of every element by attribution, most important first; ties in a
  seeded random order (never raster order, which biases curves of maps with many exact zeros).
* ``step_counts``: how many elements are perturbed after each of ``steps`` equal steps.
* ``moved_masks``: the boolean "already perturbed" mask of every step, built at once.
* ``blur_image`` / ``baseline_image`` / ``baseline_tensor``: the "removed" content. The one
  blur is a Gaussian (``sigma`` = 1/20 of the longer side, scikit-image, ``nearest`` borders,
  truncated at 4 sigma); ``mean`` is the per-channel mean; ``zero`` is zeros.
* ``score_batches``: score ``S`` composites ``batch_size`` at a time.
* ``auc``: trapezoid area under a curve over its fractions.

Nothing here knows a model type: callers pass tensors, arrays and score functions.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import torch

BASELINES: tuple[str, ...] = ("blur", "mean", "zero")
Rounding = Literal["round", "floor"]


def blur_sigma(size_hw: tuple[int, int]) -> float:
    """The blur baseline's Gaussian sigma for an image of ``size_hw``: 1/20 of its longer side."""
    return max(size_hw) / 20.0


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float array ``(H, W, C)`` over its two spatial axes (each channel on
    its own; ``nearest`` borders, kernel truncated at 4 sigma). Returns ``(H, W, C)`` in the
    input's float precision (float64 for non-float input)."""
    from skimage.filters import gaussian

    if sigma <= 0:
        raise ValueError(f"blur sigma must be > 0, got {sigma}")
    a = np.asarray(a)
    a = a if a.dtype.kind == "f" else a.astype(np.float64)
    return gaussian(a, sigma=sigma, channel_axis=-1)       # skimage's defaults: "nearest" borders, 4-sigma kernel


def blur_image(pixels: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """A strongly blurred copy of an RGB uint8 image ``(H, W, 3)`` (``sigma`` default:
    ``blur_sigma``), uint8 ``(H, W, 3)``."""
    s = blur_sigma(pixels.shape[:2]) if sigma is None else sigma
    out = gaussian_blur(pixels.astype(np.float32) / 255.0, s)
    return (out * 255).round().astype(np.uint8)             # a blur of [0, 1] values stays in [0, 1]


def baseline_image(pixels: np.ndarray, kind: str) -> np.ndarray:
    """The "removed" RGB uint8 image ``(H, W, 3)`` for ``pixels``: ``blur`` (``blur_image``),
    ``mean`` (every pixel the image's mean colour, rounded) or ``zero`` (black)."""
    if kind == "blur":
        return blur_image(pixels)
    if kind == "mean":
        return np.broadcast_to(pixels.reshape(-1, 3).mean(0).round().astype(np.uint8), pixels.shape).copy()
    if kind == "zero":
        return np.zeros_like(pixels)
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}.")


def baseline_tensor(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The "removed" input for a batch ``x`` ``(N, C, H, W)`` in whatever space it is given
    (model input space for classifiers): ``blur`` (``gaussian_blur`` of each image and channel,
    sigma from ``(H, W)``), ``mean`` (each image's per-channel mean) or ``zero`` (zeros). Same
    shape, dtype and device as ``x``."""
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if kind == "blur":
        s = blur_sigma(tuple(x.shape[-2:]))
        a = x.detach().permute(0, 2, 3, 1).double().cpu().numpy()
        out = np.stack([gaussian_blur(img, s) for img in a])
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=x.device, dtype=x.dtype).contiguous()
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}.")


def pixel_ranks(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rank of every element of ``values`` (any shape) by value, most important first:
    ``ranks == 0`` at the highest value. Ties are ordered by a permutation drawn from ``seed``
    (not raster order), so a flat map behaves like a random order. Returns int64, shape of
    ``values``. Raises ValueError on NaN or infinite values."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(flat).all():
        raise ValueError("the map holds NaN or infinite values; check the attribution method.")
    tie = np.random.default_rng(seed).permutation(flat.size)
    order = np.lexsort((tie, -flat))
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(np.shape(values))


def step_counts(n: int, steps: int, rounding: Rounding = "round") -> np.ndarray:
    """Elements perturbed after each of ``steps`` equal steps: ``steps + 1`` int64 from 0 to
    ``n``. ``round``: ``round(k n / steps)``; ``floor``: ``k n // steps`` (AffinityExplainer's
    schedule)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    k = np.arange(steps + 1, dtype=np.int64)
    if rounding == "round":
        return np.round(k * n / steps).astype(np.int64)
    if rounding == "floor":
        return k * int(n) // steps
    raise ValueError(f"rounding must be 'round' or 'floor', got {rounding!r}")


def moved_masks(ranks: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Bool ``(S, *ranks.shape)``: entry ``s`` is True where an element is among the first
    ``counts[s]`` of the ranking (already deleted, or already inserted)."""
    return ranks[None] < counts.to(ranks.device).view(-1, *([1] * ranks.dim()))


def score_batches(score: Callable[[int, int], torch.Tensor | np.ndarray], n_items: int,
                  batch_size: int) -> np.ndarray:
    """Call ``score(i0, i1)`` (scores of items ``i0 .. i1 - 1``, shape ``(i1 - i0,)``) for
    consecutive chunks of ``batch_size`` and concatenate: float64 ``(n_items,)``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = []
    for i in range(0, n_items, batch_size):
        s = score(i, min(i + batch_size, n_items))
        out.append(s.detach().double().cpu().numpy() if isinstance(s, torch.Tensor) else np.asarray(s, np.float64))
    return np.concatenate(out) if out else np.zeros(0)


def auc(curve: np.ndarray, fractions: np.ndarray | None = None) -> float:
    """Trapezoid area under ``curve`` over ``fractions`` (default: equally spaced on ``[0, 1]``).
    For fractions spanning ``[0, 1]`` and a curve in ``[0, 1]``, a value in ``[0, 1]``."""
    c = np.asarray(curve, dtype=np.float64)
    if c.ndim != 1 or c.size < 2:
        raise ValueError("a curve needs at least two points")
    x = np.linspace(0.0, 1.0, c.size) if fractions is None else np.asarray(fractions, dtype=np.float64)
    if x.shape != c.shape:
        raise ValueError(f"curve has {c.size} points but fractions has {x.size}")
    return float(np.sum((c[1:] + c[:-1]) * np.diff(x)) / 2.0)
