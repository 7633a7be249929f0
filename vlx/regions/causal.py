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
                    target_index: int | Sequence[int], batch_size: int | None = None) -> np.ndarray:
    """Probability of ``target_index`` for composites ``x * (1 - m) + base * m``.

    ``x`` and ``base`` are ``(1, 3, h, w)``, or ``(S, 3, h, w)`` with one row per mask (composites
    of several images in one pass); ``masks`` is ``(S, 1, h, w)`` in ``[0, 1]`` (1 = take the
    baseline); ``target_index``: one class, or one per mask. Composites are built and scored
    ``batch_size`` (default: the model's) at a time. Returns ``(S,)`` floats in ``[0, 1]``.
    """
    batch_size = batch_size or model.batch_size
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    per_row = not isinstance(target_index, int)
    tix = torch.as_tensor(list(target_index) if per_row else [], dtype=torch.long, device=x.device)
    out = []
    for i in range(0, masks.shape[0], batch_size):
        m = masks[i:i + batch_size].to(device=x.device, dtype=x.dtype)
        xi = x if x.shape[0] == 1 else x[i:i + batch_size]
        bi = base if base.shape[0] == 1 else base[i:i + batch_size]
        p = model.logits(xi * (1 - m) + bi * m).float().softmax(-1)
        out.append(p.gather(1, tix[i:i + batch_size, None])[:, 0] if per_row else p[:, target_index])
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


def blurred_input(x: torch.Tensor, image_hw: tuple[int, int], sigma: float | None = None) -> torch.Tensor:
    """``blurred`` done on the model input: a Gaussian blur of ``x`` ``(B, 3, h, w)`` whose
    ``sigma`` (default 1/20 of the image's longer side, in image pixels) is scaled to input pixels
    on each axis; edges repeat the border (as ``blurred``). The blur is linear and commutes with
    the per-channel normalisation, so this equals converting the blurred image, up to resampling
    and the uint8 rounding of ``blurred``, without a second full-resolution pass."""
    H, W = image_hw
    s = sigma if sigma is not None else max(H, W) / 20.0
    out = x
    for dim, scale in ((2, x.shape[2] / H), (3, x.shape[3] / W)):
        sd = s * scale
        r = int(4.0 * sd + 0.5)                # scipy's truncate=4.0
        if r < 1:
            continue
        t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
        k = torch.exp(-0.5 * (t / sd) ** 2)
        k = (k / k.sum()).repeat(x.shape[1], 1, 1, 1)                      # (3, 1, 1, 2r+1)
        if dim == 2:
            out = F.conv2d(F.pad(out, (0, 0, r, r), mode="replicate"), k.transpose(2, 3), groups=x.shape[1])
        else:
            out = F.conv2d(F.pad(out, (r, r, 0, 0), mode="replicate"), k, groups=x.shape[1])
    return out
