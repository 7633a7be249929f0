"""Fused CAM (a vlx variant, not from a paper): several gradient CAMs, each at its own layer,
combined by the geometric mean of their max-normalised maps, so a position scores only where
every part points.

EfficientNet-Lite0's default explanation is Fused CAM of Grad-CAM at the head (``_bn1``, 7 × 7)
and LayerCAM at a 14 × 14 block (``_blocks.10``): each method at the depth it was designed for
(Grad-CAM's averaged gradients at the last convolutional layer; LayerCAM's position-wise
positive gradients at a shallower, finer layer). The evidence for that choice is in
``docs/defaults.md`` (``benchmarks/default_layer.py``).

All parts share one forward and one backward pass (``layers_gradients``)."""

from __future__ import annotations

from typing import Sequence

import torch

from vlx.attribute.base import AttributionMethod, layer_names, upsample
from vlx.attribute.cam import CAMBase, layers_gradients
from vlx.errors import UsageError
from vlx.models.classifier import ImageClassifier
from vlx.registry import METHODS
from vlx.types import Target


@METHODS.register
class FusedCAM(CAMBase):
    """``(prod_i M_i / max M_i) ** (1 / k)`` over ``k`` parts, where ``M_i`` is the map of CAM
    method ``methods[i]`` at layer ``i`` of the comma-separated ``layer`` (one layer per part, or
    one layer for every part; a model's own choice comes from its ``method_layers``), upsampled
    bilinearly to the finest part's grid (the largest ``h' × w'``; 14 × 14 for the default) and
    divided by its own maximum per sample (a part whose map is all zero makes the
    fused map zero). The result ``(B, h', w')`` is in ``[0, 1]`` at that grid, so random-map
    baselines (``vlx.evaluate.map_check``) get the map's own blockiness.

    Options:
        methods: the parts, comma-separated gradient CAMs (default ``gradcam,layercam``)."""

    name = "fusedcam"
    summary = ("Fused CAM: geometric mean of max-normalised CAMs, one method per layer (a vlx variant; "
               "EfficientNet-Lite0's default is Grad-CAM at the head × LayerCAM at a 14×14 block).")

    def __init__(self, methods: str | Sequence[str] = "gradcam,layercam") -> None:
        names = [m.strip() for m in (methods.split(",") if isinstance(methods, str) else methods) if m.strip()]
        if len(names) < 2:
            raise UsageError(f"fusedcam needs at least two methods, e.g. methods=gradcam,layercam; got {methods!r}.")
        parts = [METHODS.create(n) for n in names]
        for n, p in zip(names, parts):
            if not isinstance(p, CAMBase) or isinstance(p, FusedCAM) or not p.needs_gradients:
                raise UsageError(f"fusedcam parts must be gradient CAMs (gradcam, gradcampp, xgradcam, hirescam, "
                                 f"layercam); {n!r} is not.")
        AttributionMethod.__init__(self, methods=",".join(names))
        self.parts = parts

    def check_layer(self, layer: str | None) -> None:
        """One layer per part, comma-separated, in the order of ``methods``; or one layer for all."""
        if len(layer_names(layer)) not in (1, len(self.parts)):
            raise UsageError(f"fusedcam takes one layer per part ({self.options['methods']}), comma-separated in "
                             f"that order, or one layer for all; got {layer!r}.")

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        self.check_layer(layer)
        layers = layer_names(layer)
        if len(layers) == 1:
            layers = layers * len(self.parts)
        pairs = layers_gradients(model, x, target, [model.layer(n)[1] for n in layers])
        maps = [part.combine(acts, grads).float() for part, (acts, grads) in zip(self.parts, pairs, strict=True)]
        hw = max((tuple(m.shape[-2:]) for m in maps), key=lambda s: s[0] * s[1])     # the most positions
        normed = []
        for m in maps:
            m = upsample(m, hw).clamp_min(0)
            normed.append(m / m.amax(dim=(1, 2), keepdim=True).clamp_min(torch.finfo(m.dtype).tiny))  # 0 stays 0
        return torch.stack(normed).prod(0).pow(1.0 / len(self.parts))
