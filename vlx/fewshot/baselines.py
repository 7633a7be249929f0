"""Baseline explainers adapted to the support side of a few-shot segmenter.

Each explains ``roi_score``, the mean query foreground logit over the query ROI, as a function
of the K support images (the support masks stay fixed), and returns maps ``(K, h, w)`` at the
model input. The algorithms are the image methods of ``vlx.attribute`` over one score function,
``SupportScorer`` (the K support images side by side on one grid); "removed" support pixels take
the value 0 of the normalised model input (mid grey for EfficientNet-Lite0's preprocessing).

``saliency``      |∂score/∂pixel|, max over colour channels (``saliency``).
``ig``            Integrated Gradients from the grey support (``steps`` midpoint nodes, batched),
                  summed over channels; signed (``integrated_gradients``).
``gradcam``       Grad-CAM on the support features of one level (the coarsest by default).
``occlusion``     score drop when a grey square patch covers the support (a ``grid``×``grid``
                  tiling of each shot as players; ``occlusion``); signed.
``kernelshap``    Kernel SHAP over SLIC superpixels of all shots (players), sampled coalitions
                  with exact efficiency (``kernelshap``).
``lime``          LIME over the same superpixels (cosine-distance kernel, ridge regression; ``lime``).
``random``        uniform noise (seeded).
"""

from __future__ import annotations

import numpy as np
import torch

from vlx.registry import FEWSHOT_EXPLAINERS
from vlx.fewshot.inputs import EpisodeInputs, roi_score
from vlx.fewshot.protocol import FewShotModel
from vlx.types import ClassTarget

BATCH = 8
TARGET = ClassTarget(0)


class SupportScorer:
    """``roi_score`` as a score function (``vlx.attribute.base.Scorer``) of the support images.

    Inputs ``x`` ``(B, 3, K·h, w)``: the K support images of a support set stacked along the
    height (shot ``k`` at rows ``k·h .. (k+1)·h``), so each is a 2-D grid methods can mask;
    ``logits(x)`` is ``(B, 1)``. ``players`` (long ``(K·h, w)``) are fixed labels when given.
    """

    def __init__(self, model: FewShotModel, inputs: EpisodeInputs, players: torch.Tensor | None = None) -> None:
        self.model, self.inputs, self.batch_size = model, inputs, BATCH
        self._players = players
        self.k = inputs.shots
        self.x = self.stack(inputs.support)

    def stack(self, support: torch.Tensor) -> torch.Tensor:
        """Support sets ``(B, K, 3, h, w)`` → ``(B, 3, K·h, w)``."""
        b, k, c, h, w = support.shape
        return support.permute(0, 2, 1, 3, 4).reshape(b, c, k * h, w)

    def unstack(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, K·h, w)`` → support sets ``(B, K, 3, h, w)``."""
        b, c, kh, w = x.shape
        return x.reshape(b, c, self.k, kh // self.k, w).permute(0, 2, 1, 3, 4)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model.forward(self.inputs.query, self.unstack(x), self.inputs.masks.expand(len(x), -1, -1, -1))
        return roi_score(out, self.inputs.roi)[:, None]

    def players(self, x: torch.Tensor, n_segments: int) -> torch.Tensor:
        if self._players is None:
            raise ValueError("SupportScorer has no players; pass players=")
        return self._players

    def maps(self, flat: torch.Tensor) -> torch.Tensor:
        """A method's map ``(1, K·h, w)`` → per-shot maps ``(K, h, w)``."""
        return flat[0].reshape(self.k, -1, flat.shape[-1])


@FEWSHOT_EXPLAINERS.register("saliency")
def saliency(model: FewShotModel, inputs: EpisodeInputs, seed: int) -> tuple[torch.Tensor, bool, dict]:
    from vlx.attribute.gradient import Saliency

    s = SupportScorer(model, inputs)
    return s.maps(Saliency().attribute(s, s.x, TARGET)), False, {}


@FEWSHOT_EXPLAINERS.register("ig")
def integrated_gradients(model: FewShotModel, inputs: EpisodeInputs, seed: int,
                         steps: int = 16) -> tuple[torch.Tensor, bool, dict]:
    from vlx.attribute.gradient import IntegratedGradients

    s = SupportScorer(model, inputs)
    ig = IntegratedGradients(n_steps=steps, batch_size=BATCH, method="riemann_middle")
    return s.maps(ig.attribute(s, s.x, TARGET)), True, {}


