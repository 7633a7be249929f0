"""The attribution contract: one verb, ``attribute``, and capability flags on the class
(as captum does), so the CLI and the tests can read what each method needs.

Methods take what captum's take: a **score function** (``Scorer``), not a model type. A scorer
maps a batch of inputs ``(B, C, h, w)`` (channels on dim 1, a 2-D grid of positions after it) to
scores ``(B, K)``; a ``Target`` picks the explained score from those ``K``. ``ImageClassifier``
is one (``logits``, ``batch_size``, ``layer``, ``preprocess``); ``FunctionScorer`` wraps a plain
callable; the MLLM answer-token probability (``vlx.mllm.methods``) and the few-shot
query-foreground score (``vlx.fewshot.baselines``) are adapters that produce one.
"""

from __future__ import annotations

import time
from typing import Any, Callable, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vlx.errors import UsageError
from vlx.registry import METHODS, check_options
from vlx.types import AttributionMap, ImageInput, Target


@runtime_checkable
class Scorer(Protocol):
    """What attribution methods call.

    Required:
        batch_size: inputs per call of ``logits`` that methods use when given none.
        logits(x): inputs ``(B, C, h, w)`` → scores ``(B, K)`` (float; differentiable in ``x``
            for gradient methods).

    Optional (a method that needs one says so in its error):
        layer(spec): ``(dotted name, module)`` of a layer (``auto``/``None`` = a default), for
            layer methods (CAMs).
        players(x, n_segments): the players of perturbation methods for one input ``x``
            ``(1, C, h, w)``: long labels ``(h, w)`` (superpixels, image tokens, support
            superpixels, tiles). Without it, superpixels of the image are used (needs
            ``preprocess`` to undo the normalisation, as ``ImageClassifier`` has).
    """

    batch_size: int

    def logits(self, x: torch.Tensor) -> torch.Tensor: ...


class FunctionScorer:
    """A plain callable as a ``Scorer`` (captum's ``forward_func``).

    Args:
        forward_func: inputs ``(B, C, h, w)`` → scores ``(B, K)`` or ``(B,)`` (read as ``K = 1``).
        batch_size: inputs per call methods use by default (8).
        players: long labels ``(h, w)`` shared by every input, or a callable
            ``(x (1, C, h, w), n_segments) -> (h, w)``; ``None``: SLIC superpixels of ``x``
            rescaled to ``[0, 255]`` (3-channel inputs only).
        layers: for layer methods, an ``nn.Module`` whose submodules are looked up by dotted
            path, or a dict name → module (``auto`` = its first entry).
    """

    def __init__(self, forward_func: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 8,
                 players: torch.Tensor | Callable[[torch.Tensor, int], torch.Tensor] | None = None,
                 layers: nn.Module | dict[str, nn.Module] | None = None) -> None:
        self.forward_func, self.batch_size = forward_func, int(batch_size)
        self._players, self._layers = players, layers

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.forward_func(x)
        if out.dim() == 1:
            out = out[:, None]
        if out.dim() != 2 or out.shape[0] != x.shape[0]:
            raise ValueError(f"a score function must return (B, K) scores for B={x.shape[0]} inputs, "
                             f"got {tuple(out.shape)}")
        return out

    def layer(self, spec: str | None = "auto") -> tuple[str, nn.Module]:
        if self._layers is None:
            raise UsageError("this score function has no layers; layer methods (CAMs) need FunctionScorer(layers=...)")
        if isinstance(self._layers, dict):
            name = next(iter(self._layers)) if spec in (None, "", "auto") else spec
            if name not in self._layers:
                raise UsageError(f"unknown layer {name!r}; choose one of: {', '.join(self._layers)}.")
            return name, self._layers[name]
        from vlx.models.layers import resolve_layer

        if spec in (None, "", "auto"):
            raise UsageError("name the layer to explain (this score function has no default layer)")
        return resolve_layer(self._layers, spec)

    def players(self, x: torch.Tensor, n_segments: int) -> torch.Tensor:
        if isinstance(self._players, torch.Tensor):
            return self._players.to(x.device)
        if self._players is not None:
            return self._players(x, n_segments)
        if x.shape[1] != 3:
            raise UsageError("superpixel players need 3-channel inputs; pass FunctionScorer(players=...)")
        from vlx.regions.superpixels import slic_segments

        v = x[0].detach().float()
        v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12) * 255
        px = v.round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return torch.from_numpy(slic_segments(px, n_segments).astype(np.int64)).to(x.device)


