"""Faithfulness of support-side explanations, batched.

Support pixels of all K shots are ranked jointly by attribution (signed value, most important
first; ties in a seeded random order) at the model input. **Deletion** sets them, ``steps``
equal chunks at a time, to the removed value (0 of the normalised input, mid grey for
EfficientNet-Lite0) and tracks a measure of the query prediction; **insertion** starts from an
all-grey support and puts them back. The support masks are never changed. The score is the area
under the curve over the fraction of support pixels perturbed (trapezoid on ``[0, 1]``): deletion
lower is better, insertion higher is better, and ``insertion - deletion`` higher is better.

Measures: ``miou`` — the query foreground IoU against a reference (the ground truth when given,
else the model's own unperturbed prediction), in ``[0, 1]``; averaged over episodes it is the
few-shot segmentation mIoU; ``logit`` — the mean query foreground logit over the ROI.

**mIoULoss@p**: the query IoU lost when only the top ``p`` percent of support pixels are kept
(the rest removed): ``IoU(all kept) - IoU(top p% kept)``; lower is better.

Every composite of a curve is built as one ``(S, K, 3, h, w)`` tensor from one boolean
perturbation mask and scored ``batch_size`` support sets per forward pass.
"""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

from vlx.fewshot.explain import SupportAttribution
from vlx.fewshot.inputs import EpisodeInputs, query_prediction, roi_score
from vlx.fewshot.protocol import FewShotModel
from vlx.types import MetricResult

Measure = Literal["miou", "logit"]
Mode = Literal["deletion", "insertion"]


def support_ranks(raw: np.ndarray, seed: int = 0) -> np.ndarray:
    """Rank of every support pixel, int64 ``(K, h, w)``, 0 = most important (highest signed
    value); ties are ordered by a seeded random permutation."""
    flat = np.asarray(raw, dtype=np.float64).ravel()
    if not np.isfinite(flat).all():
        raise ValueError("the attribution holds non-finite values")
    tie = np.random.default_rng(seed).permutation(flat.size)
    order = np.lexsort((tie, -flat))
    ranks = np.empty(flat.size, dtype=np.int64)
    ranks[order] = np.arange(flat.size)
    return ranks.reshape(raw.shape)


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


@torch.no_grad()
def measure_batch(model: FewShotModel, inputs: EpisodeInputs, support: torch.Tensor, measure: Measure,
                  ref: torch.Tensor | None, batch_size: int = 8) -> np.ndarray:
    """The measure for each support set of ``support`` ``(B, K, 3, h, w)`` → float64 ``(B,)``."""
    vals = []
    for i in range(0, len(support), batch_size):
        chunk = support[i:i + batch_size]
        out = model.forward(inputs.query, chunk, inputs.masks.expand(len(chunk), -1, -1, -1))
        if measure == "miou":
            vals.append(iou(query_prediction(out, inputs.query_hw), ref))
        elif measure == "logit":
            vals.append(roi_score(out, inputs.roi).double())
        else:
            raise ValueError(f"measure must be 'miou' or 'logit', got {measure!r}")
    return torch.cat(vals).cpu().numpy()


def _kept(inputs: EpisodeInputs, keep: torch.Tensor) -> torch.Tensor:
    """Support composites: ``keep`` bool ``(S, K, h, w)`` → ``(S, K, 3, h, w)``, removed pixels 0."""
    return inputs.support * keep[:, :, None].to(inputs.support.dtype)


def support_curve(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
                  mode: Mode = "deletion", measure: Measure = "miou", gt: np.ndarray | None = None,
                  steps: int = 20, batch_size: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The support-side deletion or insertion curve.

    Returns ``(fractions, values)``: float64 ``(steps + 1,)`` each; ``fractions`` runs from 0 to
    1 (share of support pixels removed / inserted), ``values`` is the measure."""
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    if attribution.raw.shape != tuple(inputs.masks.shape[1:]):
        raise ValueError(f"attribution is {attribution.raw.shape}, the support is {tuple(inputs.masks.shape[1:])}")
    ranks = torch.from_numpy(support_ranks(attribution.raw, seed)).to(inputs.support.device)
    n = ranks.numel()
    counts = torch.from_numpy(np.round(np.linspace(0, n, steps + 1)).astype(np.int64)).to(ranks.device)
    moved = ranks[None] < counts.view(-1, 1, 1, 1)                      # (S, K, h, w)
    keep = ~moved if mode == "deletion" else moved
    ref = reference_mask(model, inputs, gt) if measure == "miou" else None
    vals = measure_batch(model, inputs, _kept(inputs, keep), measure, ref, batch_size)
    return counts.cpu().double().numpy() / n, vals


def auc(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoid area under ``y(x)``."""
    return float(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2))


def miou_loss(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
              percents: Sequence[float] = (1.0,), gt: np.ndarray | None = None, batch_size: int = 8,
              seed: int = 0) -> np.ndarray:
    """mIoULoss@p for each ``p`` in ``percents`` (in ``(0, 100]``) → float64 array, in ``[-1, 1]``:
    query IoU with the whole support minus the IoU with only the top ``p`` percent kept."""
    ps = np.asarray(percents, dtype=np.float64)
    if ((ps <= 0) | (ps > 100)).any():
        raise ValueError("percents must be in (0, 100]")
    ranks = torch.from_numpy(support_ranks(attribution.raw, seed)).to(inputs.support.device)
    counts = torch.from_numpy(np.round(np.r_[100.0, ps] / 100 * ranks.numel()).astype(np.int64)).to(ranks.device)
    keep = ranks[None] < counts.view(-1, 1, 1, 1)
    ref = reference_mask(model, inputs, gt)
    vals = measure_batch(model, inputs, _kept(inputs, keep), "miou", ref, batch_size)
    return vals[0] - vals[1:]


def fewshot_metrics(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
                    gt: np.ndarray | None = None, measure: Measure = "miou", steps: int = 20,
                    percent: float = 1.0, batch_size: int = 8, seed: int = 0) -> list[MetricResult]:
    """Deletion AUC, insertion AUC, their difference and mIoULoss@``percent`` as MetricResults
    (values in ``[0, 1]`` for the ``miou`` measure; the curves are in ``details``)."""
    res = []
    curves = {}
    for mode in ("deletion", "insertion"):
        x, y = support_curve(model, inputs, attribution, mode, measure, gt, steps, batch_size, seed)
        curves[mode] = auc(x, y)
        res.append(MetricResult(f"support-{mode}", curves[mode], mode == "insertion", "fewshot",
                                {"measure": measure, "fractions": x.tolist(), "values": y.tolist()}))
    res.append(MetricResult("support-insertion-minus-deletion", curves["insertion"] - curves["deletion"], True,
                            "fewshot", {"measure": measure}))
    loss = float(miou_loss(model, inputs, attribution, (percent,), gt, batch_size, seed)[0])
    res.append(MetricResult(f"miou-loss@{percent:g}%", loss, False, "fewshot",
                            {"reference": "ground truth" if gt is not None else "prediction"}))
    return res
