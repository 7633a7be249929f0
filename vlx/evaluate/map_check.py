"""Every explanation measures its own map: deletion and insertion of the map next to random maps
at the same budget, all composites in one batched pass.

The curves are the ones of ``vlx.evaluate.deletion`` (ranking with seeded ties, ``round`` step
schedule, trapezoid AUC, all from ``vlx.evaluate.curves``), with the "removed" content given by
the caller (the pipeline passes the same blurred input its causal region scores use).

Random maps come in antithetic pairs. The first of a pair draws one uniform value per element of
the method's own map resolution (``raw_shape``: a 7×7 CAM gets a 7×7 random map; pair ``j`` is
drawn from ``seed + j``) and is upsampled to the model input the way the map is, so it has the
map's blockiness. The second is the same map in reverse order (the negated map, as random as the
first): removing its top ``f`` keeps the first's top ``1 - f``, so its deletion curve is the
first's insertion curve read backwards and its insertion curve the first's deletion curve read
backwards, at no extra cost (exact up to the rounding of the step schedule, and ties).

Cost: ``2 (steps - 1) (1 + ceil(n_random / 2)) + 2`` composites (the two ends of every curve are
the same two images: the input and the baseline). The pipeline's default, 5 steps and 2 random
maps, is 18 forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vlx.evaluate.base import map_to_input
from vlx.evaluate.curves import auc, moved_masks, pixel_ranks, step_counts
from vlx.models.classifier import ImageClassifier
from vlx.regions.causal import composite_probs
from vlx.types import MetricResult

DEFAULT_STEPS = 5
DEFAULT_RANDOM = 2
SENTENCE_FRACTION = 0.2


@dataclass(frozen=True)
class MapCheck:
    """A map's deletion and insertion curves next to random maps' at the same budget.

    Attributes:
        fractions: ``steps + 1`` shares of the input perturbed, 0 to 1.
        deletion, insertion: the map's curves, the target's probability in ``[0, 1]`` per fraction.
        random_deletion, random_insertion: one curve per random map.
        baseline: what "removed" means (``blur``).
    """

    fractions: tuple[float, ...]
    deletion: tuple[float, ...]
    insertion: tuple[float, ...]
    random_deletion: tuple[tuple[float, ...], ...]
    random_insertion: tuple[tuple[float, ...], ...]
    baseline: str = "blur"

    @property
    def steps(self) -> int:
        return len(self.fractions) - 1

    @property
    def deletion_auc(self) -> float:
        """The map's deletion AUC in ``[0, 1]`` (lower is better)."""
        return auc(np.asarray(self.deletion), np.asarray(self.fractions))

    @property
    def insertion_auc(self) -> float:
        """The map's insertion AUC in ``[0, 1]`` (higher is better)."""
        return auc(np.asarray(self.insertion), np.asarray(self.fractions))

    @property
    def random_deletion_auc(self) -> float:
        """Mean deletion AUC of the random maps."""
        return float(np.mean([auc(np.asarray(c), np.asarray(self.fractions)) for c in self.random_deletion]))

    @property
    def random_insertion_auc(self) -> float:
        """Mean insertion AUC of the random maps."""
        return float(np.mean([auc(np.asarray(c), np.asarray(self.fractions)) for c in self.random_insertion]))

    def after_deleting(self, fraction: float = SENTENCE_FRACTION) -> tuple[float, float, float]:
        """``(share, map, random)``: the curve point nearest ``fraction`` (the exact share of input
        pixels removed there), the probability once that share is removed in the map's order, and
        the mean over random maps. Raises ValueError when ``fraction`` is not a point of the curve
        (within 0.001: the steps are rounded to whole pixels)."""
        k = _point(self.fractions, fraction)
        return self.fractions[k], self.deletion[k], float(np.mean([c[k] for c in self.random_deletion]))

    def metrics(self) -> tuple[MetricResult, MetricResult]:
        """Deletion and insertion as ``MetricResult`` s, the random maps' AUCs in ``details``."""
        common = {"baseline": self.baseline, "steps": self.steps, "fractions": list(self.fractions),
                  "random_maps": len(self.random_deletion)}
        d = MetricResult("deletion", self.deletion_auc, False, "faithfulness",
                         {"random": self.random_deletion_auc, "curve": list(self.deletion),
                          "random_curves": [list(c) for c in self.random_deletion], **common})
        i = MetricResult("insertion", self.insertion_auc, True, "faithfulness",
                         {"random": self.random_insertion_auc, "curve": list(self.insertion),
                          "random_curves": [list(c) for c in self.random_insertion], **common})
        return d, i