class AttributionMethod:
    """Base of all attribution methods.

    Subclasses set the class flags and implement ``attribute``. Options are keyword arguments of
    the constructor (e.g. ``n_samples``), with defaults that work; an option no constructor on
    the class's MRO declares is a one-line ``UsageError`` with a did-you-mean.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    needs_layer: ClassVar[bool] = False
    needs_gradients: ClassVar[bool] = True
    signed: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        check_options(type(self), options, f"method {type(self).name!r}")
        self.options = options

    def attribute(self, model: Scorer, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        """Attribute ``target`` for inputs ``x`` ``(B, C, h, w)`` of the score function ``model``.

        Returns a float tensor ``(B, h', w')`` at the method's own resolution (a layer grid for
        CAMs, the input grid for gradient and perturbation methods), not normalised; ``>= 0``
        unless the method is ``signed``.
        """
        raise NotImplementedError

    def check_layer(self, layer: str | None) -> None:
        """Raise a one-line UsageError when ``layer`` (resolved, comma-joined) cannot serve this
        method; called before any image is explained. Most methods take any layer."""


def get_method(name: str, **options: Any) -> AttributionMethod:
    """Instantiate a registered method by name; an unknown name or option is a one-line UsageError."""
    return METHODS.create(name, **options)


def layer_names(spec: str | None) -> list[str]:
    """The names of a comma-separated layer spec, stripped, empty entries dropped (``[]`` for
    ``None`` or ``""``)."""
    return [p.strip() for p in (spec or "").split(",") if p.strip()]


def resolve_layers(model: Any, spec: str | None, method: str | None = None) -> str:
    """Resolve a layer spec to dotted names: ``auto``/``None``, one layer, or a comma-separated
    list (``encoder.layers.-2,encoder.layers.-3``), which comes back comma-joined. ``auto`` for a
    ``method`` the model names in its ``method_layers`` is that method's own layer spec."""
    if spec in (None, "", "auto") and method:
        spec = getattr(model, "method_layers", {}).get(method, spec)
    parts = layer_names(spec) or ["auto"]
    return ",".join(model.layer(p)[0] for p in parts)


def upsample(maps: torch.Tensor, size_hw: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, h, w)`` maps to ``(B, H, W)``."""
    if tuple(maps.shape[-2:]) == tuple(size_hw):
        return maps
    return F.interpolate(maps[:, None].float(), size=size_hw, mode="bilinear", align_corners=False)[:, 0]


def attribute(model: Any, image: ImageInput, target: Target, method: str | AttributionMethod = "gradcam",
              layer: str | None = None) -> AttributionMap:
    """Explain ``target`` on one image with an ``ImageClassifier`` (any scorer with ``to_input``);
    the map comes back at the image's resolution ``(H, W)``.

    ``layer`` may list several layers, comma-separated, for CAM methods (see ``CAMBase``); the
    map's ``layer`` then records them all, comma-joined."""
    m = get_method(method) if isinstance(method, str) else method
    layer_name = resolve_layers(model, layer, m.name) if m.needs_layer else None
    t0 = time.perf_counter()
    x = model.to_input(image)
    raw = m.attribute(model, x, target, layer=layer_name).detach()
    values = upsample(raw, image.size_hw)[0]
    seconds = time.perf_counter() - t0
    return AttributionMap(
        values=values.float().cpu().numpy().astype(np.float32),
        raw=raw[0].float().cpu().numpy().astype(np.float32),
        method=m.name, target=target, layer=layer_name, signed=m.signed, seconds=seconds,
        sampling=sampling_info(m),
    )


def sampling_info(method: AttributionMethod) -> dict[str, Any]:
    """What a sampled method reports about its last single-input call (``last_info[0]``: samples
    used, standard error, tolerance, convergence), as JSON-safe values; ``{}`` for other methods."""
    info = getattr(method, "last_info", None)
    if not info or "max_samples" not in info[0]:
        return {}
    return {k: (float(v) if isinstance(v, float) else v) for k, v in info[0].items()}
