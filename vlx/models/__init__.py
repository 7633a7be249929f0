"""Model loading with a small grammar.

``effnet-lite0``            the embedded default (EfficientNet-Lite0, ImageNet; no download)
``hf:<hub id or folder>``   any transformers image classifier
``timm:<name>[=weights]``   timm (extra ``vlx[timm]``)
``torchvision:<name>[=w]``  torchvision (extra ``vlx[torchvision]``)
"""

from __future__ import annotations

from functools import lru_cache

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
}


def load_classifier(spec: str = DEFAULT_MODEL, device: str | torch.device = "auto") -> ImageClassifier:
    """Load an image classifier from a spec (see the module docstring) onto ``device``."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return _load(spec.strip(), str(dev))


@lru_cache(maxsize=4)
def _load(spec: str, device: str) -> ImageClassifier:
    dev = torch.device(device)
    prefix, _, ref = spec.partition(":")
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
                     "timm:<name> or torchvision:<name> (see `vlx models`).")


__all__ = ["ImageClassifier", "Preprocess", "load_classifier", "DEFAULT_MODEL", "MODEL_SPECS"]
