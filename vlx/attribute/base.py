"""The attribution contract: one verb, ``attribute``, and capability flags on the class
(as captum does), so the CLI and the tests can read what each method needs."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from vlx.models.classifier import ImageClassifier
from vlx.registry import METHODS
from vlx.types import AttributionMap, ImageInput, Target


class AttributionMethod:
    """Base of all attribution methods for image classifiers.

    Subclasses set the class flags and implement ``attribute``. Options are keyword arguments of
    the constructor (e.g. ``n_samples``), with defaults that work.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    needs_layer: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = True
    signed: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        """Attribute ``target`` for model inputs ``x`` ``(B, 3, h, w)``.

        Returns a float tensor ``(B, h', w')`` at the method's own resolution (a layer grid for
        CAMs, the model input for gradient methods), not normalised; ``>= 0`` unless the class
        is ``signed``.
        """
        raise NotImplementedError


def get_method(name: str, **options: Any) -> AttributionMethod:
    """Instantiate a registered method by name; an unknown name or option is a one-line UsageError."""
    return METHODS.create(name, **options)


def resolve_layers(model: ImageClassifier, spec: str | None) -> str:
    """Resolve a layer spec to dotted names: ``auto``/``None``, one layer, or a comma-separated
    list (``encoder.layers.-2,encoder.layers.-3``), which comes back comma-joined."""
    parts = [p.strip() for p in (spec or "auto").split(",") if p.strip()] or ["auto"]
    return ",".join(model.layer(p)[0] for p in parts)


def upsample(maps: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, h, w)`` maps to ``(B, H, W)``."""
    if tuple(maps.shape[-2:]) == tuple(size_hw):
        return maps
    return F.interpolate(maps[:, None].float(), size=size_hw, mode="bilinear", align_corners=False)[:, 0]


def attribute(model: ImageClassifier, image: ImageInput, target: Target, method: str | AttributionMethod = "gradcam",
              layer: str | None = None) -> AttributionMap:
    """Explain ``target`` on one image; the map comes back at the image's resolution ``(H, W)``.

    ``layer`` may list several layers, comma-separated, for CAM methods (see ``CAMBase``); the
    map's ``layer`` then records them all, comma-joined."""
    m = get_method(method) if isinstance(method, str) else method
    layer_name = resolve_layers(model, layer) if m.needs_layer else None
    t0 = time.perf_counter()
    x = model.to_input(image)
    raw = m.attribute(model, x, target, layer=layer_name).detach()
    values = upsample(raw, image.size_hw)[0]
    seconds = time.perf_counter() - t0
    return AttributionMap(
        values=values.float().cpu().numpy().astype(np.float32),
        raw=raw[0].float().cpu().numpy().astype(np.float32),
        method=m.name, target=target, layer=layer_name, signed=m.signed, seconds=seconds,
    )
