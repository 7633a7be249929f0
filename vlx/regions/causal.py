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
    side by default), used as the "removed" content."""
    from skimage.filters import gaussian

    s = sigma if sigma is not None else max(pixels.shape[:2]) / 20.0
    out = gaussian(pixels.astype(np.float32) / 255.0, sigma=s, channel_axis=-1, preserve_range=True)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


@torch.no_grad()
def removal_scores(model: ImageClassifier, image: ImageInput, masks: Sequence[np.ndarray], target_index: int,
                   keep_only: bool = False, batch_size: int | None = None) -> list[float]:
    """Probability of ``target_index`` after blurring out each mask (or, with ``keep_only``,
    everything but the mask). ``masks`` are boolean ``(H, W)``; returns one float in ``[0, 1]``
    per mask. The blurred image is computed once; composites are batched."""
    if len(masks) == 0:
        return []
    x = model.to_input(image)
    xb = model.to_input(blurred(image.pixels))
    m = torch.from_numpy(np.stack(masks).astype(np.float32)).to(x.device)[:, None]
    m = F.interpolate(m, size=x.shape[-2:], mode="area")
    if keep_only:
        m = 1.0 - m
    probs = []
    batch_size = batch_size or model.batch_size
    for i in range(0, m.shape[0], batch_size):
        mi = m[i:i + batch_size]
        batch = x * (1 - mi) + xb * mi
        probs.append(model.logits(batch).float().softmax(-1)[:, target_index])
    return [float(p) for p in torch.cat(probs)]
