"""The CLIP describer: each region's crop scored against a vocabulary of visual concepts
(colours, textures, materials, parts such as "fur", "eye", "wheel"), plus the region's colours
and traits. The vocabulary's text embeddings are computed once per describer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from vlx.describe.offline import basic_features
from vlx.describe.traits import traits_phrase
from vlx.describe.views import VIEWS, region_view
from vlx.errors import UsageError
from vlx.prompts import prompts_dir, render
from vlx.registry import DESCRIBERS
from vlx.types import ImageInput, Region, RegionDescription

if TYPE_CHECKING:
    from vlx.models.clip import ClipModel


def load_concepts(path: str | Path | None = None) -> tuple[str, ...]:
    """The concept vocabulary: one concept a line, ``#`` comments and blank lines skipped,
    duplicates dropped. Default: ``prompts/concepts.txt`` (~100 concepts)."""
    p = Path(path) if path is not None else prompts_dir() / "concepts.txt"
    if not p.is_file():
        raise UsageError(f"concept vocabulary {str(p)!r} not found; pass a text file with one concept per line.")
    seen: dict[str, None] = {}
    for line in p.read_text(encoding="utf-8").splitlines():
        c = line.split("#", 1)[0].strip()
        if c:
            seen.setdefault(c, None)
    if not seen:
        raise UsageError(f"concept vocabulary {str(p)!r} is empty; put one concept per line.")
    return tuple(seen)


@DESCRIBERS.register("clip")
class ClipDescriber:
    """Region → the CLIP concepts that fit its crop best.

    Args:
        model: ``hf:<hub id or folder>`` of a CLIP model, or a loaded ``vlx.models.clip.ClipModel``.
        device: ``auto|cpu|cuda|mps`` (when ``model`` is a spec).
        concepts: the vocabulary (a list, or a file path); default ``prompts/concepts.txt``.
        top_k: how many concepts to keep per region.
        view: ``crop`` (the region's box) or ``outline`` (whole image, region outlined).
        margin: the crop is the box grown by this share of its size on each side.
    """

    def __init__(self, model: str | ClipModel, device: str | torch.device = "auto",
                 concepts: Sequence[str] | str | Path | None = None, top_k: int = 3, view: str = "crop",
                 margin: float = 0.1) -> None:
        from vlx.models.clip import ClipModel, load_clip

        if view not in VIEWS:
            raise UsageError(f"unknown region view {view!r}; choose one of {', '.join(VIEWS)}.")
        self.clip = model if isinstance(model, ClipModel) else load_clip(model, device)
        self.name = f"clip:{self.clip.name}"
        self.concepts = tuple(concepts) if isinstance(concepts, (list, tuple)) else load_concepts(concepts)
        self.top_k, self.view, self.margin = min(top_k, len(self.concepts)), view, margin
        self.text = self.clip.text_features([render("describe_concept.j2", concept=c) for c in self.concepts])

    def scores(self, image: ImageInput, regions: Sequence[Region]) -> np.ndarray:
        """Concept probabilities ``(R, V)`` float32 in ``[0, 1]``, each row summing to 1 (softmax
        of CLIP's scaled cosine similarities over the ``V`` concepts)."""
        if not regions:
            return np.zeros((0, len(self.concepts)), dtype=np.float32)
        views = [region_view(image.pixels, r.mask, r.bbox_xyxy, self.view, self.margin) for r in regions]
        sims = self.clip.image_features(views) @ self.text.T
        return (self.clip.logit_scale * sims).softmax(-1).cpu().numpy().astype(np.float32)

    def describe(self, model: object, image: ImageInput, regions: Sequence[Region],
                 label: str | None = None) -> list[RegionDescription]:
        """One description per region, in order: top concepts (``labels``) with their
        probabilities (``label_scores``), colours and traits. ``model`` (the classifier) is unused."""
        probs = self.scores(image, regions)
        out = []
        for r, p in zip(regions, probs):
            top = np.argsort(-p, kind="stable")[: self.top_k]
            labels = tuple(self.concepts[i] for i in top)
            scores = tuple(float(p[i]) for i in top)
            colors, traits = basic_features(image, r)
            seen = ", ".join(f"{c} ({round(s * 100)}%)" for c, s in zip(labels, scores))
            text = "; ".join(x for x in (f"CLIP sees {seen}", traits_phrase(traits)) if x)
            out.append(RegionDescription(labels, scores, colors, text, self.name, traits))
        return out
