"""Metrics for MLLM answer maps: deletion / insertion on the answer token's probability
(batched, through ``vlx.evaluate.curves``), the same next to random maps (``compare_with_random``),
IoU with a ground-truth mask, and the time a method costs against one forward pass."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from vlx.evaluate.curves import auc, baseline_image, moved_masks, pixel_ranks, step_counts
from vlx.mllm.context import AnswerContext, AnswerMap
from vlx.mllm.methods import MLLMMethod, perturbed_probabilities
from vlx.types import MetricResult


def deletion_insertion(ctx: AnswerContext, amap: AnswerMap, steps: int = 10, batch_size: int = 8,
                       baseline: str = "mean", seed: int = 0) -> tuple[MetricResult, MetricResult]:
    """Deletion and insertion AUCs for the map of answer token ``amap.tokens[0]``.

    Pixels are ranked by ``amap.values`` (most important first; ties in a random order drawn
    from ``seed``, as for the image metrics: TAM maps hold many exact zeros); deletion replaces
    the top ``round(k n / steps)`` pixels with the baseline (``mean`` colour, ``blur`` or
    ``zero``: ``vlx.evaluate.curves.baseline_image``), insertion starts from the baseline and
    restores them. Each curve has ``steps + 1`` points of the teacher-forced token probability
    in ``[0, 1]``; the AUC is the trapezoid area over the fraction of pixels perturbed. Deletion:
    lower is better; insertion: higher is better. All perturbed images of both curves are
    scored in batches of ``batch_size``.
    """
    t = amap.tokens[0]
    fractions, dele, ins = _curves(ctx, amap.values, [t], steps, batch_size, baseline, seed)
    dele, ins = dele[:, 0], ins[:, 0]
    details = {"token": t, "method": amap.method, "steps": steps, "baseline": baseline, "seed": seed,
               "fractions": fractions.tolist()}
    return (MetricResult("mllm-deletion", auc(dele, fractions), False, "faithfulness",
                         {**details, "curve": dele.tolist()}),
            MetricResult("mllm-insertion", auc(ins, fractions), True, "faithfulness",
                         {**details, "curve": ins.tolist()}))


def iou_with_mask(amap: AnswerMap, mask: np.ndarray, seed: int = 0) -> MetricResult:
    """IoU in ``[0, 1]`` of the map's top pixels (as many as the mask holds; ties in a random
    order drawn from ``seed``) with a boolean ``(H, W)`` mask."""
    if mask.shape != amap.values.shape:
        raise ValueError(f"mask shape {mask.shape} differs from the map's {amap.values.shape}")
    k = int(mask.sum())
    if k == 0:
        raise ValueError("the ground-truth mask is empty")
    top = pixel_ranks(amap.values, seed) < k
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


@dataclass(frozen=True)
class RandomComparison:
    """One answer map's deletion / insertion AUCs next to random maps' at the same budget.

    Attributes:
        method: the map's method.
        deletion, insertion: the map's AUCs in ``[0, 1]``.
        random_deletion, random_insertion: one AUC per random map.
        token: the answer token whose probability the curves follow.
        fractions: ``steps + 1`` shares of the image perturbed, 0 to 1.
        deletion_curve, insertion_curve: the map's curves (the token's probability per fraction).
        random_deletion_curves, random_insertion_curves: one curve per random map.
        baseline: what "removed" means (``mean``, ``blur`` or ``zero``).
    """

    method: str
    deletion: float
    insertion: float
    random_deletion: tuple[float, ...]
    random_insertion: tuple[float, ...]
    token: int = 0
    fractions: tuple[float, ...] = ()
    deletion_curve: tuple[float, ...] = ()
    insertion_curve: tuple[float, ...] = ()
    random_deletion_curves: tuple[tuple[float, ...], ...] = ()
    random_insertion_curves: tuple[tuple[float, ...], ...] = ()
    baseline: str = "mean"

    @property
    def deletion_margin(self) -> float:
        """Mean random deletion AUC minus the map's (``> 0``: the map deletes faster than random)."""
        return float(np.mean(self.random_deletion)) - self.deletion

    @property
    def insertion_margin(self) -> float:
        """The map's insertion AUC minus the mean random one (``> 0``: better than random)."""
        return self.insertion - float(np.mean(self.random_insertion))

    @property
    def better_than_random(self) -> bool:
        """Both curves beat the mean of the random maps."""
        return self.deletion_margin > 0 and self.insertion_margin > 0

    @property
    def verdict(self) -> str:
        """In words: ``better than random`` (both curves), ``no better than random`` (neither),
        or ``better than random on deletion only`` / ``... on insertion only``."""
        d, i = self.deletion_margin > 0, self.insertion_margin > 0
        if d == i:
            return "better than random" if d else "no better than random"
        return f"better than random on {'deletion' if d else 'insertion'} only"

    def metrics(self) -> tuple[MetricResult, MetricResult]:
        """``mllm-deletion`` and ``mllm-insertion`` as ``MetricResult`` s, with the curves and
        the random maps' mean AUC (``random``) and curves in ``details`` (the keys of
        ``vlx.evaluate.map_check.MapCheck.metrics``)."""
        common = {"token": self.token, "method": self.method, "baseline": self.baseline,
                  "steps": len(self.fractions) - 1, "fractions": list(self.fractions),
                  "random_maps": len(self.random_deletion)}
        d = MetricResult("mllm-deletion", self.deletion, False, "faithfulness",
                         {"random": float(np.mean(self.random_deletion)), "curve": list(self.deletion_curve),
                          "random_curves": [list(c) for c in self.random_deletion_curves], **common})
        i = MetricResult("mllm-insertion", self.insertion, True, "faithfulness",
                         {"random": float(np.mean(self.random_insertion)), "curve": list(self.insertion_curve),
                          "random_curves": [list(c) for c in self.random_insertion_curves], **common})
        return d, i


