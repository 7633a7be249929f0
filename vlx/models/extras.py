"""Loaders behind optional extras (``timm:``, ``torchvision:``), imported lazily: timm and
torchvision are never imported by the core (torchvision breaks beside the CPU torch build)."""

from __future__ import annotations

import torch

from vlx.errors import ModelNotAvailable, UsageError
from vlx.models.classifier import ImageClassifier, Preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _split_weights(ref: str) -> tuple[str, str | None]:
    name, _, path = ref.partition("=")
    return name, (path or None)


def _imagenet_labels(n: int) -> list[str]:
    from vlx.models.effnet import imagenet_labels

    return imagenet_labels() if n == 1000 else [f"class {i}" for i in range(n)]


def load_timm(ref: str, device: torch.device) -> ImageClassifier:
    """``timm:<name>`` (pretrained from the hub or cache) or ``timm:<name>=/path/to/weights``."""
    try:
        import timm
    except ImportError as e:
        raise UsageError(f"timm is not installed ({e}); pip install 'vlx[timm]'.") from None
    name, path = _split_weights(ref)
    try:
        model = timm.create_model(name, pretrained=path is None,
                                  pretrained_cfg_overlay={"file": path} if path else None)
    except RuntimeError as e:
        raise UsageError(f"timm model {name!r}: {str(e).splitlines()[0]}") from e
    except OSError as e:
        raise ModelNotAvailable(f"timm model {name!r} is not on this machine and the hub is unreachable; "
                                "pass weights with timm:NAME=/path/to/file.") from e
    cfg = model.pretrained_cfg
    size = tuple(cfg.get("input_size", (3, 224, 224))[1:])
    pre = Preprocess(size=size, mean=tuple(cfg.get("mean", IMAGENET_MEAN)), std=tuple(cfg.get("std", IMAGENET_STD)))
    return ImageClassifier(model, f"timm:{ref}", name, _imagenet_labels(model.num_classes), pre, device)


def load_torchvision(ref: str, device: torch.device) -> ImageClassifier:
    """``torchvision:<name>`` with default weights, or ``torchvision:<name>=/path/to/state_dict``."""
    try:
        import torchvision
    except Exception as e:  # torchvision fails with RuntimeError beside a mismatched torch
        raise UsageError(f"torchvision is not usable here ({type(e).__name__}: {e}); "
                         "install a matching torch/torchvision pair.") from None
    name, path = _split_weights(ref)
    try:
        if path:
            model = torchvision.models.get_model(name, weights=None)
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        else:
            model = torchvision.models.get_model(name, weights="DEFAULT")
    except ValueError as e:
        raise UsageError(f"torchvision model {name!r}: {e}") from e
    except OSError as e:
        raise ModelNotAvailable(f"torchvision weights for {name!r} are not on this machine and cannot be "
                                "downloaded; pass torchvision:NAME=/path/to/state_dict.pth.") from e
    pre = Preprocess(size=(224, 224), mean=IMAGENET_MEAN, std=IMAGENET_STD)
    return ImageClassifier(model, f"torchvision:{ref}", name, _imagenet_labels(1000), pre, device)
