"""The VLM describer: a vision-language model (BLIP, LLaVA, Idefics3 / SmolVLM, Qwen2-VL)
writes a sentence for each region. By default it is shown the region itself (its box crop with
everything outside the region dimmed, ``views.masked_crop``) and is NOT told the predicted class:
naming the class leads a VLM to describe the class rather than what the region shows. The
class-aware prompt is an option (``name_class=True``, spec ``vlm-class:``). Prompts come from
``prompts/`` (``describe_region.j2`` for chat models, ``describe_caption.j2`` as a caption prefix
for BLIP)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from vlx.describe.offline import basic_features
from vlx.describe.views import VIEWS, region_view
from vlx.errors import UsageError
from vlx.models.classifier import ImageClassifier
from vlx.prompts import render
from vlx.registry import DESCRIBERS
from vlx.types import ImageInput, Region, RegionDescription

if TYPE_CHECKING:
    from vlx.models.vlm import VisionLanguageModel


@DESCRIBERS.register("vlm")
class VlmDescriber:
    """Region → a VLM's sentence about it.

    Args:
        model: ``hf:<hub id or folder>`` of a supported VLM, or a loaded
            ``vlx.models.vlm.VisionLanguageModel``.
        device: ``auto|cpu|cuda|mps`` (when ``model`` is a spec).
        view: ``masked`` (default: the region's box plus ``margin``, outside the region dimmed),
            ``crop`` (the box plus ``margin``, background included) or ``outline`` (the whole image
            with the region outlined in red).
        max_new_tokens: the longest sentence, in tokens.
        margin: the crop is the box grown by this share of its size on each side.
        name_class: name the predicted class in the prompt (off by default: a named class leads
            the VLM to describe the class, not the region).
    """

    def __init__(self, model: str | VisionLanguageModel, device: str | torch.device = "auto",
                 view: str = "masked", max_new_tokens: int = 40, margin: float = 0.1,
                 name_class: bool = False) -> None:
        from vlx.models.vlm import VisionLanguageModel, load_vlm

        if view not in VIEWS:
            raise UsageError(f"unknown region view {view!r}; choose one of {', '.join(VIEWS)}.")
        if not isinstance(name_class, bool):
            raise UsageError(f"name_class must be true or false, got {name_class!r}.")
        self.vlm = model if isinstance(model, VisionLanguageModel) else load_vlm(model, device)
        self.name = f"vlm:{self.vlm.name}"
        self.view, self.max_new_tokens, self.margin = view, max_new_tokens, margin
        self.name_class = name_class

    def prompt(self, label: str | None, region: Region | None = None) -> str:
        """The prompt for one region: it names the predicted class ``label`` only when the
        describer is class-aware (``name_class``), and the region's position for the outline and
        masked views."""
        named = label if self.name_class else None
        if self.vlm.captioner:
            return render("describe_caption.j2", optional=("label",), label=named)
        position = region.position if region is not None and self.view in ("outline", "masked") else None
        return render("describe_region.j2", optional=("position", "label"), label=named, view=self.view,
                      position=position)

    def describe(self, model: ImageClassifier, image: ImageInput, regions: Sequence[Region],
                 label: str | None = None) -> list[RegionDescription]:
        """One description per region, in order (one generation per region). ``label``: the
        class a class-aware prompt names; default the classifier's top class on the whole image
        (not computed, and not named, unless ``name_class``)."""
        if not regions:
            return []
        if self.name_class and label is None:
            label = _top_label(model, image)
        out = []
        for r in regions:
            view = region_view(image.pixels, r.mask, r.bbox_xyxy, self.view, self.margin)
            text = self.vlm.generate(view, self.prompt(label, r), self.max_new_tokens)
            colors, traits = basic_features(image, r)
            out.append(RegionDescription((), (), colors, text, self.name, traits))
        return out


@torch.no_grad()
def _top_label(model: ImageClassifier, image: ImageInput) -> str:
    probs = model.probabilities(model.to_input(image))
    return model.short_label(int(probs[0].argmax()))
