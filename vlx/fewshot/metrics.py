"""Faithfulness of support-side explanations, batched, following AffinityExplainer's protocol
(``affex/metrics.py``) by default.

Support pixels of all K shots are ranked jointly by attribution (signed value, most important
first; ties in a seeded random order) at the model input. **Deletion** removes them, ``steps``
equal chunks at a time (``k n // steps`` pixels after step ``k``, the reference's schedule;
default 75 steps), and tracks a measure of the query prediction; **insertion** starts from an
all-removed support and puts them back. A removed pixel is removed from the support image (0 of
the normalised input, mid grey for EfficientNet-Lite0) *and* from its support mask (0). The score
is the area under the curve over the step index ``k / steps`` (trapezoid on ``[0, 1]``, the
reference's; the exact fraction perturbed, ``(k n // steps) / n``, differs from it by less than
``1 / n``): deletion lower is better, insertion higher is better, and ``insertion - deletion``
higher is better.

Measures: ``probability`` (default, the reference's) — the mean query foreground probability
(2-class softmax) over the ROI, in ``[0, 1]``; ``miou`` (vlx's measure) — the query foreground
IoU against a reference (the ground truth when given, else the model's own unperturbed
prediction), in ``[0, 1]``; averaged over episodes it is the few-shot segmentation mIoU;
``logit`` — the mean query foreground logit over the ROI.

**mIoULoss@p**: the query IoU lost when only the top ``p`` percent of support pixels (and their
mask values) are kept, the rest removed: ``IoU(all kept) - IoU(top p% kept)``; lower is better.

Ranking, schedule, batching and AUC come from ``vlx.evaluate.curves``: every composite of a
curve is built from one boolean perturbation mask and scored ``batch_size`` support sets per
forward pass.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

from vlx.evaluate.curves import auc, moved_masks, pixel_ranks, score_batches, step_counts
from vlx.fewshot.explain import SupportAttribution
from vlx.fewshot.inputs import EpisodeInputs, query_prediction, roi_score
from vlx.fewshot.protocol import FewShotModel, FewShotOutput
from vlx.types import MetricResult

Measure = Literal["probability", "miou", "logit"]
MEASURES: tuple[str, ...] = ("probability", "miou", "logit")
Mode = Literal["deletion", "insertion"]
REFERENCE_STEPS = 75  # AffinityExplainer's curves


def iou(pred: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Foreground IoU per item: bool ``(B, H, W)`` predictions vs a bool ``(H, W)`` reference →
    float64 ``(B,)`` in ``[0, 1]`` (1 when both are empty)."""
    inter = (pred & ref).flatten(1).sum(1).double()
    union = (pred | ref).flatten(1).sum(1).double()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union))


def reference_mask(model: FewShotModel, inputs: EpisodeInputs, gt: np.ndarray | None) -> torch.Tensor:
    """The IoU reference, bool ``(H, W)`` at the query size: ``gt`` if given, else the model's
    unperturbed prediction."""
    if gt is not None:
        if gt.shape != inputs.query_hw:
            raise ValueError(f"ground truth is {gt.shape} but the query is {inputs.query_hw}")
        return torch.from_numpy(np.asarray(gt, dtype=bool)).to(inputs.query.device)
    with torch.no_grad():
        return query_prediction(model.forward(inputs.query, inputs.support, inputs.masks), inputs.query_hw)[0]


def roi_probability(out: FewShotOutput, roi: torch.Tensor) -> torch.Tensor:
    """Mean foreground probability (2-class softmax) over the ROI, float ``(B,)`` in ``[0, 1]``."""
    p = out.foreground_probability()
    r = roi.to(p.dtype)
    return (p * r).flatten(1).sum(1) / r.sum()


@torch.no_grad()
def measure_batch(model: FewShotModel, inputs: EpisodeInputs, keep: torch.Tensor, measure: Measure,
                  ref: torch.Tensor | None, batch_size: int = 8) -> np.ndarray:
    """The measure for each support set kept by ``keep`` bool ``(B, K, h, w)`` (False: the pixel
    is removed from the support image and from its mask) → float64 ``(B,)``."""
    if measure not in MEASURES:
        raise ValueError(f"measure must be one of {', '.join(MEASURES)}, got {measure!r}")

    def score(i0: int, i1: int) -> torch.Tensor:
        k = keep[i0:i1]
        support = inputs.support * k[:, :, None].to(inputs.support.dtype)
        masks = inputs.masks * k.to(inputs.masks.dtype)
        out = model.forward(inputs.query, support, masks)
        if measure == "miou":
            return iou(query_prediction(out, inputs.query_hw), ref)
        if measure == "logit":
            return roi_score(out, inputs.roi)
        return roi_probability(out, inputs.roi)

    return score_batches(score, len(keep), batch_size)


