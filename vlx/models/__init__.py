"""Model loading with a small grammar.

``effnet-lite0``            the embedded default (EfficientNet-Lite0, ImageNet; no download)
``hf:<hub id or folder>``   any transformers image classifier
``timm:<name>[=weights]``   timm (extra ``vlx[timm]``)
``torchvision:<name>[=w]``  torchvision (extra ``vlx[torchvision]``)
``clip:hf:<id or folder>``  CLIP zero-shot over ``labels`` (``vlx.models.clip_classifier``)
``open_clip:<arch>=<w>``    open_clip zero-shot over ``labels`` (extra ``vlx[openclip]``)
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch

from vlx.device import resolve_device
from vlx.errors import UsageError
from vlx.models.classifier import ImageClassifier, Preprocess

DEFAULT_MODEL = "effnet-lite0"

MODEL_SPECS = {
    "effnet-lite0": "EfficientNet-Lite0, ImageNet-1k, weights installed as a package (the default)",
    "hf:<id or path>": "any transformers AutoModelForImageClassification, hub id or local folder",
    "timm:<name>[=weights]": "a timm model (needs the timm extra)",
    "torchvision:<name>[=weights]": "a torchvision model (needs the torchvision extra)",
    "clip:hf:<id or path>": "CLIP zero-shot over --labels (transformers CLIPModel, hub id or local folder)",
    "open_clip:<arch>=<weights>": "open_clip zero-shot over --labels (needs the openclip extra)",
}


def load_classifier(spec: str = DEFAULT_MODEL, device: str | torch.device = "auto",
                    labels: str | Sequence[str] | None = None, prompt_template: str | None = None) -> ImageClassifier:
    """Load an image classifier from a spec (see the module docstring) onto ``device``.

    ``labels`` (``clip:``/``open_clip:`` specs only, required there): the label set, as
    ``"cat,dog,car"``, ``"@file.txt"`` (one label a line) or a sequence; ``prompt_template``:
    the prompt around each label (default ``"a photo of a {}."``).
    """
    from vlx.models.clip_classifier import DEFAULT_PROMPT_TEMPLATE, parse_labels

    dev = device if isinstance(device, torch.device) else resolve_device(device)
    spec = spec.strip()
    names = parse_labels(labels)
    if spec.startswith(("clip:", "open_clip:")):
        if not names:
            raise UsageError(f"model {spec!r} is zero-shot and needs a label set: --labels 'cat,dog,car' "
                             "or --labels @labels.txt (one label a line).")
        return _load(spec, str(dev), names, prompt_template or DEFAULT_PROMPT_TEMPLATE)
    if names or prompt_template:
        raise UsageError(f"--labels/--prompt-template apply only to zero-shot models (clip:hf:..., open_clip:...), "
                         f"not {spec!r}.")
    return _load(spec, str(dev))


@lru_cache(maxsize=4)
def _load(spec: str, device: str, labels: tuple[str, ...] = (), prompt_template: str = "") -> ImageClassifier:
    dev = torch.device(device)
    prefix, _, ref = spec.partition(":")
    if prefix == "clip" and ref.startswith("hf:") and ref[3:]:
        from vlx.models.clip_classifier import load_hf_clip_classifier

        return load_hf_clip_classifier(ref[3:], dev, labels, prompt_template)
    if prefix == "open_clip" and ref:
        from vlx.models.clip_classifier import load_open_clip_classifier

        return load_open_clip_classifier(ref, dev, labels, prompt_template)
    if spec in ("effnet-lite0", "efficientnet-lite0"):
        from vlx.models.effnet import load_effnet_lite0

        return load_effnet_lite0(dev)
    if prefix == "hf" and ref:
        from vlx.models.hf import load_hf_classifier

        return load_hf_classifier(ref, dev)
    if prefix == "timm" and ref:
        from vlx.models.extras import load_timm

        return load_timm(ref, dev)
    if prefix == "torchvision" and ref:
        from vlx.models.extras import load_torchvision

        return load_torchvision(ref, dev)
    raise UsageError(f"unknown model {spec!r}; use effnet-lite0, hf:<hub id or folder>, "
                     "timm:<name>, torchvision:<name>, clip:hf:<hub id or folder> or open_clip:<arch>=<weights> "
                     "(see `vlx models`).")


__all__ = ["ImageClassifier", "Preprocess", "load_classifier", "DEFAULT_MODEL", "MODEL_SPECS"]
