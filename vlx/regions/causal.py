"""Causal checks: the target's probability when a region is removed (blurred out) or kept alone,
for many regions in one batched pass."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlx.models.classifier import ImageClassifier
from vlx.types import ImageInput


def blurred(pixels: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """A strongly blurred copy of an RGB uint8 image (Gaussian, ``sigma`` = 1/20 of the longer
    side by default), used as the "removed" content: ``vlx.evaluate.curves.blur_image``."""
    from vlx.evaluate.curves import blur_image

    return blur_image(pixels, sigma)


def soft_masks(masks: Sequence[np.ndarray], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Boolean ``(H, W)`` masks resized by area to the model input ``size``: ``(M, 1, h, w)`` in
    ``[0, 1]`` (the share of each input pixel the mask covers)."""
    m = torch.from_numpy(np.stack(masks).astype(np.float32)).to(device)[:, None]
    return F.interpolate(m, size=size, mode="area")


@torch.no_grad()
def composite_probs(model: ImageClassifier, x: torch.Tensor, base: torch.Tensor, masks: torch.Tensor,
                    target_index: int, batch_size: int | None = None) -> np.ndarray:
    """Probability of ``target_index`` for composites ``x * (1 - m) + base * m``.

    ``x`` and ``base`` are ``(1, 3, h, w)``; ``masks`` is ``(S, 1, h, w)`` in ``[0, 1]`` (1 = take
    the baseline). Composites are built and scored ``batch_size`` (default: the model's) at a
    time. Returns ``(S,)`` floats in ``[0, 1]``.
    """
    batch_size = batch_size or model.batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = []
    for i in range(0, masks.shape[0], batch_size):
        m = masks[i:i + batch_size].to(device=x.device, dtype=x.dtype)
        batch = x * (1 - m) + base * m
        out.append(model.logits(batch).float().softmax(-1)[:, target_index])
    return torch.cat(out).cpu().double().numpy()


def removal_scores(model: ImageClassifier, image: ImageInput, masks: Sequence[np.ndarray], target_index: int,
                   keep_only: bool = False, batch_size: int | None = None) -> list[float]:
    """Probability of ``target_index`` after blurring out each mask (or, with ``keep_only``,
    everything but the mask). ``masks`` are boolean ``(H, W)``; returns one float in ``[0, 1]``
    per mask. The blurred image is computed once; composites are batched."""
    if len(masks) == 0:
        return []
    x = model.to_input(image)
    xb = model.to_input(blurred(image.pixels))
    m = soft_masks(masks, tuple(x.shape[-2:]), x.device)
    return [float(p) for p in composite_probs(model, x, xb, 1.0 - m if keep_only else m, target_index, batch_size)]
