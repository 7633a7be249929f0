"""The offline describer: what the classifier itself sees in each region's crop, and the
region's dominant colours. Needs no extra model, so it is the default."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from vlx.describe.colors import dominant_colors
from vlx.models.classifier import ImageClassifier
from vlx.registry import DESCRIBERS
from vlx.types import ImageInput, Region, RegionDescription


@DESCRIBERS.register("offline")
class OfflineDescriber:
    """Region → words without any extra model.

    Args:
        top_k: how many of the classifier's labels on the crop to keep.
        margin: the crop is the region's box grown by this share of its size on each side.
    """

    name = "offline"

    def __init__(self, top_k: int = 3, margin: float = 0.1) -> None:
        self.top_k, self.margin = top_k, margin

    @torch.no_grad()
    def describe(self, model: ImageClassifier, image: ImageInput, regions: Sequence[Region]) -> list[RegionDescription]:
        """One description per region, in order; the crops are classified in one batch."""
        if not regions:
            return []
        crops = [self._crop(image.pixels, r.bbox_xyxy) for r in regions]
        probs = model.probabilities(model.to_input(crops))
        k = min(self.top_k, probs.shape[1])
        out = []
        for r, p in zip(regions, probs):
            top = p.topk(k)
            labels = tuple(model.short_label(int(i)) for i in top.indices)
            scores = tuple(float(s) for s in top.values)
            colors = tuple(name for name, _ in dominant_colors(image.pixels[r.mask]))
            text = _sentence(labels[0], scores[0], colors)
            out.append(RegionDescription(labels, scores, colors, text, self.name))
        return out

    def _crop(self, pixels: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        h, w = pixels.shape[:2]
        x0, y0, x1, y1 = box
        mx, my = int((x1 - x0) * self.margin), int((y1 - y0) * self.margin)
        x0, y0, x1, y1 = max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my)
        return pixels[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


def _sentence(label: str, score: float, colors: Sequence[str]) -> str:
    col = " and ".join(colors)
    seen = f"looks like {label} to the model on its own ({round(score * 100)}%)"
    return f"mostly {col}; {seen}" if col else seen
