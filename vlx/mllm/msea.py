"""MSEA — Multi-Scale Explanation Aggregation: run any MLLM method on rescaled views of the image
(dynamic-resolution models: the image resized, so the token grid changes; fixed-resolution
models: the image shrunk onto a canvas of its own size), bring each map back to the original
image, and aggregate (mean, or weighted). Costs one explanation per scale; reported per scale."""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlx.mllm.context import AnswerContext, AnswerMap
from vlx.mllm.methods import MLLMMethod


def msea(ctx: AnswerContext, method: MLLMMethod, tokens: list[int], scales: Sequence[float] = (1.0, 0.75, 0.5),
         aggregation: str = "mean", weights: Sequence[float] | None = None) -> list[AnswerMap]:
    """MSEA over ``scales`` (factors of the image size, ``> 0``; ``> 1`` only for
    dynamic-resolution models).

    Each scale's map is brought to the image's ``(H, W)`` and normalised to ``[0, 1]`` (positive
    part over its max; ``|values|`` for signed methods) before aggregation. ``aggregation``:
    ``mean``, or ``weighted`` with ``weights`` (one per scale) or, when none are given, the
    answer token's probability at each scale. ``details["scales"]`` lists per scale: scale,
    seconds, image tokens, token probability and weight.
    """
    if not scales or any(s <= 0 for s in scales):
        raise ValueError("MSEA scales must be a non-empty list of positive factors")
    if aggregation not in ("mean", "weighted"):
        raise ValueError(f"unknown MSEA aggregation {aggregation!r}; use mean or weighted")
    if weights is not None and len(weights) != len(scales):
        raise ValueError("give one MSEA weight per scale")
    image = ctx.inputs.image
    h, w = image.size_hw
    per_scale: list[list[np.ndarray]] = []
    costs = []
    for s in scales:
        t0 = time.perf_counter()
        if s == 1.0:
            sub, box = ctx, (0, 0, w, h)
        else:
            view, box = ctx.model.view_for_scale(image, s)
            sub = AnswerContext(ctx.model, view, ctx.question, ctx.answer_ids, ctx.prefill)
        maps = method.explain(sub, tokens)
        with torch.no_grad():
            probs = [float(ctx.model.answer_probability(sub.inputs, t, ctx.answer_ids[t])[0]) for t in tokens]
        per_scale.append([_back(m, box, (h, w)) for m in maps])
        costs.append({"scale": float(s), "seconds": time.perf_counter() - t0,
                      "image_tokens": int(len(sub.image_positions)), "probability": probs})
    out = []
    for i, t in enumerate(tokens):
        if aggregation == "mean":
            wt = np.ones(len(scales))
        elif weights is not None:
            wt = np.asarray(weights, np.float64)
        else:
            wt = np.asarray([c["probability"][i] for c in costs], np.float64)
        wt = wt / wt.sum() if wt.sum() > 0 else np.full(len(scales), 1 / len(scales))
        agg = sum(float(wj) * per_scale[j][i] for j, wj in enumerate(wt)).astype(np.float32)
        details = {"scales": [{**c, "probability": c["probability"][i], "weight": float(wt[j])}
                              for j, c in enumerate(costs)], "aggregation": aggregation}
        out.append(AnswerMap((t,), ctx.token_text((t,)), f"msea({method.name})", agg, agg.ravel(), False,
                             sum(c["seconds"] for c in costs) / len(tokens), details))
    return out


def _back(m: AnswerMap, box: tuple[int, int, int, int], size_hw: tuple[int, int]) -> np.ndarray:
    """Crop the view's map to where the original image lies, resize to ``size_hw``, normalise."""
    x0, y0, x1, y1 = box
    v = np.abs(m.values) if m.signed else np.clip(m.values, 0, None)
    v = torch.from_numpy(np.ascontiguousarray(v[y0:y1, x0:x1]))[None, None]
    v = F.interpolate(v, size=size_hw, mode="bilinear", align_corners=False)[0, 0].numpy()
    mx = float(v.max())
    return v / mx if mx > 0 else v
