"""Explain a few-shot segmentation: which support pixels made the model segment the query.

The **Affinity Explainer** (METHODS.md, "Few-shot segmentation explanation"; reference:
pasqualedem/AffinityExplainer, ``affex/explainer/affinity.py``) reads the model's per-level
query×support affinities. At each level: softmax over the support positions of all shots; each
support position's affinity normalised over all query positions; the mean over the query region
of interest, giving one contribution per support position per shot; resized to the support
input and normalised to sum 1 over all shots. Levels are combined by their mean or by
feature-ablation weights (zero one level's input to the prediction head; weight = absolute
change of the mean query foreground logit, scaled to sum 1). Variants: ``unmasked``,
``masked`` (times the blurred support mask), ``signed`` (times the blurred ``2·mask − 1``:
background support pixels count against). The reference min-max scales each map at the end;
vlx keeps the sum-1 scale (same ranking; signed maps keep their sign).

Baselines on the support side live in ``vlx.fewshot.baselines``. Every explainer is one entry
of ``FEWSHOT_EXPLAINERS``; ``explain_support`` runs one by name.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlx.fewshot.inputs import EpisodeInputs, prepare
from vlx.fewshot.protocol import FewShotModel, FewShotOutput, resize_map
from vlx.errors import UsageError
from vlx.registry import FEWSHOT_EXPLAINERS

# name -> function(model, inputs, seed) -> (maps (K, h, w) float tensor at model input, signed, info)
ExplainFn = Callable[[FewShotModel, EpisodeInputs, int], tuple[torch.Tensor, bool, dict]]
MASK_BLUR_SIGMA = 0.02  # blur of the support mask for the masked/signed variants, share of the longer side


@dataclass(frozen=True)
class SupportAttribution:
    """Support-pixel attributions for one episode.

    Attributes:
        maps: K float32 maps ``(H_k, W_k)`` at each support image's resolution.
        raw: float32 ``(K, h, w)`` at the model input resolution (what the metrics rank).
        method: explainer name.
        signed: whether negative values carry meaning.
        seconds: wall time of the explanation (model calls included).
        level_weights: per-level weights used to combine levels (Affinity Explainer), else ``()``.
    """

    maps: tuple[np.ndarray, ...]
    raw: np.ndarray
    method: str
    signed: bool
    seconds: float
    level_weights: tuple[float, ...] = field(default=())

    def shot_shares(self) -> np.ndarray:
        """Share of the positive attribution in each shot, float64 ``(K,)`` summing to 1 (uniform
        when no attribution is positive)."""
        pos = np.clip(self.raw.astype(np.float64), 0, None).reshape(self.raw.shape[0], -1).sum(1)
        total = pos.sum()
        return pos / total if total > 0 else np.full(len(pos), 1.0 / len(pos))


def blurred_masks(inputs: EpisodeInputs) -> torch.Tensor:
    """The support masks ``(K, h, w)`` blurred with a Gaussian (sigma = 2% of the longer side,
    at least 0.5 px; ``vlx.evaluate.curves.gaussian_blur``)."""
    from vlx.evaluate.curves import gaussian_blur

    m = inputs.masks[0]
    sigma = max(0.5, MASK_BLUR_SIGMA * max(m.shape[-2:]))
    out = gaussian_blur(m.permute(1, 2, 0).double().cpu().numpy(), sigma)
    return torch.from_numpy(out).permute(2, 0, 1).to(device=m.device, dtype=torch.float32)


def support_contribution(affinity: torch.Tensor, query_weights: torch.Tensor) -> torch.Tensor:
    """One level's contribution of each support position, as in AffinityExplainer.

    ``affinity`` ``(K, Nq, Ns)``: raw query×support scores of one episode; ``query_weights``
    ``(Nq,)`` ``>= 0``: the query region of interest on the level's grid. Steps: softmax over
    all ``K·Ns`` support positions for each query position; each support position's column
    normalised to sum 1 over the query positions (so a support position that every query
    position attends to is not first for that reason alone); the mean over the region
    (``query_weights`` normalised to sum 1). Returns float ``(K, Ns)`` ``>= 0``."""
    k, nq, ns = affinity.shape
    a = affinity.float().permute(1, 0, 2).reshape(nq, k * ns).softmax(-1)       # (Nq, K·Ns)
    a = a / (a.sum(0, keepdim=True) + 1e-6)
    w = query_weights.float().to(a.device)
    w = w / w.sum()
    return (w @ a).view(k, ns)


@torch.no_grad()
def level_contributions(model: FewShotModel, inputs: EpisodeInputs) -> torch.Tensor:
    """Per-level support contributions ``(L, K, h, w)``: ``support_contribution`` with the ROI
    area-resized to each level's query grid (the whole grid when the ROI misses it), resized
    (bilinear) to the model input, normalised to sum 1 over all shots of each level."""
    out = model.forward(inputs.query, inputs.support, inputs.masks)
    h, w = model.input_size
    roi = inputs.roi[None, None].float()
    levels = []
    for aff, qg, sg in zip(out.affinities, out.query_grids, out.support_grids):
        wq = F.interpolate(roi, size=qg, mode="area").flatten()
        if wq.sum() <= 0:
            wq = torch.ones_like(wq)
        c = support_contribution(aff[0], wq).view(-1, 1, *sg)
        c = F.interpolate(c, size=(h, w), mode="bilinear", align_corners=False)[:, 0].clamp_min(0)
        levels.append(c / c.sum().clamp_min(1e-12))
    return torch.stack(levels)


def roi_foreground(out: FewShotOutput, roi: torch.Tensor) -> torch.Tensor:
    """Mean foreground-channel logit over the ROI, float ``(B,)`` (what the reference's feature
    ablation compares)."""
    fg = out.logits[:, 1].float()
    r = roi.to(fg.dtype)
    return (fg * r).flatten(1).sum(1) / r.sum()


@torch.no_grad()
def ablation_weights(model: FewShotModel, inputs: EpisodeInputs) -> torch.Tensor:
    """Level weights ``(L,)`` summing to 1 from feature ablation, as in AffinityExplainer: the
    absolute change of the mean query foreground logit over the ROI when one level's input to
    the head is zeroed, scaled to sum 1 (all-zero changes give equal weights). Needs
    ``model.supports_level_weights``."""
    if not model.supports_level_weights:
        raise UsageError(f"{model.name} cannot weight its levels; use an explainer without -ablation.")
    n = len(model.levels)
    base = roi_foreground(model.forward(inputs.query, inputs.support, inputs.masks), inputs.roi)[0]
    changes = []
    for i in range(n):
        wts = torch.ones(n, device=inputs.support.device)
        wts[i] = 0
        s = roi_foreground(model.forward(inputs.query, inputs.support, inputs.masks, wts), inputs.roi)[0]
        changes.append(abs(float(base - s)))
    d = torch.tensor(changes, dtype=torch.float64)
    return (d / d.sum() if d.sum() > 0 else torch.full((n,), 1.0 / n, dtype=torch.float64)).float()


def affinity_explainer(variant: str = "masked", combine: str = "mean") -> ExplainFn:
    """The Affinity Explainer as an ``ExplainFn``; ``variant`` is unmasked, masked or signed,
    ``combine`` is mean or ablation."""
    if variant not in ("unmasked", "masked", "signed") or combine not in ("mean", "ablation"):
        raise ValueError(f"unknown Affinity Explainer variant {variant!r} / combination {combine!r}")

    def run(model: FewShotModel, inputs: EpisodeInputs, seed: int) -> tuple[torch.Tensor, bool, dict]:
        per_level = level_contributions(model, inputs)
        wts = ablation_weights(model, inputs) if combine == "ablation" else \
            torch.full((per_level.shape[0],), 1.0 / per_level.shape[0])
        maps = (per_level * wts.to(per_level).view(-1, 1, 1, 1)).sum(0)
        if variant == "masked":
            maps = maps * blurred_masks(inputs)
        elif variant == "signed":
            maps = maps * (2 * blurred_masks(inputs) - 1)
        return maps, variant == "signed", {"level_weights": tuple(float(x) for x in wts)}

    return run


for _variant in ("unmasked", "masked", "signed"):
    FEWSHOT_EXPLAINERS.register(f"affinity-{_variant}" if _variant != "unmasked" else "affinity")(
        affinity_explainer(_variant, "mean"))
    FEWSHOT_EXPLAINERS.register(f"affinity-{_variant}-ablation" if _variant != "unmasked" else "affinity-ablation")(
        affinity_explainer(_variant, "ablation"))


def explain_support(model: FewShotModel, query: np.ndarray, supports: Sequence[np.ndarray],
                    masks: Sequence[np.ndarray], method: str = "affinity-masked",
                    roi: str | np.ndarray = "prediction", seed: int = 0,
                    inputs: EpisodeInputs | None = None) -> SupportAttribution:
    """Attribute the query segmentation to support pixels with explainer ``method``.

    Args:
        model: a ``FewShotModel``.
        query: RGB uint8 ``(H, W, 3)``; supports: K RGB uint8 images; masks: K ``(H_k, W_k)``.
        method: a name from ``FEWSHOT_EXPLAINERS.names()``.
        roi: the query region explained (see ``vlx.fewshot.inputs.prepare``).
        seed: seed of the random parts (random map, SHAP/LIME coalitions, ties).
        inputs: an already prepared episode (skips ``prepare``; ``query``/``supports``/``masks``
            are then only used for their sizes).
    """
    fn = FEWSHOT_EXPLAINERS.get(method)
    t0 = time.perf_counter()
    inputs = inputs if inputs is not None else prepare(model, query, supports, masks, roi)
    raw, signed, info = fn(model, inputs, seed)
    raw_np = raw.detach().float().cpu().numpy().astype(np.float32)
    if not np.isfinite(raw_np).all():
        raise FloatingPointError(f"{method} produced non-finite attributions")
    maps = tuple(resize_map(raw_np[k], hw) for k, hw in enumerate(inputs.support_hw))
    return SupportAttribution(maps, raw_np, method, signed, time.perf_counter() - t0,
                              tuple(info.get("level_weights", ())))