def _point(fractions: tuple[float, ...], fraction: float) -> int:
    k = int(np.argmin(np.abs(np.asarray(fractions) - fraction)))
    if abs(fractions[k] - fraction) > 1e-3:
        raise ValueError(f"{fraction} is not a point of the curve ({len(fractions) - 1} steps)")
    return k


def random_maps(shape: tuple[int, ...], n: int, seed: int = 0) -> list[np.ndarray]:
    """The first map of each of ``ceil(n / 2)`` antithetic pairs: map ``j`` is
    ``default_rng(seed + j).random(shape)``, float32 in ``[0, 1)``."""
    return [np.random.default_rng(seed + j).random(shape).astype(np.float32) for j in range((n + 1) // 2)]


def measure_map(model: ImageClassifier, x: torch.Tensor, base: torch.Tensor, values: np.ndarray, target_index: int,
                raw_shape: tuple[int, int] | None = None, steps: int = DEFAULT_STEPS, n_random: int = DEFAULT_RANDOM,
                seed: int = 0, baseline: str = "blur", batch_size: int | None = None) -> MapCheck:
    """Deletion and insertion of a map and of ``n_random`` random maps, one batched pass.

    Args:
        model: the classifier; x: its input ``(1, 3, h, w)``; base: the "removed" input, same shape.
        values: the map, float ``(H, W)`` at any resolution (resized to ``(h, w)`` bilinearly, as
            ``vlx.evaluate.deletion`` does), ranked by signed value, ties in a seeded order.
        target_index: the class whose softmax probability the curves follow.
        raw_shape: the method's own map resolution for the random maps (default ``values.shape``).
        steps: curve points minus one; n_random: random maps (``>= 1``); seed: ties and random maps.
        baseline: a label for what ``base`` is (recorded, not used).
    """
    if n_random < 1:
        raise ValueError(f"n_random must be >= 1, got {n_random}")
    if x.shape[0] != 1 or base.shape != x.shape:
        raise ValueError(f"x must be (1, C, h, w) and base the same shape; got {tuple(x.shape)}, {tuple(base.shape)}")
    size = tuple(x.shape[-2:])
    maps = [np.asarray(values, dtype=np.float64)] + random_maps(tuple(raw_shape or np.shape(values)), n_random, seed)
    counts = torch.from_numpy(step_counts(size[0] * size[1], steps))
    inner = counts[1:-1]
    masks = [torch.zeros(1, *size, dtype=torch.bool), torch.ones(1, *size, dtype=torch.bool)]
    for v in maps:
        ranks = torch.from_numpy(pixel_ranks(map_to_input(v, size), seed))
        moved = moved_masks(ranks, inner)                                      # (steps - 1, h, w)
        masks += [moved, ~moved]
    p = composite_probs(model, x, base, torch.cat(masks)[:, None].float(), int(target_index), batch_size)
    full, removed = float(p[0]), float(p[1])
    dels, ins = [], []
    at, k = 2, steps - 1
    for _ in maps:
        dels.append((full, *map(float, p[at:at + k]), removed))
        ins.append((removed, *map(float, p[at + k:at + 2 * k]), full))
        at += 2 * k
    rdel, rins = [], []
    for d, i in zip(dels[1:], ins[1:]):
        rdel += [d, i[::-1]]                  # the pair's second map: the first in reverse order
        rins += [i, d[::-1]]
    fractions = tuple(float(c) / (size[0] * size[1]) for c in counts)
    return MapCheck(fractions, dels[0], ins[0], tuple(rdel[:n_random]), tuple(rins[:n_random]), baseline)