def compare_with_random(ctx: AnswerContext, amap: AnswerMap, n_random: int = 3, steps: int = 10,
                        batch_size: int = 8, baseline: str = "mean", seed: int = 0) -> RandomComparison:
    """Deletion and insertion of ``amap`` against ``n_random`` random maps with the same curves
    (``steps``, ``baseline``, tie seed). Each random map draws one uniform value per image token
    (seeded by ``seed + i``) and maps it onto the image through the model's token layout, so it
    has the blockiness of a token-level map. Costs ``2 (steps + 1) (n_random + 1)`` forward
    passes, batched."""
    return compare_maps_with_random(ctx, [amap], n_random, steps, batch_size, baseline, seed)[0]


def compare_maps_with_random(ctx: AnswerContext, maps: Sequence[AnswerMap], n_random: int = 3, steps: int = 10,
                             batch_size: int = 8, baseline: str = "mean",
                             seed: int = 0) -> list[RandomComparison]:
    """``compare_with_random`` for several answer maps of one answer (e.g. one per token), with
    the same result for each: the random maps do not depend on the token, so their perturbed
    images are scored once, for every map's token in the same forward passes. Costs
    ``2 (steps + 1) (len(maps) + n_random)`` forward passes, batched."""
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    if not maps:
        return []
    own = [_curves(ctx, m.values, [m.tokens[0]], steps, batch_size, baseline, seed) for m in maps]
    tokens = sorted({m.tokens[0] for m in maps})
    layout = ctx.inputs.layout
    rnd = []
    for k in range(n_random):
        v = np.random.default_rng(seed + k).random(layout.n).astype(np.float32)
        rnd.append(_curves(ctx, layout.to_image(v), tokens, steps, batch_size, baseline, seed))
    out = []
    for m, (fractions, dele, ins) in zip(maps, own):
        col = tokens.index(m.tokens[0])
        rd = [tuple(float(x) for x in r[1][:, col]) for r in rnd]
        ri = [tuple(float(x) for x in r[2][:, col]) for r in rnd]
        out.append(RandomComparison(
            m.method, auc(dele[:, 0], fractions), auc(ins[:, 0], fractions),
            tuple(auc(np.asarray(c), fractions) for c in rd), tuple(auc(np.asarray(c), fractions) for c in ri),
            m.tokens[0], tuple(float(f) for f in fractions), tuple(float(x) for x in dele[:, 0]),
            tuple(float(x) for x in ins[:, 0]), tuple(rd), tuple(ri), baseline))
    return out


def _curves(ctx: AnswerContext, values: np.ndarray, tokens: list[int], steps: int, batch_size: int, baseline: str,
            seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(fractions (S+1,), deletion (S+1, T), insertion (S+1, T))`` of answer ``tokens`` for a
    map's pixel ranking: the curves of ``deletion_insertion``, for several tokens at once."""
    image = ctx.inputs.image.pixels
    base = baseline_image(image, baseline)
    ranks = torch.from_numpy(pixel_ranks(values, seed))
    counts = step_counts(ranks.numel(), steps)
    moved = moved_masks(ranks, torch.from_numpy(counts)).numpy()[..., None]   # (S, H, W, 1)
    views = [v for v in np.where(moved, base, image)] + [v for v in np.where(moved, image, base)]
    probs = perturbed_probabilities(ctx, views, tokens, batch_size).astype(np.float64)
    return counts / ranks.numel(), probs[: steps + 1], probs[steps + 1:]
