"""Segmenters and refiners from the strings users type (``--segmenter``, ``--refine``)."""

from __future__ import annotations

from typing import Any

import torch

from vlx.errors import UsageError
from vlx.registry import SEGMENTERS

SEGMENTER_SPECS = {
    "superpixels": "SLIC superpixels ranked by attribution (the embedded default)",
    "felzenszwalb": "Felzenszwalb superpixels ranked by attribution",
    "hf:<SAM id or folder>": "transformers SAM or SAM 2 prompted by the map (e.g. hf:facebook/sam-vit-base)",
    "sam:<vit_b|vit_l|vit_h>=<ckpt.pth>": "segment-anything package prompted by the map (extra vlx[sam])",
}


def make_segmenter(spec: str, coverage: float = 0.5, device: str | torch.device = "cpu", **options: Any) -> Any:
    """A region segmenter (anything with ``regions(image, amap) -> list[Region]``) from a
    registered name (``superpixels``, ``felzenszwalb``, ``sam`` with ``model=``) or a SAM model
    spec (``hf:<id or folder>``, ``sam:<type>=<checkpoint>``)."""
    if spec.startswith(("hf:", "sam:")):
        return SEGMENTERS.get("sam")(model=spec, coverage=coverage, device=device, **options)
    if spec == "sam" and "model" not in options:
        raise UsageError("segmenter 'sam' needs a model: use --segmenter hf:<SAM id or folder> "
                         "or sam:vit_b=/path/to/checkpoint.pth.")
    cls = SEGMENTERS.get(spec)
    if spec == "sam":
        return cls(coverage=coverage, device=device, **options)
    return cls(coverage=coverage, **options)


def make_refiner(kind: str, segmenter: Any = None) -> Any:
    """A ``Refiner`` for ``none``, ``superpixels``, ``felzenszwalb`` or ``sam``; ``sam`` reuses the
    SAM ``segmenter`` (and its cached image embedding), so it needs a SAM ``--segmenter``."""
    from vlx.regions.refine import Refiner
    from vlx.regions.sam import SamRegions

    if kind not in ("none", "superpixels", "felzenszwalb", "sam"):
        raise UsageError(f"unknown refinement {kind!r}; choose none, superpixels, felzenszwalb or sam.")
    if kind == "sam" and not isinstance(segmenter, SamRegions):
        raise UsageError("--refine sam needs a SAM segmenter: add --segmenter hf:<SAM id or folder> "
                         "or sam:vit_b=/path/to/checkpoint.pth.")
    return Refiner(kind, sam=segmenter if kind == "sam" else None)