def support_curve(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
                  mode: Mode = "deletion", measure: Measure = "probability", gt: np.ndarray | None = None,
                  steps: int = REFERENCE_STEPS, batch_size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The support-side deletion or insertion curve.

    Returns ``(fractions, values)``: float64 ``(steps + 1,)`` each; ``fractions`` runs from 0 to
    1 (share of support pixels removed / inserted, ``(k n // steps) / n``), ``values`` is the
    measure."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if attribution.raw.shape != tuple(inputs.masks.shape[1:]):
        raise ValueError(f"attribution is {attribution.raw.shape}, the support is {tuple(inputs.masks.shape[1:])}")
    ranks = torch.from_numpy(pixel_ranks(attribution.raw, seed)).to(inputs.support.device)
    n = ranks.numel()
    counts = step_counts(n, steps, "floor")
    moved = moved_masks(ranks, torch.from_numpy(counts))                 # (S, K, h, w)
    keep = ~moved if mode == "deletion" else moved
    ref = reference_mask(model, inputs, gt) if measure == "miou" else None
    return counts.astype(np.float64) / n, measure_batch(model, inputs, keep, measure, ref, batch_size)


def miou_loss(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
              percents: Sequence[float] = (1.0,), gt: np.ndarray | None = None, batch_size: int = 8,
              seed: int = 0) -> np.ndarray:
    """mIoULoss@p for each ``p`` in ``percents`` (in ``(0, 100]``) → float64 array, in ``[-1, 1]``:
    query IoU with the whole support minus the IoU with only the top ``p`` percent of support
    pixels kept (``floor(p n / 100)`` pixels; the others removed from the images and masks)."""
    ps = np.asarray(percents, dtype=np.float64)
    if ((ps <= 0) | (ps > 100)).any():
        raise ValueError("percents must be in (0, 100]")
    ranks = torch.from_numpy(pixel_ranks(attribution.raw, seed)).to(inputs.support.device)
    n = ranks.numel()
    counts = np.r_[n, np.floor(ps * n / 100 + 1e-9)].astype(np.int64)
    keep = moved_masks(ranks, torch.from_numpy(counts))
    ref = reference_mask(model, inputs, gt)
    vals = measure_batch(model, inputs, keep, "miou", ref, batch_size)
    return vals[0] - vals[1:]


def fewshot_metrics(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
                    gt: np.ndarray | None = None, measure: Measure = "probability", steps: int = REFERENCE_STEPS,
                    percent: float = 1.0, batch_size: int = 8, seed: int = 0) -> list[MetricResult]:
    """Deletion AUC, insertion AUC, their difference and mIoULoss@``percent`` as MetricResults
    (values in ``[0, 1]`` for the ``probability`` and ``miou`` measures; the curves are in
    ``details``; mIoULoss always measures the IoU)."""
    res = []
    curves = {}
    for mode in ("deletion", "insertion"):
        x, y = support_curve(model, inputs, attribution, mode, measure, gt, steps, batch_size, seed)
        curves[mode] = auc(y)                 # over the step index k / steps, as the reference
        res.append(MetricResult(f"support-{mode}", curves[mode], mode == "insertion", "fewshot",
                                {"measure": measure, "steps": steps, "fractions": x.tolist(), "values": y.tolist()}))
    res.append(MetricResult("support-insertion-minus-deletion", curves["insertion"] - curves["deletion"], True,
                            "fewshot", {"measure": measure, "steps": steps}))
    loss = float(miou_loss(model, inputs, attribution, (percent,), gt, batch_size, seed)[0])
    res.append(MetricResult(f"miou-loss@{percent:g}%", loss, False, "fewshot",
                            {"reference": "ground truth" if gt is not None else "prediction"}))
    return res
