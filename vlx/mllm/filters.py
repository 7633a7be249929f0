"""TAM's rank Gaussian filter: a rank-order denoiser for token-grid maps (the authors'
``rank_guassian_filter``)."""

from __future__ import annotations

import numpy as np


def rank_gaussian_filter(grid: np.ndarray, kernel: int = 3) -> np.ndarray:
    """Denoise a map ``(rows, cols)`` (float, ``>= 0``).

    Each cell's ``kernel × kernel`` window (reflect padding) is sorted by value; the cell becomes
    the mean of the sorted values weighted by a Gaussian over rank offsets from the middle rank,
    ``exp(-d² / (2 σ²))`` with ``σ`` the window's coefficient of variation (population standard
    deviation over mean): a noisy window leans on its median, a smooth one averages. A window
    whose mean is ``<= 0`` gives 0; a constant window (``σ = 0``) gives its value (the limit).
    Returns float32 of the same shape."""
    if kernel < 1 or kernel % 2 == 0:
        raise ValueError(f"kernel must be a positive odd size, got {kernel}")
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 2:
        raise ValueError(f"grid must be 2-D, got shape {g.shape}")
    pad = kernel // 2
    padded = np.pad(g, pad, mode="reflect")
    win = np.sort(np.lib.stride_tricks.sliding_window_view(padded, (kernel, kernel)).reshape(*g.shape, -1), -1)
    mean = win.mean(-1)
    sigma = win.std(-1) / np.where(mean > 0, mean, 1.0)
    d = np.arange(kernel * kernel, dtype=np.float64) - kernel * kernel // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        wts = np.exp(-(d ** 2) / (2 * sigma[..., None] ** 2))
    wts = np.where(sigma[..., None] > 0, wts, (d == 0).astype(np.float64))
    out = (win * wts).sum(-1) / wts.sum(-1)
    return np.where(mean > 0, out, 0.0).astype(np.float32)