@FEWSHOT_EXPLAINERS.register("gradcam")
def gradcam(model: FewShotModel, inputs: EpisodeInputs, seed: int, level: int = -1) -> tuple[torch.Tensor, bool, dict]:
    from vlx.attribute.base import upsample
    from vlx.attribute.cam import GradCAM

    x = inputs.support.detach().clone().requires_grad_(True)
    out = model.forward(inputs.query, x, inputs.masks)
    if not out.support_features:
        raise ValueError(f"{model.name} returns no support features; Grad-CAM needs them")
    feats = out.support_features[level]                                   # (1, K, C, hs, ws)
    (g,) = torch.autograd.grad(roi_score(out, inputs.roi).sum(), feats)
    cam = GradCAM().combine(feats[0].detach(), g[0])                      # (K, hs, ws)
    return upsample(cam, model.input_size), False, {}


def _tiles(inputs: EpisodeInputs, grid: int) -> torch.Tensor:
    """A ``grid``×``grid`` tiling of every shot as players, numbered jointly: long ``(K·h, w)``."""
    k, h, w = inputs.shots, *inputs.support.shape[-2:]
    ys = np.linspace(0, h, grid + 1).round().astype(int)
    xs = np.linspace(0, w, grid + 1).round().astype(int)
    row = np.searchsorted(ys, np.arange(h), side="right") - 1
    col = np.searchsorted(xs, np.arange(w), side="right") - 1
    one = row[:, None] * grid + col[None, :]
    return torch.from_numpy(np.concatenate([one + s * grid * grid for s in range(k)])).long()


@FEWSHOT_EXPLAINERS.register("occlusion")
def occlusion(model: FewShotModel, inputs: EpisodeInputs, seed: int, grid: int = 6) -> tuple[torch.Tensor, bool, dict]:
    from vlx.attribute.perturb import Occlusion

    s = SupportScorer(model, inputs, _tiles(inputs, grid).to(inputs.support.device))
    m = Occlusion(regions="players", baseline="zero", batch_size=BATCH)
    return s.maps(m.attribute(s, s.x, TARGET)), True, {}


def _segments(inputs: EpisodeInputs, n_segments: int) -> torch.Tensor:
    """SLIC superpixels of every shot at the model input, numbered jointly: long ``(K·h, w)``."""
    from vlx.regions.superpixels import slic_segments

    labels, offset = [], 0
    for px in inputs.support_pixels:
        seg = slic_segments(px, n_segments)
        labels.append(torch.from_numpy(seg.astype(np.int64) + offset))
        offset += int(seg.max()) + 1
    return torch.cat(labels).to(inputs.support.device)


@FEWSHOT_EXPLAINERS.register("kernelshap")
def kernel_shap(model: FewShotModel, inputs: EpisodeInputs, seed: int, n_segments: int = 16,
                samples: int = 64) -> tuple[torch.Tensor, bool, dict]:
    from vlx.attribute.perturb import KernelSHAP

    s = SupportScorer(model, inputs, _segments(inputs, n_segments))
    m = KernelSHAP(n_samples=samples, baseline="zero", seed=seed, batch_size=BATCH)
    return s.maps(m.attribute(s, s.x, TARGET)), True, {}


@FEWSHOT_EXPLAINERS.register("lime")
def lime(model: FewShotModel, inputs: EpisodeInputs, seed: int, n_segments: int = 16,
         samples: int = 64, width: float = 0.25) -> tuple[torch.Tensor, bool, dict]:
    from vlx.attribute.perturb import LIME

    s = SupportScorer(model, inputs, _segments(inputs, n_segments))
    m = LIME(n_samples=samples, kernel_width=width, baseline="zero", seed=seed, batch_size=BATCH)
    return s.maps(m.attribute(s, s.x, TARGET)), True, {}


@FEWSHOT_EXPLAINERS.register("random")
def random_map(model: FewShotModel, inputs: EpisodeInputs, seed: int) -> tuple[torch.Tensor, bool, dict]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(inputs.shots, *model.input_size, generator=g), False, {}
