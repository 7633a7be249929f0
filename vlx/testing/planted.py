"""Planted-signal models: the answer provably depends only on a known region, so a correct
attribution map must put its mass there."""

from __future__ import annotations

import torch
from torch import nn

from vlx.models.classifier import ImageClassifier, Preprocess

QUADRANTS = ("top-left", "top-right", "bottom-left", "bottom-right")


def planted_box(quadrant: str, size: int) -> tuple[int, int, int, int]:
    """The planted quadrant of a ``size × size`` input as ``(x0, y0, x1, y1)``."""
    h = size // 2
    x0 = 0 if quadrant.endswith("left") else h
    y0 = 0 if quadrant.startswith("top") else h
    return x0, y0, x0 + h, y0 + h


class PlantedCNN(nn.Module):
    """A small CNN whose logits depend only on one quadrant of the input.

    The input is multiplied by a fixed 0/1 quadrant mask before anything else, so pixels outside
    the quadrant cannot change the output (their gradients are exactly zero). The conv layers
    have no bias, so activations outside the quadrant are zero as well.

    Input: ``(B, 3, size, size)``; output: logits ``(B, num_classes)``.
    """

    def __init__(self, quadrant: str = "top-left", size: int = 32, num_classes: int = 3, seed: int = 0) -> None:
        super().__init__()
        if quadrant not in QUADRANTS:
            raise ValueError(f"quadrant must be one of {QUADRANTS}")
        g = torch.Generator().manual_seed(seed)
        x0, y0, x1, y1 = planted_box(quadrant, size)
        mask = torch.zeros(1, 1, size, size)
        mask[..., y0:y1, x0:x1] = 1.0
        self.register_buffer("mask", mask)
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, stride=2, bias=False), nn.ReLU(),
        )
        self.head = nn.Linear(16, num_classes)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            self.features[0].weight.abs_()
            self.features[2].weight.abs_()
            self.head.weight[0].abs_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x * self.mask)
        return self.head(f.mean(dim=(2, 3)))


def planted_classifier(quadrant: str = "top-left", size: int = 32, num_classes: int = 3,
                       device: str | torch.device = "cpu", seed: int = 0) -> ImageClassifier:
    """A ``PlantedCNN`` behind the classifier adapter. Inputs are scaled to ``[0, 1]``
    (mean 0, std 1), so brighter pixels in the quadrant raise class 0's logit."""
    model = PlantedCNN(quadrant, size, num_classes, seed)
    pre = Preprocess(size=(size, size), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return ImageClassifier(model, f"planted:{quadrant}", f"Planted CNN ({quadrant})",
                           [f"class {i}" for i in range(num_classes)], pre, torch.device(device))
