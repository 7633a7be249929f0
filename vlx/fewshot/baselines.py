"""Baseline explainers adapted to the support side of a few-shot segmenter.

Each explains ``roi_score``, the mean query foreground logit over the query ROI, as a function
of the K support images (the support masks stay fixed); each returns maps ``(K, h, w)`` at the
model input. "Removed" support pixels take the value 0 of the normalised model input (mid grey
for EfficientNet-Lite0's preprocessing).

``saliency``      |∂score/∂pixel|, max over colour channels.
``ig``            Integrated Gradients from the grey support (``steps`` points, batched), summed
                  over channels; signed.
``gradcam``       Grad-CAM on the support features of one level (the coarsest by default).
``occlusion``     score drop when a grey square patch covers the support (a ``grid``×``grid``
                  tiling of each shot); signed.
``kernelshap``    Kernel SHAP over SLIC superpixels of all shots (players), sampled coalitions.
``lime``          LIME over the same superpixels (cosine-distance kernel, ridge regression).
``random``        uniform noise (seeded).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vlx.registry import FEWSHOT_EXPLAINERS
from vlx.fewshot.inputs import EpisodeInputs, roi_score
from vlx.fewshot.protocol import FewShotModel

BATCH = 8


def _scores(model: FewShotModel, inputs: EpisodeInputs, support: torch.Tensor) -> torch.Tensor:
    """``roi_score`` for a batch of support sets ``(B, K, 3, h, w)``, in chunks, no grad → ``(B,)``."""
    with torch.no_grad():
        return torch.cat([roi_score(model.forward(inputs.query, support[i:i + BATCH],
                                                  inputs.masks.expand(len(support[i:i + BATCH]), -1, -1, -1)),
                                    inputs.roi) for i in range(0, len(support), BATCH)])


def _grad(model: FewShotModel, inputs: EpisodeInputs, support: torch.Tensor) -> torch.Tensor:
    """Gradient of the summed ``roi_score`` w.r.t. support sets ``(B, K, 3, h, w)``."""
    x = support.detach().clone().requires_grad_(True)
    out = model.forward(inputs.query, x, inputs.masks.expand(len(x), -1, -1, -1))
    (g,) = torch.autograd.grad(roi_score(out, inputs.roi).sum(), x)
    return g


@FEWSHOT_EXPLAINERS.register("saliency")
def saliency(model: FewShotModel, inputs: EpisodeInputs, seed: int) -> tuple[torch.Tensor, bool, dict]:
    return _grad(model, inputs, inputs.support)[0].abs().amax(1), False, {}


@FEWSHOT_EXPLAINERS.register("ig")
def integrated_gradients(model: FewShotModel, inputs: EpisodeInputs, seed: int,
                         steps: int = 16) -> tuple[torch.Tensor, bool, dict]:
    x = inputs.support
    alphas = (torch.arange(steps, dtype=x.dtype, device=x.device) + 0.5) / steps      # midpoint rule
    total = torch.zeros_like(x[0])
    for i in range(0, steps, BATCH):
        a = alphas[i:i + BATCH].view(-1, 1, 1, 1, 1)
        total += _grad(model, inputs, a * x).sum(0)
    return (x[0] * total / steps).sum(1), True, {}


@FEWSHOT_EXPLAINERS.register("gradcam")
def gradcam(model: FewShotModel, inputs: EpisodeInputs, seed: int, level: int = -1) -> tuple[torch.Tensor, bool, dict]:
    x = inputs.support.detach().clone().requires_grad_(True)
    out = model.forward(inputs.query, x, inputs.masks)
    if not out.support_features:
        raise ValueError(f"{model.name} returns no support features; Grad-CAM needs them")
    feats = out.support_features[level]                                   # (1, K, C, hs, ws)
    (g,) = torch.autograd.grad(roi_score(out, inputs.roi).sum(), feats)
    cam = F.relu((g.mean((-2, -1), keepdim=True) * feats).sum(2))[0]       # (K, hs, ws)
    cam = F.interpolate(cam[:, None].detach(), size=model.input_size, mode="bilinear", align_corners=False)[:, 0]
    return cam, False, {}


@FEWSHOT_EXPLAINERS.register("occlusion")
def occlusion(model: FewShotModel, inputs: EpisodeInputs, seed: int, grid: int = 6) -> tuple[torch.Tensor, bool, dict]:
    x = inputs.support
    k, (h, w) = x.shape[1], model.input_size
    ys = np.linspace(0, h, grid + 1).round().astype(int)
    xs = np.linspace(0, w, grid + 1).round().astype(int)
    patches = [(s, ys[i], ys[i + 1], xs[j], xs[j + 1]) for s in range(k) for i in range(grid) for j in range(grid)]
    batch = x.expand(len(patches), -1, -1, -1, -1).clone()
    for n, (s, y0, y1, x0, x1) in enumerate(patches):
        batch[n, s, :, y0:y1, x0:x1] = 0
    base = _scores(model, inputs, x)[0]
    drops = base - _scores(model, inputs, batch)
    maps = torch.zeros(k, h, w, device=x.device)
    for d, (s, y0, y1, x0, x1) in zip(drops, patches):
        maps[s, y0:y1, x0:x1] = d
    return maps, True, {}


def _segments(inputs: EpisodeInputs, n_segments: int) -> tuple[torch.Tensor, int]:
    """SLIC superpixels of every shot at the model input, numbered jointly: ``(K, h, w)`` long, M."""
    from vlx.regions.superpixels import slic_segments

    labels, offset = [], 0
    for px in inputs.support_pixels:
        seg = slic_segments(px, n_segments)
        labels.append(torch.from_numpy(seg.astype(np.int64) + offset))
        offset += int(seg.max()) + 1
    return torch.stack(labels).to(inputs.support.device), offset


def _coalition_scores(model: FewShotModel, inputs: EpisodeInputs, seg: torch.Tensor, z: np.ndarray) -> np.ndarray:
    keep = torch.from_numpy(z.astype(bool)).to(seg.device)[:, seg]         # (N, K, h, w)
    support = inputs.support * keep[:, :, None]
    return _scores(model, inputs, support).double().cpu().numpy()


def _paint(seg: torch.Tensor, values: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(values.astype(np.float32)).to(seg.device)[seg]


@FEWSHOT_EXPLAINERS.register("kernelshap")
def kernel_shap(model: FewShotModel, inputs: EpisodeInputs, seed: int, n_segments: int = 16,
                samples: int = 64) -> tuple[torch.Tensor, bool, dict]:
    seg, m = _segments(inputs, n_segments)
    rng = np.random.default_rng(seed)
    sizes = np.arange(1, m)
    p = (m - 1) / (sizes * (m - sizes))
    z = np.zeros((samples + 2, m))
    z[1] = 1                                                               # empty and full coalitions
    for i, s in enumerate(rng.choice(sizes, size=samples, p=p / p.sum())):
        z[i + 2, rng.choice(m, size=s, replace=False)] = 1
    y = _coalition_scores(model, inputs, seg, z)
    wts = np.ones(len(z))
    wts[:2] = 1e4                                                          # soft efficiency constraint
    phi = _weighted_lstsq(z, y, wts, ridge=1e-6)
    return _paint(seg, phi), True, {}


@FEWSHOT_EXPLAINERS.register("lime")
def lime(model: FewShotModel, inputs: EpisodeInputs, seed: int, n_segments: int = 16,
         samples: int = 64, width: float = 0.25) -> tuple[torch.Tensor, bool, dict]:
    seg, m = _segments(inputs, n_segments)
    rng = np.random.default_rng(seed)
    z = (rng.random((samples, m)) < 0.5).astype(np.float64)
    z[0] = 1
    y = _coalition_scores(model, inputs, seg, z)
    cos = z.sum(1) / np.sqrt(m * np.maximum(z.sum(1), 1))
    wts = np.exp(-((1 - cos) ** 2) / width ** 2)
    coef = _weighted_lstsq(z, y, wts, ridge=1.0)
    return _paint(seg, coef), True, {}


def _weighted_lstsq(z: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: float) -> np.ndarray:
    """Coefficients of ``y ≈ b + z·c`` (weights ``w``, ridge on ``c`` only) → ``c`` ``(M,)``."""
    a = np.hstack([np.ones((len(z), 1)), z])
    reg = ridge * np.eye(a.shape[1])
    reg[0, 0] = 0
    aw = a * w[:, None]
    return np.linalg.solve(a.T @ aw + reg, aw.T @ y)[1:]


@FEWSHOT_EXPLAINERS.register("random")
def random_map(model: FewShotModel, inputs: EpisodeInputs, seed: int) -> tuple[torch.Tensor, bool, dict]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(inputs.shots, *model.input_size, generator=g), False, {}
