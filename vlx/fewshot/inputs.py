"""One episode turned into model tensors once, and the scalar every explainer explains.

``prepare`` resizes the query, the support images and their masks to the model input and fixes
the query region of interest (ROI); ``roi_score`` is the explained score: the mean foreground
logit (foreground minus background) over the ROI, one value per support set of the batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlx.errors import InputError
from vlx.fewshot.protocol import FewShotModel, FewShotOutput, masks_to_input


@dataclass
class EpisodeInputs:
    """An episode in model space.

    Attributes:
        query: ``(1, 3, h, w)`` model input of the query.
        support: ``(1, K, 3, h, w)`` model inputs of the K support images.
        masks: ``(1, K, h, w)`` float support masks in ``[0, 1]`` at the model input size.
        roi: bool ``(h', w')`` query region of interest on the model's output grid.
        query_hw: ``(H, W)`` of the query image.
        support_hw: ``(H, W)`` of each support image.
        support_pixels: the K support images resized to the model input, RGB uint8 ``(h, w, 3)``.
    """

    query: torch.Tensor
    support: torch.Tensor
    masks: torch.Tensor
    roi: torch.Tensor
    query_hw: tuple[int, int]
    support_hw: tuple[tuple[int, int], ...]
    support_pixels: tuple[np.ndarray, ...]

    @property
    def shots(self) -> int:
        return int(self.support.shape[1])


def check_episode(query: np.ndarray, supports: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> None:
    """Raise ``InputError`` (one line) for an unusable episode: no shots, a mask count or size
    that does not match its image, or an empty mask."""
    if len(supports) == 0:
        raise InputError("a few-shot episode needs at least one support image with its mask.")
    if len(supports) != len(masks):
        raise InputError(f"{len(supports)} support images but {len(masks)} masks; give one mask per image.")
    for arr in (query, *supports):
        if not (isinstance(arr, np.ndarray) and arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8):
            raise InputError("images must be RGB uint8 arrays of shape (H, W, 3).")
    for k, (img, m) in enumerate(zip(supports, masks)):
        if np.shape(m) != img.shape[:2]:
            raise InputError(f"support {k + 1}: mask is {np.shape(m)} but its image is {img.shape[:2]}; "
                             "the mask must have the image's size.")
        if not np.asarray(m).any():
            raise InputError(f"support {k + 1}: the mask is empty; mark the object's pixels.")


def prepare(model: FewShotModel, query: np.ndarray, supports: Sequence[np.ndarray],
            masks: Sequence[np.ndarray], roi: str | np.ndarray = "prediction") -> EpisodeInputs:
    """Episode arrays → model tensors.

    Args:
        query: RGB uint8 ``(H, W, 3)``.
        supports: K RGB uint8 images ``(H_k, W_k, 3)``.
        masks: K masks ``(H_k, W_k)``, bool or float in ``[0, 1]``.
        roi: ``prediction`` (the model's predicted foreground; the whole image when it predicts
            none), ``image`` (all query positions) or a bool ``(H, W)`` query mask (e.g. the
            ground truth), resized to the output grid.
    """
    check_episode(query, supports, masks)
    from PIL import Image

    h, w = model.input_size
    q = model.to_input([query])
    s = model.to_input(list(supports))[None]
    m = masks_to_input(model, [np.asarray(x, dtype=np.float32) for x in masks])[None]
    with torch.no_grad():
        out = model.forward(q, s, m)
    grid = tuple(out.logits.shape[-2:])
    if isinstance(roi, np.ndarray):
        if roi.shape != query.shape[:2]:
            raise InputError(f"query mask is {roi.shape} but the query is {query.shape[:2]}.")
        t = torch.from_numpy(roi.astype(np.float32))[None, None]
        r = F.interpolate(t, size=grid, mode="area")[0, 0] >= 0.5
    elif roi == "prediction":
        r = (out.foreground_logit()[0] > 0).cpu()
    elif roi == "image":
        r = torch.ones(grid, dtype=torch.bool)
    else:
        raise ValueError(f"roi must be 'prediction', 'image' or a bool mask, got {roi!r}")
    if not r.any():
        r = torch.ones(grid, dtype=torch.bool)
    small = tuple(np.asarray(Image.fromarray(x).resize((w, h), Image.BILINEAR)) for x in supports)
    return EpisodeInputs(q, s, m, r.to(q.device), tuple(query.shape[:2]),
                         tuple(tuple(x.shape[:2]) for x in supports), small)


def roi_score(out: FewShotOutput, roi: torch.Tensor) -> torch.Tensor:
    """Mean foreground logit over the ROI, ``(B,)``: the scalar the explainers explain."""
    fg = out.foreground_logit()
    r = roi.to(fg.dtype)
    return (fg * r).flatten(1).sum(1) / r.sum()


def query_prediction(out: FewShotOutput, hw: tuple[int, int]) -> torch.Tensor:
    """Predicted query foreground, bool ``(B, H, W)`` at the query image size (the foreground
    logit upsampled bilinearly, then ``> 0``)."""
    fg = out.foreground_logit()[:, None]
    if tuple(fg.shape[-2:]) != tuple(hw):
        fg = F.interpolate(fg, size=hw, mode="bilinear", align_corners=False)
    return fg[:, 0] > 0
