"""Sanity check by cascading model randomisation (Adebayo et al. 2018).

A copy of the model has its parameterised layers randomised one after another from the top
(output) down; after each, the map is recomputed with the same method and target and compared
with the original map by Spearman rank correlation. A method that explains the model must
produce a different map once the model is destroyed; a method whose map survives (an edge
detector, say) is not explaining the model.

Choices made here: "parameterised layers" are modules that own parameters directly, in
definition order (reversed for top-down); randomising a layer replaces each of its parameter
tensors with ``N(0, s^2)`` where ``s`` is the original tensor's standard deviation (0.1 for
single-element or constant tensors); buffers (e.g. BatchNorm statistics) are kept. A constant
recomputed map has no ranking and counts as correlation 0.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from vlx.evaluate.base import Metric, check_map
from vlx.models.classifier import ImageClassifier
from vlx.registry import METRICS
from vlx.types import AttributionMap, ImageInput, MetricResult

if TYPE_CHECKING:
    from vlx.attribute.base import AttributionMethod


def parameterised_layers(module: nn.Module) -> list[str]:
    """Dotted names of the modules that own parameters directly, in definition order
    (input → output for sequential models)."""
    return [name for name, m in module.named_modules() if any(True for _ in m.parameters(recurse=False))]


@torch.no_grad()
def randomise_(layer: nn.Module, generator: torch.Generator) -> None:
    """Replace each parameter of ``layer`` (not of its children) in place with ``N(0, s^2)``,
    ``s`` = the original tensor's standard deviation (0.1 when it has none)."""
    for p in layer.parameters(recurse=False):
        s = float(p.float().std()) if p.numel() > 1 else 0.0
        s = s if s > 0 and np.isfinite(s) else 0.1
        p.copy_((torch.randn(p.shape, generator=generator) * s).to(device=p.device, dtype=p.dtype))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (flattened), ``[-1, 1]``; 0.0 when either is
    constant."""
    from scipy.stats import spearmanr

    a, b = np.ravel(a), np.ravel(b)
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a, b).statistic)


def _resolve_method(method: "str | AttributionMethod | None", amap: AttributionMap) -> "AttributionMethod":
    from vlx.attribute import get_method

    if method is None:
        return get_method(amap.method)
    return get_method(method) if isinstance(method, str) else method


@METRICS.register
class ModelRandomisation(Metric):
    """Cascading model randomisation: value = Spearman correlation between the original map and
    the map of the fully randomised model, ``[-1, 1]``; lower is better.

    ``details``: ``layers`` (randomised so far at each stage, top-down, last name per stage),
    ``spearman`` (one correlation per stage, mean over repeats), ``spearman_runs`` (one curve
    per repeat), ``passed`` (final correlation < ``threshold``).

    Options: ``method`` (a registered name or an ``AttributionMethod`` instance; default: the
    map's own method by name), ``every`` (recompute the map after every ``every``-th layer and
    after the last; raise it for deep models, each stage costs one attribution), ``absolute``
    (compare ``|map|``), ``threshold`` (0.5), ``repeats`` (independent randomisations whose
    curves are averaged: one random draw can leave a map's support intact by chance, so use
    several for a verdict), ``seed`` (repeat ``r`` uses ``seed + r``).
    """

    name = "sanity"
    higher_is_better = False
    category = "sanity"

    def __init__(self, method: "str | AttributionMethod | None" = None, every: int = 1, absolute: bool = False,
                 threshold: float = 0.5, repeats: int = 1, seed: int = 0) -> None:
        if every < 1 or repeats < 1:
            raise ValueError(f"every and repeats must be >= 1, got every={every}, repeats={repeats}")
        self.repeats = repeats
        self.method = method
        self.every = every
        self.absolute = absolute
        self.threshold = threshold
        self.seed = seed

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        """Randomise copies of ``model``; ``amap.target`` is re-explained at every stage (it
        should explain ``target_index``); the original ``model`` is never modified."""
        original = check_map(amap, image)
        method = _resolve_method(self.method, amap)
        runs = [self._cascade(model, image, amap, method, original, self.seed + r) for r in range(self.repeats)]
        stages = runs[0][0]
        curve = [float(v) for v in np.mean([c for _, c in runs], axis=0)]
        final = curve[-1]
        return self.result(final, layers=stages, spearman=curve, spearman_runs=[c for _, c in runs],
                           passed=bool(final < self.threshold),
                           method=method.name or type(method).__name__,
                           threshold=self.threshold, absolute=self.absolute, repeats=self.repeats)

    def _cascade(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap,
                 method: "AttributionMethod", original: np.ndarray, seed: int) -> tuple[list[str], list[float]]:
        """One cascade on a fresh copy: (last layer name per stage, correlation per stage)."""
        from vlx.attribute import attribute

        module = copy.deepcopy(model.module)
        clone = copy.copy(model)                     # the same adapter around the copied module
        clone.module = module
        names = parameterised_layers(module)[::-1]
        if not names:
            raise ValueError(f"{type(model.module).__name__} has no parameterised layers to randomise.")
        modules = dict(module.named_modules())
        g = torch.Generator().manual_seed(seed)
        prep = np.abs if self.absolute else np.asarray
        stages: list[str] = []
        curve: list[float] = []
        for k, name in enumerate(names):
            randomise_(modules[name], g)
            if (k + 1) % self.every and k + 1 != len(names):
                continue
            new = attribute(clone, image, amap.target, method, layer=amap.layer)
            stages.append(name)
            curve.append(spearman(prep(original), prep(new.values)))
        return stages, curve
