"""Describer specs, parsed in one place:

* ``offline`` (default): the classifier's labels on the crop, colours and traits;
* ``clip:hf:<CLIP id or folder>``: CLIP concept scores over ``prompts/concepts.txt``;
* ``vlm:hf:<VLM id or folder>``: a VLM's sentence about the region, shown the region's crop with
  everything outside the region dimmed, and not told the predicted class;
* ``vlm-class:hf:<VLM id or folder>``: the same, with the predicted class named in the prompt;
* ``vlm-outline:hf:<VLM id or folder>``: shown the whole image with the region outlined;
* ``none``: no descriptions.
"""

from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch

from vlx.errors import UsageError
from vlx.registry import DESCRIBERS
from vlx.types import ImageInput, Region, RegionDescription

SPEC_HELP = ("offline (embedded), clip:hf:<CLIP id or folder>, vlm:hf:<VLM id or folder> "
             "(BLIP, LLaVA, Idefics3/SmolVLM, Qwen2-VL), vlm-class:hf:<...> (names the predicted class), "
             "vlm-outline:hf:<...> (whole image, region outlined) or none")


class Describer(Protocol):
    """Region → words. ``describe`` returns one ``RegionDescription`` per region, in order."""

    name: str

    def describe(self, model: Any, image: ImageInput, regions: Sequence[Region],
                 label: str | None = None) -> list[RegionDescription]: ...


KINDS = ("clip", "vlm", "vlm-class", "vlm-outline")


def make_describer(spec: str | None, device: str | torch.device = "auto", **options: Any) -> Describer | None:
    """Build the describer a spec names (see the module docstring); ``None`` or ``none`` gives
    ``None``. ``options`` go to the describer's constructor. A bad spec raises a one-line UsageError."""
    if spec is None or spec.strip().lower() == "none":
        return None
    spec = spec.strip()
    kind, sep, ref = spec.partition(":")
    if not sep:
        if kind in KINDS:
            raise UsageError(f"describer {kind!r} needs a model: {kind}:hf:<hub id or folder>.")
        if kind not in DESCRIBERS:
            raise UsageError(f"unknown describer {spec!r}; use {SPEC_HELP}.")
        return DESCRIBERS.get(kind)(**options)
    if kind not in KINDS:
        raise UsageError(f"unknown describer {spec!r}; use {SPEC_HELP}.")
    if not ref.startswith("hf:") or len(ref) == 3:
        raise UsageError(f"describer {spec!r}: the model must be hf:<hub id or folder>, e.g. {kind}:hf:./my-model.")
    if kind == "clip":
        return DESCRIBERS.get("clip")(ref, device, **options)
    if kind == "vlm-outline":
        options["view"] = "outline"
    if kind == "vlm-class":
        options["name_class"] = True
    return DESCRIBERS.get("vlm")(ref, device, **options)
