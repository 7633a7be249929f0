"""Metrics for MLLM answer maps: deletion / insertion on the answer token's probability
(batched), IoU with a ground-truth mask, and the time a method costs against one forward pass."""

from __future__ import annotations

import time

import numpy as np
import torch

from vlx.mllm.context import AnswerContext, AnswerMap
from vlx.mllm.methods import MLLMMethod, perturbed_probabilities
from vlx.types import MetricResult


def deletion_insertion(ctx: AnswerContext, amap: AnswerMap, steps: int = 10, batch_size: int = 8,
                       baseline: str = "mean") -> tuple[MetricResult, MetricResult]:
    """Deletion and insertion AUCs for the map of answer token ``amap.tokens[0]``.

    Pixels are ranked by ``amap.values`` (most important first; ties broken by position);
    deletion replaces the top ``k/steps`` share with the baseline (``mean`` colour, or
    ``blur``), insertion starts from the baseline and restores them. Each curve has
    ``steps + 1`` points of the teacher-forced token probability in ``[0, 1]``; the AUC is their
    trapezoid mean. Deletion: lower is better; insertion: higher is better. All perturbed images
    of both curves are scored in batches of ``batch_size``.
    """
    image = ctx.inputs.image.pixels
    base = _baseline(image, baseline)
    order = np.argsort(-amap.values.ravel(), kind="stable")
    n = order.size
    views = []
    for mode in ("deletion", "insertion"):
        for k in range(steps + 1):
            keep = np.zeros(n, bool)
            keep[order[: round(n * k / steps)]] = True
            keep = keep.reshape(image.shape[:2])
            if mode == "deletion":
                views.append(np.where(keep[..., None], base, image))
            else:
                views.append(np.where(keep[..., None], image, base))
    t = amap.tokens[0]
    probs = perturbed_probabilities(ctx, views, [t], batch_size)[:, 0]
    dele, ins = probs[: steps + 1], probs[steps + 1:]
    auc = lambda c: float(np.trapezoid(c, dx=1.0 / steps))  # noqa: E731
    details = {"token": t, "method": amap.method, "steps": steps, "baseline": baseline}
    return (MetricResult("mllm-deletion", auc(dele), False, "faithfulness", {**details, "curve": dele.tolist()}),
            MetricResult("mllm-insertion", auc(ins), True, "faithfulness", {**details, "curve": ins.tolist()}))


def iou_with_mask(amap: AnswerMap, mask: np.ndarray) -> MetricResult:
    """IoU of the map's top pixels (as many as the mask holds) with a boolean ``(H, W)`` mask."""
    if mask.shape != amap.values.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the map's {amap.values.shape}")
    k = int(mask.sum())
    if k == 0:
        raise ValueError("the ground-truth mask is empty")
    top = np.zeros(mask.size, bool)
    top[np.argsort(-amap.values.ravel(), kind="stable")[:k]] = True
    top = top.reshape(mask.shape)
    iou = float((top & mask).sum() / (top | mask).sum())
    return MetricResult("mllm-iou", iou, True, "localisation", {"token": amap.tokens[0], "method": amap.method})


def mass_inside(amap: AnswerMap, mask: np.ndarray) -> float:
    """Share of the map's positive mass inside a boolean ``(H, W)`` mask, in ``[0, 1]``."""
    v = np.clip(amap.values, 0, None)
    total = float(v.sum())
    return float(v[mask].sum()) / total if total > 0 else 0.0


def forward_seconds(ctx: AnswerContext, repeats: int = 5) -> float:
    """Median wall time of one teacher-forced forward pass (no gradients) over the answer, after
    one warm-up pass."""
    times = []
    with torch.no_grad():
        ctx.model.forward(ctx.inputs)
        for _ in range(repeats):
            t0 = time.perf_counter()
            ctx.model.forward(ctx.inputs)
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def method_seconds(ctx: AnswerContext, method: MLLMMethod, tokens: list[int]) -> float:
    """Wall time of ``method`` on ``tokens`` with nothing cached (a fresh context)."""
    fresh = AnswerContext(ctx.model, ctx.inputs.image, ctx.question, ctx.answer_ids, ctx.prefill)
    t0 = time.perf_counter()
    method.explain(fresh, tokens)
    return time.perf_counter() - t0


def _baseline(image: np.ndarray, kind: str) -> np.ndarray:
    if kind == "mean":
        return np.broadcast_to(image.reshape(-1, 3).mean(0).round().astype(np.uint8), image.shape)
    if kind == "blur":
        from scipy.ndimage import gaussian_filter

        sigma = max(image.shape[:2]) / 20
        return gaussian_filter(image.astype(np.float32), (sigma, sigma, 0)).round().astype(np.uint8)
    raise ValueError(f"unknown baseline {kind!r}; use mean or blur")
