"""ROAD: RemOve And Debias (Rong et al. 2022), with noisy linear imputation.

At each percentage ``p``, the ``p``% most relevant pixels (MoRF) or least relevant pixels (LeRF)
are removed and *imputed*: each removed pixel becomes the weighted average of its 8 neighbours
(weight 1/6 for edge neighbours, 1/12 for diagonal ones), removed neighbours included, which is
a sparse linear system over the removed pixels solved once per percentage for the three
channels (``scipy.sparse``); then Gaussian noise is added to the imputed pixels. Imputed
pixels look like their surroundings, so removal does not create the out-of-distribution edges
a constant baseline does. The target's probability on each imputed image is the curve.

Choices made here: imputation runs in model input space (linear imputation commutes with the
per-channel normalisation); the noise has standard deviation ``noise`` in units of the
``[0, 1]`` pixel range (0.01 by default, i.e. about 2.5 grey levels); ``p`` must lie in
``(0, 100)`` so that at least one pixel stays as the boundary of every removed area.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vlx.evaluate.base import Metric, check_map, check_target, map_to_input, pixel_ranks
from vlx.models.classifier import ImageClassifier
from vlx.registry import METRICS
from vlx.types import AttributionMap, ImageInput, MetricResult

DEFAULT_PERCENTAGES: tuple[float, ...] = (10, 20, 30, 40, 50, 60, 70, 80, 90)
_NEIGHBOURS = ((-1, 0, 1 / 6), (1, 0, 1 / 6), (0, -1, 1 / 6), (0, 1, 1 / 6),
               (-1, -1, 1 / 12), (-1, 1, 1 / 12), (1, -1, 1 / 12), (1, 1, 1 / 12))


def impute(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Linear imputation of ``removed`` pixels from their neighbours.

    Args:
        img: float ``(C, h, w)`` image in any per-channel affine space.
        removed: boolean ``(h, w)``; at least one pixel must stay (not removed).

    Returns:
        float64 ``(C, h, w)``: ``img`` with every removed pixel equal to the weighted mean of its
        8 neighbours (inside the image), i.e. the solution of a sparse linear system.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    c, h, w = img.shape
    removed = np.asarray(removed, dtype=bool)
    if removed.all():
        raise ValueError("cannot impute an image with every pixel removed; use percentages below 100.")
    out = np.asarray(img, dtype=np.float64).copy()
    ys, xs = np.nonzero(removed)
    n = ys.size
    if n == 0:
        return out
    index = -np.ones((h, w), dtype=np.int64)
    index[ys, xs] = np.arange(n)
    flat = out.reshape(c, -1)
    rows, cols, vals = [np.arange(n)], [np.arange(n)], []
    diag = np.zeros(n)
    rhs = np.zeros((n, c))
    for dy, dx, wt in _NEIGHBOURS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        i = np.nonzero(inside)[0]
        diag[i] += wt
        j = index[ny[i], nx[i]]
        unknown = j >= 0
        rows.append(i[unknown])
        cols.append(j[unknown])
        vals.append(np.full(int(unknown.sum()), -wt))
        known = i[~unknown]
        rhs[known] += wt * flat[:, ny[known] * w + nx[known]].T
    a = coo_matrix((np.concatenate([diag, *vals]), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    solution = splu(a.tocsc()).solve(rhs)
    flat[:, ys * w + xs] = solution.T
    return out


@torch.no_grad()
def road_curve(model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
               order: str = "morf", percentages: Sequence[float] = DEFAULT_PERCENTAGES, noise: float = 0.01,
               batch_size: int | None = None, seed: int = 0) -> np.ndarray:
    """Target probability after removing and imputing ``p``% of pixels, for each ``p``.

    ``order``: ``morf`` removes the most relevant pixels first, ``lerf`` the least relevant.
    Returns float64 ``(len(percentages),)`` in ``[0, 1]``. The imputed images are scored in
    batches of ``batch_size``.
    """
    if order not in ("morf", "lerf"):
        raise ValueError(f"order must be 'morf' or 'lerf', got {order!r}")
    if any(not 0 < p < 100 for p in percentages):
        raise ValueError(f"ROAD percentages must lie in (0, 100); got {list(percentages)}")
    target_index = check_target(model, target_index)
    values = check_map(amap, image)
    x = model.to_input(image)
    hw = tuple(x.shape[-2:])
    ranks = pixel_ranks(map_to_input(values, hw), seed)
    if order == "lerf":
        ranks = ranks.size - 1 - ranks
    rng = np.random.default_rng(seed)
    sigma = noise * model.preprocess.scale / np.asarray(model.preprocess.std, dtype=np.float64)
    base = x[0].double().cpu().numpy()
    images = []
    for p in percentages:
        removed = ranks < int(round(p / 100.0 * ranks.size))
        imp = impute(base, removed)
        imp[:, removed] += rng.standard_normal((3, int(removed.sum()))) * sigma[:, None]
        images.append(imp)
    batch = torch.from_numpy(np.stack(images)).to(device=x.device, dtype=x.dtype)
    batch_size = batch_size or model.batch_size
    probs = torch.cat([model.logits(batch[i:i + batch_size]).float().softmax(-1)[:, target_index]
                       for i in range(0, batch.shape[0], batch_size)])
    return probs.cpu().double().numpy()


class _RoadMetric(Metric):
    category = "faithfulness"

    def __init__(self, percentages: Sequence[float] = DEFAULT_PERCENTAGES, noise: float = 0.01,
                 batch_size: int | None = None, seed: int = 0) -> None:
        """Options: ``percentages`` in ``(0, 100)``, ``noise`` (std in ``[0, 1]`` pixel units),
        ``batch_size``, ``seed`` (noise and tie-breaking)."""
        self.percentages = tuple(float(p) for p in percentages)
        self.noise = noise
        self.batch_size = batch_size
        self.seed = seed

    def curve(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
              order: str) -> list[float]:
        c = road_curve(model, image, amap, target_index, order, self.percentages, self.noise,
                       self.batch_size, self.seed)
        return [float(v) for v in c]


@METRICS.register
class RoadMoRF(_RoadMetric):
    """Mean target probability over the MoRF curve, ``[0, 1]``; lower is better.
    ``details``: ``curve``, ``percentages``."""

    name = "road-morf"
    higher_is_better = False

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        c = self.curve(model, image, amap, target_index, "morf")
        return self.result(float(np.mean(c)), curve=c, percentages=list(self.percentages))


@METRICS.register
class RoadLeRF(_RoadMetric):
    """Mean target probability over the LeRF curve, ``[0, 1]``; higher is better.
    ``details``: ``curve``, ``percentages``."""

    name = "road-lerf"
    higher_is_better = True

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        c = self.curve(model, image, amap, target_index, "lerf")
        return self.result(float(np.mean(c)), curve=c, percentages=list(self.percentages))


@METRICS.register
class Road(_RoadMetric):
    """ROAD combined: mean LeRF probability minus mean MoRF probability, ``[-1, 1]``; higher is
    better. ``details``: ``morf`` and ``lerf`` curves, ``percentages``."""

    name = "road"
    higher_is_better = True

    def __call__(self, model: ImageClassifier, image: ImageInput, amap: AttributionMap, target_index: int,
                 gt_mask: np.ndarray | None = None) -> MetricResult:
        morf = self.curve(model, image, amap, target_index, "morf")
        lerf = self.curve(model, image, amap, target_index, "lerf")
        return self.result(float(np.mean(lerf) - np.mean(morf)), morf=morf, lerf=lerf,
                           percentages=list(self.percentages))
