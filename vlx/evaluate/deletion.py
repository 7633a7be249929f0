"""Deletion and insertion (RISE, Petsiuk et al. 2018), batched.

Pixels are ranked by attribution in the model's input space, most important first. Deletion
replaces them, ``steps`` equal chunks at a time, with a baseline and tracks the target's
probability; insertion starts from the baseline and puts them back. The area under the curve
over the fraction of pixels perturbed (trapezoid, ``[0, 1]``) is the score: deletion lower is
better, insertion higher is better.

Choices left open by the paper, made here: the map is resized to the model input (bilinear,
antialiased) and ranked there by its signed value (ties broken by a seeded random order); the
default baseline is ``blur`` for both curves (RISE used zeros for deletion and a blurred image
for insertion); the curve has ``steps + 1`` points, the first with nothing perturbed. Ranking,
step schedule, baselines and AUC come from ``vlx.evaluate.curves`` (shared with the MLLM and
few-shot curves).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from vlx.evaluate.base import Metric, baseline_input, check_map, check_target, composite_probs, map_to_input
from vlx.evaluate.curves import auc, moved_masks, pixel_ranks, step_counts
from vlx.models.classifier import ImageClassifier
from vlx.registry import METRICS
from vlx.types import AttributionMap, ImageInput, MetricResult

Mode = Literal["deletion", "insertion"]


def _setup(model: ImageClassifier, image: ImageInput, amap: AttributionMap, baseline: str,
           seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    values = check_map(amap, image)
    x = model.to_input(image)
    base = baseline_input(model, image, x, baseline)
    ranks = torch.from_numpy(pixel_ranks(map_to_input(values, tuple(x.shape[-2:])), seed)).to(x.device)
    return x, base, ranks


def pixel_curve(model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                mode: Mode = "deletion", steps: int = 50, baseline: str = "blur", batch_size: int | None = None,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The deletion or insertion curve, batched.

    All ``steps + 1`` perturbation masks are built as one ``(steps + 1, 1, h, w)`` boolean tensor
    in model input space; composites are formed and scored ``batch_size`` at a time.

    Returns:
        ``(fractions, probs)``: two float64 arrays of shape ``(steps + 1,)``; ``fractions`` runs
        from 0 to 1 (share of pixels removed / inserted), ``probs`` is the softmax probability of
        ``target_index`` in ``[0, 1]``.
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"mode must be 'deletion' or 'insertion', got {mode!r}")
    target_index = check_target(model, target_index)
    x, base, ranks = _setup(model, image, amap, baseline, seed)
    counts = torch.from_numpy(step_counts(ranks.numel(), steps)).to(x.device)
    perturbed = moved_masks(ranks, counts)                      # (S, h, w): True = already moved
    take_base = perturbed if mode == "deletion" else ~perturbed
    probs = composite_probs(model, x, base, take_base[:, None], target_index, batch_size)
    return counts.cpu().double().numpy() / ranks.numel(), probs


@torch.no_grad()
def pixel_curve_loop(model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                     mode: Mode = "deletion", steps: int = 50, baseline: str = "blur",
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Reference implementation of ``pixel_curve``: one image and one forward pass per step, the
    way unbatched toolkits do it. Same inputs, outputs and ordering; used by tests and benchmarks."""
    target_index = check_target(model, target_index)
    x, base, ranks = _setup(model, image, amap, baseline, seed)
    flat_order = torch.argsort(ranks.ravel())
    current = (x if mode == "deletion" else base).clone()
    source = base if mode == "deletion" else x
    counts = step_counts(ranks.numel(), steps)
    w = x.shape[-1]
    probs = []
    done = 0
    for c in counts:
        idx = flat_order[done:int(c)]
        rows, cols = idx // w, idx % w
        current[0, :, rows, cols] = source[0, :, rows, cols]
        done = int(c)
        probs.append(float(model.logits(current).float().softmax(-1)[0, target_index]))
    return counts.astype(np.float64) / ranks.numel(), np.asarray(probs, dtype=np.float64)


class _PixelCurveMetric(Metric):
    mode: Mode = "deletion"
    category = "faithfulness"

    def __init__(self, steps: int = 50, baseline: str = "blur", batch_size: int | None = None, seed: int = 0) -> None:
        """Options: ``steps`` (curve points minus one), ``baseline`` (``blur``/``mean``/``zero``),
        ``batch_size`` (composites per forward pass), ``seed`` (tie-breaking order)."""
        self.steps = steps
        self.baseline = baseline
        self.batch_size = batch_size
        self.seed = seed

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        fractions, probs = pixel_curve(model, image, amap, target_index, self.mode, self.steps, self.baseline,
                                       self.batch_size, self.seed)
        return self.result(auc(probs, fractions), curve=[float(p) for p in probs],
                           fractions=[float(f) for f in fractions], baseline=self.baseline, steps=self.steps)


@METRICS.register
class Deletion(_PixelCurveMetric):
    """Deletion AUC in ``[0, 1]``: lower is better (the probability falls fast when the most
    important pixels go first). ``details``: ``curve`` (``steps + 1`` probabilities),
    ``fractions``, ``baseline``, ``steps``."""

    name = "deletion"
    mode = "deletion"
    higher_is_better = False


@METRICS.register
class Insertion(_PixelCurveMetric):
    """Insertion AUC in ``[0, 1]``: higher is better (the probability rises fast when the most
    important pixels come back first). ``details`` as for deletion."""

    name = "insertion"
    mode = "insertion"
    higher_is_better = True
