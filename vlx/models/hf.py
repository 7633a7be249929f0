"""Any transformers image classifier (``hf:<hub id or local path>``), with the resize and
normalisation of its own image processor (no crop, so maps stay aligned with the image)."""

from __future__ import annotations

from pathlib import Path

import torch

from vlx.models.classifier import ImageClassifier, Preprocess
from vlx.models.hub import from_pretrained


def load_hf_classifier(ref: str, device: torch.device) -> ImageClassifier:
    """Load ``AutoModelForImageClassification`` from ``ref`` (hub id or folder)."""
    from transformers import AutoConfig, AutoModelForImageClassification
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    config = from_pretrained(AutoConfig.from_pretrained, ref, "model")
    kwargs = {}
    if getattr(config, "model_type", "") in {"vit", "deit", "beit", "dinov2", "data2vec-vision", "vit_msn", "swin"}:
        kwargs["attn_implementation"] = "eager"
    model = from_pretrained(AutoModelForImageClassification.from_pretrained, ref, "model", **kwargs)
    pre = _preprocess_for(ref, config)
    id2label = getattr(config, "id2label", None) or {}
    n = getattr(config, "num_labels", len(id2label))
    labels = [str(id2label.get(i, id2label.get(str(i), f"class {i}"))) for i in range(n)]
    name = Path(ref).name if Path(ref).exists() else ref
    return ImageClassifier(model, f"hf:{ref}", name, labels, pre, device)


def _preprocess_for(ref: str, config) -> Preprocess:
    """Size, mean, std and rescale from the model's saved image processor config (read as
    JSON, so no image-processor class or torchvision is needed), else from the model config."""
    import json

    from transformers.utils import cached_file

    proc: dict = {}
    try:
        path = from_pretrained(lambda r, **kw: cached_file(r, "preprocessor_config.json", **kw), ref, "model")
        proc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        proc = {}
    size = proc.get("size", getattr(config, "image_size", 224))
    if isinstance(size, dict):
        if "height" in size:
            hw = (int(size["height"]), int(size["width"]))
        else:
            e = int(size.get("shortest_edge", getattr(config, "image_size", 224)))
            hw = (e, e)
    elif isinstance(size, (list, tuple)):
        hw = (int(size[0]), int(size[-1]))
    else:
        hw = (int(size), int(size))
    crop = proc.get("crop_size")
    if proc.get("do_center_crop") and isinstance(crop, dict) and "height" in crop:
        hw = (int(crop["height"]), int(crop["width"]))
    mean = tuple(proc.get("image_mean", (0.5, 0.5, 0.5)))
    std = tuple(proc.get("image_std", (0.5, 0.5, 0.5)))
    if not proc.get("do_normalize", True):
        mean, std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
    scale = 1.0 if proc.get("do_rescale", True) else 255.0
    return Preprocess(size=hw, mean=mean, std=std, scale=scale)
