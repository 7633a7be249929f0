"""The few-shot segmentation model protocol, and how to plug a model in.

A matching-based few-shot segmenter (DCAMA, DMTNet, HSNet-style correlation models, or vlx's
embedded ``MatchingSegmenter``) is anything with this shape::

    class MyFewShot:
        name = "dcama-resnet50"
        levels = ("layer2", "layer3", "layer4")   # one name per affinity level
        input_size = (384, 384)                   # (h, w) of the model input
        supports_level_weights = True             # can scale each level's input to the head
        device = torch.device("cpu")

        def to_input(self, images) -> torch.Tensor: ...      # RGB uint8 list -> (B, 3, h, w)
        def forward(self, query, support, support_masks, level_weights=None) -> FewShotOutput: ...

``forward`` takes model inputs: ``query`` ``(1 or B, 3, h, w)`` (a batch of 1 is shared by all
B support sets, so the query is encoded once), ``support`` ``(B, K, 3, h, w)`` and
``support_masks`` float ``(B, K, h, w)`` in ``[0, 1]``; ``level_weights`` is ``None`` or a
float ``(L,)`` tensor that multiplies each level's contribution to the prediction head (the
Affinity Explainer's feature ablation sets one entry to 0). It must be differentiable with
respect to ``support`` (gradient baselines) and return a ``FewShotOutput``.

To plug in DCAMA (or any model of its kind): wrap its module, register forward hooks on the
attention (or correlation) blocks that store the query×support scores of each level (before the
softmax), average its heads, reshape it to ``(B, K, Nq, Ns)`` (``Nq = hq·wq`` query positions, row-major;
``Ns = hs·ws`` support positions per shot) and return it with the level's grids; return the
model's 2-class logits as ``(B, 2, h', w')``. ``level_weights`` is implemented by scaling the
level's attention output before the model's mixer; a model that cannot do it sets
``supports_level_weights = False`` and the explainer combines levels by their mean. Hooks must be
removed in a ``try/finally``. ``tests/test_fewshot.py`` holds a ~30-line planted model that
implements this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
import torch


@dataclass
class FewShotOutput:
    """What a few-shot model returns for B episodes that share one query.

    Attributes:
        logits: ``(B, 2, h', w')`` float, channel 0 background, channel 1 foreground (any
            monotone scale; argmax over channels is the prediction), on the query grid ``h'×w'``.
        affinities: one tensor per level, ``(B, K, Nq, Ns)`` float, query positions × support
            positions per shot, heads averaged: the raw scores *before* the softmax (for
            attention models, ``q·k / sqrt(d)``); the Affinity Explainer applies the softmax over
            the ``K·Ns`` support positions itself, as the reference does.
        query_grids: per level ``(hq, wq)`` with ``hq·wq = Nq`` (row-major positions).
        support_grids: per level ``(hs, ws)`` with ``hs·ws = Ns``.
        support_features: per level ``(B, K, C, hs, ws)`` support feature maps in the autograd
            graph (used by support-side Grad-CAM), or an empty list when the model has none.
    """

    logits: torch.Tensor
    affinities: list[torch.Tensor]
    query_grids: list[tuple[int, int]]
    support_grids: list[tuple[int, int]]
    support_features: list[torch.Tensor]

    def foreground_probability(self) -> torch.Tensor:
        """Softmax foreground probability ``(B, h', w')`` in ``[0, 1]``."""
        return self.logits.float().softmax(1)[:, 1]

    def foreground_logit(self) -> torch.Tensor:
        """Foreground minus background logit ``(B, h', w')`` (positive where foreground wins)."""
        return (self.logits[:, 1] - self.logits[:, 0]).float()


@runtime_checkable
class FewShotModel(Protocol):
    """A matching-based few-shot segmenter (see the module docstring)."""

    name: str
    levels: tuple[str, ...]
    input_size: tuple[int, int]
    supports_level_weights: bool
    device: torch.device

    def to_input(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 ``(H, W, 3)`` images → model input ``(B, 3, h, w)`` on ``device``."""

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_masks: torch.Tensor,
                level_weights: torch.Tensor | None = None) -> FewShotOutput:
        """Segment the query from the support sets (shapes in the module docstring)."""


def masks_to_input(model: FewShotModel, masks: Sequence[np.ndarray]) -> torch.Tensor:
    """Binary/float masks ``(H, W)`` (any sizes) → float ``(K, h, w)`` in ``[0, 1]`` at the model
    input size (area-averaged, so a resized mask keeps its soft boundary)."""
    import torch.nn.functional as F

    out = []
    for m in masks:
        t = torch.from_numpy(np.asarray(m, dtype=np.float32))[None, None]
        out.append(F.interpolate(t, size=model.input_size, mode="area") if t.shape[-2:] != model.input_size
                   else t)
    return torch.cat(out)[:, 0].clamp(0, 1).to(model.device)


def resize_map(values: np.ndarray | torch.Tensor, hw: tuple[int, int]) -> np.ndarray:
    """Resize a float map ``(h, w)`` to ``hw`` (bilinear, no corner alignment) → float32."""
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(values, dtype=np.float32) if isinstance(values, np.ndarray) else values)
    t = t.detach().float().cpu()[None, None]
    if tuple(t.shape[-2:]) == tuple(hw):
        return t[0, 0].numpy().astype(np.float32)
    return F.interpolate(t, size=hw, mode="bilinear", align_corners=False)[0, 0].numpy().astype(np.float32)
