"""Planted models whose logits are a known closed-form function of one layer's channels, so that
every CAM and gradient method has an exact answer to test against.

Both models share one parameter set (``PlantedParams``):

- a feature layer with ``K`` channels on an ``h × w`` grid (``h = size / stride``):
  ``z_k = avgpool_stride(sum_c U[k, c] * x_c)``, ``A_k = M_k * act(a_k * z_k + b_k)``,
  where ``M_k`` is a 0/1 rectangle (distinct per channel) and ``act`` is ``softplus`` or the
  identity; channels differ in support, colour weights and gain sign;
- a head with weights of both signs and a square term, so gradients vary over positions:
  ``logit_c = sum_k (w[c, k] * sum_ij A_k(ij)^2 / 2 + l[c, k] * sum_ij A_k(ij)) + bias[c]``;
  hence ``d logit_c / d A_k(ij) = w[c, k] * A_k(ij) + l[c, k]`` (at every position, also where
  ``A_k`` is 0).

``PlantedCAMNet`` exposes the layer as ``features`` (output ``(B, K, h, w)``).
``PlantedTokenNet`` is ViT-shaped: the same channels become ``h*w`` patch tokens of width ``K``
(row-major), a constant CLS token ``cls`` is prepended, two identity blocks follow (the layer
CAMs see by default is ``blocks.0``, output ``(B, 1 + h*w, K)``), and the head adds
``sum_k e[c, k] * cls_k`` to the patch-token head above.

With ``act="identity"`` the logit is a quadratic polynomial of the input, so saliency,
input × gradient, Integrated Gradients and the SmoothGrad expectation have closed forms too.
Inputs are model space ``(B, 3, size, size)``; ``planted_cam_classifier`` wraps either model
with an identity preprocessing (images scaled to ``[0, 1]``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vlx.models.classifier import ImageClassifier, Preprocess

ACTS = ("softplus", "identity")


@dataclass(frozen=True)
class PlantedParams:
    """Parameters of the planted function, as float64 numpy arrays (tests compute closed forms
    from these). Shapes: ``U (K, 3)``, ``a, b (K,)``, ``masks (K, h, w)`` in ``{0, 1}``,
    ``w, l, e (C, K)``, ``bias (C,)``, ``cls (K,)``."""

    size: int
    stride: int
    act: str
    U: np.ndarray
    a: np.ndarray
    b: np.ndarray
    masks: np.ndarray
    w: np.ndarray
    l: np.ndarray
    bias: np.ndarray
    cls: np.ndarray
    e: np.ndarray

    @property
    def grid(self) -> tuple[int, int]:
        return self.masks.shape[1], self.masks.shape[2]


def planted_params(size: int = 32, stride: int = 4, act: str = "softplus", num_classes: int = 3,
                   seed: int = 0) -> PlantedParams:
    """Six channels on a ``(size/stride)²`` grid (at least 4 × 4) with distinct rectangles,
    gains of both signs and head weights of both signs (drawn from ``seed``)."""
    if act not in ACTS:
        raise ValueError(f"act must be one of {ACTS}, got {act!r}")
    if size % stride:
        raise ValueError(f"size {size} is not a multiple of stride {stride}")
    n = size // stride
    if n < 4:
        raise ValueError(f"the grid must be at least 4 × 4, got {n} × {n}")
    q = n / 8.0   # rectangles below are given on an 8 × 8 grid and scaled
    rects = [(0, 0, 4, 4), (0, 4, 4, 8), (4, 0, 8, 5), (5, 3, 8, 8), (2, 2, 6, 6), (0, 6, 8, 8)]
    masks = np.zeros((len(rects), n, n))
    for k, (y0, x0, y1, x1) in enumerate(rects):
        masks[k, int(y0 * q):max(int(y0 * q) + 1, int(y1 * q)), int(x0 * q):max(int(x0 * q) + 1, int(x1 * q))] = 1.0
    rng = np.random.default_rng(seed)
    k = len(rects)
    return PlantedParams(
        size=size, stride=stride, act=act,
        U=rng.uniform(-0.3, 1.0, (k, 3)),
        a=np.array([2.0, -1.5, 1.0, 2.5, -2.0, 1.5]),
        b=np.array([0.2, 0.5, -0.3, 0.0, 0.4, -0.2]),
        masks=masks,
        w=rng.uniform(-0.25, 0.25, (num_classes, k)),
        l=rng.uniform(-0.2, 0.2, (num_classes, k)),
        bias=rng.uniform(-0.2, 0.2, num_classes),
        cls=rng.uniform(-1.0, 1.0, k),
        e=rng.uniform(-0.5, 0.5, (num_classes, k)),
    )


class PlantedFeatures(nn.Module):
    """The planted feature layer: ``(B, 3, size, size)`` → ``A`` ``(B, K, h, w)``."""

    def __init__(self, p: PlantedParams) -> None:
        super().__init__()
        self.stride, self.act = p.stride, p.act
        for name in ("U", "a", "b", "masks"):
            self.register_buffer(name, torch.tensor(getattr(p, name), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = F.avg_pool2d(torch.einsum("kc,bchw->bkhw", self.U, x), self.stride)
        pre = self.a[:, None, None] * z + self.b[:, None, None]
        return self.masks * (F.softplus(pre) if self.act == "softplus" else pre)


class PlantedHead(nn.Module):
    """``A`` ``(B, K, h, w)`` → logits ``(B, C)`` (square and linear terms, both signs)."""

    def __init__(self, p: PlantedParams) -> None:
        super().__init__()
        for name in ("w", "l", "bias"):
            self.register_buffer(name, torch.tensor(getattr(p, name), dtype=torch.float32))

    def forward(self, acts: torch.Tensor) -> torch.Tensor:
        return 0.5 * acts.pow(2).sum((2, 3)) @ self.w.T + acts.sum((2, 3)) @ self.l.T + self.bias


class PlantedCAMNet(nn.Module):
    """CNN form: ``features`` (the layer) then the head. ``(B, 3, S, S)`` → ``(B, C)``."""

    def __init__(self, p: PlantedParams) -> None:
        super().__init__()
        self.params = p
        self.features = PlantedFeatures(p)
        self.head = PlantedHead(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class TokenBlock(nn.Module):
    """An identity transformer block stand-in: tokens ``(B, T, D)`` in and out."""

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens


class PlantedTokenNet(nn.Module):
    """ViT form: patch tokens (row-major) after a CLS token, two identity blocks, then the head
    on the patch tokens plus ``e @ cls``. ``(B, 3, S, S)`` → ``(B, C)``."""

    def __init__(self, p: PlantedParams) -> None:
        super().__init__()
        self.params = p
        self.embed = PlantedFeatures(p)
        self.blocks = nn.ModuleList([TokenBlock(), TokenBlock()])
        self.head = PlantedHead(p)
        self.register_buffer("cls", torch.tensor(p.cls, dtype=torch.float32))
        self.register_buffer("e", torch.tensor(p.e, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.embed(x)
        b, k, h, w = a.shape
        tokens = torch.cat([self.cls.expand(b, 1, k), a.flatten(2).transpose(1, 2)], dim=1)
        for block in self.blocks:
            tokens = block(tokens)
        grid = tokens[:, 1:].transpose(1, 2).reshape(b, k, h, w)
        return self.head(grid) + tokens[:, 0] @ self.e.T


def planted_cam_classifier(kind: str = "cnn", size: int = 32, stride: int = 4, act: str = "softplus",
                           num_classes: int = 3, seed: int = 0, device: str | torch.device = "cpu") -> ImageClassifier:
    """A planted CAM model (``kind``: ``cnn`` or ``vit``) behind the classifier adapter; model
    space is the image scaled to ``[0, 1]``. ``.module.params`` holds the ``PlantedParams``."""
    p = planted_params(size, stride, act, num_classes, seed)
    if kind == "cnn":
        module: nn.Module = PlantedCAMNet(p)
    elif kind == "vit":
        module = PlantedTokenNet(p)
    else:
        raise ValueError(f"kind must be 'cnn' or 'vit', got {kind!r}")
    pre = Preprocess(size=(size, size), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return ImageClassifier(module, f"planted-cam:{kind}", f"Planted CAM {kind.upper()}",
                           [f"class {i}" for i in range(num_classes)], pre, torch.device(device))
