"""TAM's rank Gaussian filter: a rank-order denoiser for token-grid maps."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def rank_gaussian_filter(grid: np.ndarray, kernel: int = 3) -> np.ndarray:
    """Denoise a map ``(rows, cols)`` (float, ``>= 0``): each cell becomes a Gaussian-weighted
    mean of its ``kernel × kernel`` window *sorted by value*, the weights centred on the median
    rank with width ``std / mean`` of the window (a noisy window leans on its median, a smooth
    one averages). Reflect padding; returns float32 of the same shape."""
    g = torch.from_numpy(np.asarray(grid, np.float32))
    if min(g.shape) < 2:
        return g.numpy()
    pad = kernel // 2
    padded = F.pad(g[None, None], (pad, pad, pad, pad), mode="reflect" if min(g.shape) > pad else "replicate")
    win = F.unfold(padded, kernel)[0].T  # (cells, k*k)
    win, _ = win.sort(-1)
    mean = win.mean(-1, keepdim=True)
    sigma = (win.std(-1, keepdim=True) / mean.clamp(min=1e-12)).clamp(min=0.3)
    ax = torch.arange(kernel * kernel, dtype=torch.float32) - kernel * kernel // 2
    wts = torch.exp(-0.5 * ax[None] ** 2 / sigma ** 2)
    out = (win * wts).sum(-1) / wts.sum(-1)
    return out.view(g.shape).numpy().astype(np.float32)
