"""The offline describer: what the classifier itself sees in each region's crop, the region's
dominant colours, and its quantified visual traits (hue, saturation, contrast, texture, shape).
Needs no extra model, so it is the default."""

from __future__ import annotations

from typing import Sequence

import torch

from vlx.describe.colors import dominant_colors
from vlx.describe.traits import region_traits, traits_phrase
from vlx.describe.views import crop_box
from vlx.models.classifier import ImageClassifier
from vlx.registry import DESCRIBERS
from vlx.types import ImageInput, Region, RegionDescription


@DESCRIBERS.register
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
    def describe(self, model: ImageClassifier, image: ImageInput, regions: Sequence[Region],
                 label: str | None = None) -> list[RegionDescription]:
        """One description per region, in order; the crops are classified in one batch.
        ``label`` (the explained class) is not needed here: the crop's own labels are reported."""
        if not regions:
            return []
        crops = [crop_box(image.pixels, r.bbox_xyxy, self.margin) for r in regions]
        probs = model.probabilities(model.to_input(crops))
        k = min(self.top_k, probs.shape[1])
        out = []
        for r, p in zip(regions, probs):
            top = p.topk(k)
            labels = tuple(model.short_label(int(i)) for i in top.indices)
            scores = tuple(float(s) for s in top.values)
            colors, traits = basic_features(image, r)
            text = _sentence(labels[0], scores[0], colors, traits_phrase(traits))
            out.append(RegionDescription(labels, scores, colors, text, self.name, traits))
        return out


def basic_features(image: ImageInput, region: Region) -> tuple[tuple[str, ...], dict[str, float]]:
    """The region's dominant colour names (most frequent first) and its traits
    (``vlx.describe.traits.TRAIT_RANGES``); an empty mask gives ``((), {})``."""
    if not region.mask.any():
        return (), {}
    colors = tuple(name for name, _ in dominant_colors(image.pixels[region.mask]))
    return colors, region_traits(image.pixels, region.mask)


def _sentence(label: str, score: float, colors: Sequence[str], traits: str) -> str:
    col = " and ".join(colors)
    seen = f"looks like {label} to the model on its own ({round(score * 100)}%)"
    looks = "; ".join(p for p in (f"mostly {col}" if col else "", traits) if p)
    return f"{looks}; {seen}" if looks else seen
