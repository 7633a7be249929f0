"""Any transformers image classifier (``hf:<hub id or local path>``), with the resize and
normalisation of its own image processor (no crop, so maps stay aligned with the image)."""

from __future__ import annotations

import torch

from vlx.models.classifier import ImageClassifier, Preprocess
from vlx.models.hub import CONFIG_FILES, WEIGHT_FILES, display_name, from_pretrained


def load_hf_classifier(ref: str, device: torch.device) -> ImageClassifier:
    """Load ``AutoModelForImageClassification`` and its image processor's settings from ``ref``
    (hub id or folder) through transformers' loaders."""
    from transformers import AutoConfig, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = from_pretrained(AutoConfig.from_pretrained, ref, "model", (CONFIG_FILES,))
    kwargs = {}
    if getattr(config, "model_type", "") in {"vit", "deit", "beit", "dinov2", "data2vec-vision", "vit_msn", "swin"}:
        kwargs["attn_implementation"] = "eager"
    model = from_pretrained(AutoModelForImageClassification.from_pretrained, ref, "model",
                            (CONFIG_FILES, WEIGHT_FILES), dtype=torch.float32, **kwargs)
    pre = preprocess_for(ref, getattr(config, "model_type", ""), config, "image processor")
    id2label = getattr(config, "id2label", None) or {}
    n = getattr(config, "num_labels", len(id2label))
    labels = [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(n)]
    return ImageClassifier(model, f"hf:{ref}", display_name(ref), labels, pre, device)


def preprocess_for(ref: str, model_type: str, config, what: str) -> Preprocess:
    """Size, mean, std and rescale of the model's image processor as transformers loads it
    (``vlx.models.processing``); the size is the centre crop's when the processor crops (the
    whole image is resized to it: no crop, so maps stay aligned), else its resize target
    (``shortest_edge`` becomes a square). ``config`` (the vision config) gives the size when
    the processor has none."""
    from vlx.models.processing import image_processor_settings

    proc = image_processor_settings(ref, model_type, what)
    default = int(getattr(config, "image_size", 224))
    hw = _hw(proc.get("size"), default)
    if proc.get("do_center_crop") and proc.get("crop_size"):
        hw = _hw(proc["crop_size"], hw[0])
    mean = tuple(proc.get("image_mean") or (0.5, 0.5, 0.5))
    std = tuple(proc.get("image_std") or (0.5, 0.5, 0.5))
    if proc.get("do_normalize") is False:
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    scale = 255.0 if proc.get("do_rescale") is False else 1.0
    return Preprocess(size=hw, mean=mean, std=std, scale=scale)


def _hw(size, default: int) -> tuple[int, int]:
    """``(h, w)`` from a processor size: ``{"height", "width"}``, ``{"shortest_edge"}``, an int
    or a pair."""
    if isinstance(size, dict):
        if size.get("height"):
            return int(size["height"]), int(size["width"])
        e = int(size.get("shortest_edge") or size.get("longest_edge") or default)
        return e, e
    if isinstance(size, (list, tuple)):
        return int(size[0]), int(size[-1])
    return (int(size), int(size)) if size else (default, default)
