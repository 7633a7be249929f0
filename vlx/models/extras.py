"""Loaders behind optional extras (``timm:``, ``torchvision:``), imported lazily: timm and
torchvision are never imported by the core (torchvision breaks beside the CPU torch build).

timm, open_clip and segment-anything all import torchvision, which works only beside the torch it
was built for: ``import_extra`` turns that failure into one line naming the pair to install."""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

from vlx.errors import ModelNotAvailable, UsageError
from vlx.models.classifier import ImageClassifier, Preprocess

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# The torch/torchvision pair the extras are tested with (``make bench-env`` installs it).
TORCH_PAIR = "torch==2.14.1 torchvision==0.29.1"


def torch_pair_hint() -> str:
    """What to install when torchvision does not work beside the installed torch."""
    return (f"torchvision must match the installed torch ({torch.__version__}); install a matching pair, "
            f"e.g. pip install {TORCH_PAIR} (the pair vlx's extras are tested with)")


def import_extra(module: str, extra: str) -> ModuleType:
    """Import an optional extra's module (``timm``, ``open_clip``, ``segment_anything``,
    ``torchvision``), or raise a one-line ``UsageError``: ``pip install 'vlx[extra]'`` when it is
    missing, the torch/torchvision pair when it (or the torchvision it imports) fails to load."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] == module.split(".")[0]:
            raise UsageError(f"{module} is not installed; pip install 'vlx[{extra}]'.") from None
        cause = e
    except Exception as e:  # torchvision raises RuntimeError (e.g. "operator torchvision::nms does not exist")
        cause = e
    first = (str(cause).splitlines() or [""])[0]
    raise UsageError(f"{module} cannot be imported here ({type(cause).__name__}: {first}); "
                     f"{torch_pair_hint()}.") from None


def torchvision_status() -> str:
    """One line for ``vlx env``: torchvision's version and whether it imports beside this torch."""
    import importlib.metadata as md
    import importlib.util

    if importlib.util.find_spec("torchvision") is None:
        return f"not installed (optional; timm, open_clip and segment-anything need it: pip install {TORCH_PAIR})"
    version = md.version("torchvision")
    try:
        importlib.import_module("torchvision")
    except Exception as e:  # noqa: BLE001 - reported, not swallowed: this is the diagnosis
        first = (str(e).splitlines() or [""])[0]
        return f"{version}, BROKEN ({type(e).__name__}: {first}); {torch_pair_hint()}"
    return version


def _split_weights(ref: str) -> tuple[str, str | None]:
    name, _, path = ref.partition("=")
    return name, (path or None)


def _imagenet_labels(n: int) -> list[str]:
    from vlx.models.effnet import imagenet_labels

    return imagenet_labels() if n == 1000 else [f"class {i}" for i in range(n)]


def load_timm(ref: str, device: torch.device) -> ImageClassifier:
    """``timm:<name>`` (pretrained from the hub or cache) or ``timm:<name>=/path/to/weights``."""
    timm = import_extra("timm", "timm")
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
    torchvision = import_extra("torchvision", "torchvision")
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
