"""CLIP through transformers (``CLIPModel`` + its tokenizer), by hub id or local folder
(``hf:<id or path>``). Images are resized and normalised here in torch with the settings of
the model's own image processor (loaded by transformers, PIL backend), so torchvision is not
needed; a non-square image is padded to a square with its mean colour first, so a
region is neither cropped away nor distorted."""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
import torch

from vlx.device import resolve_device
from vlx.errors import UsageError
from vlx.models.classifier import Preprocess
from vlx.models.hub import from_pretrained


class ClipModel:
    """A CLIP image-text model.

    Attributes:
        name: the spec it was loaded from (``hf:<ref>``).
        model: the transformers ``CLIPModel`` (eval mode, on ``device``).
        tokenizer: its tokenizer.
        preprocess: resize + normalisation to the vision tower's input size.
    """

    def __init__(self, model, tokenizer, preprocess: Preprocess, name: str, device: torch.device) -> None:
        self.model = model.eval().to(device)
        self.tokenizer = tokenizer
        self.preprocess = preprocess
        self.name = name
        self.device = device

    @torch.no_grad()
    def image_features(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """L2-normalised embeddings ``(N, D)`` of RGB uint8 images ``(h, w, 3)`` (any sizes)."""
        x = self.preprocess([pad_square(a) for a in images], self.device).to(self.model.dtype)
        f = _features(self.model.get_image_features(pixel_values=x))
        return torch.nn.functional.normalize(f.float(), dim=-1)

    @torch.no_grad()
    def text_features(self, texts: Sequence[str]) -> torch.Tensor:
        """L2-normalised embeddings ``(N, D)`` of ``texts``."""
        limit = int(getattr(self.model.config.text_config, "max_position_embeddings", 77))
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        f = _features(self.model.get_text_features(**enc))
        return torch.nn.functional.normalize(f.float(), dim=-1)

    @property
    def logit_scale(self) -> float:
        """The learned temperature (``exp`` of ``logit_scale``), ~100 for trained CLIPs."""
        return float(self.model.logit_scale.detach().exp())


def _features(out) -> torch.Tensor:
    """``get_*_features`` return a tensor, or (newer transformers) an output with ``pooler_output``."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def pad_square(pixels: np.ndarray) -> np.ndarray:
    """Pad RGB uint8 ``(h, w, 3)`` to ``(s, s, 3)``, ``s = max(h, w)``, centred, with its mean colour."""
    h, w = pixels.shape[:2]
    if h == w:
        return pixels
    s = max(h, w)
    out = np.empty((s, s, 3), dtype=np.uint8)
    out[:] = pixels.reshape(-1, 3).mean(0).round().astype(np.uint8)
    y, x = (s - h) // 2, (s - w) // 2
    out[y:y + h, x:x + w] = pixels
    return out


def load_clip(spec: str, device: str | torch.device = "auto") -> ClipModel:
    """Load ``hf:<hub id or folder>`` (a bare id or folder is accepted too); cached per
    (spec, device)."""
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    return _load(spec.strip(), str(dev))


@lru_cache(maxsize=2)
def _load(spec: str, device: str) -> ClipModel:
    from transformers import AutoConfig, AutoTokenizer, CLIPModel
    from transformers.utils import logging as hf_logging

    from vlx.models.hf import preprocess_for
    from vlx.models.hub import CONFIG_FILES, TOKENIZER_FILES, WEIGHT_FILES, display_name

    hf_logging.disable_progress_bar()
    ref = spec[3:] if spec.startswith("hf:") else spec
    if not ref:
        raise UsageError("empty CLIP spec; use clip:hf:<hub id or folder>.")
    config = from_pretrained(AutoConfig.from_pretrained, ref, "CLIP model", (CONFIG_FILES,))
    if getattr(config, "model_type", "") != "clip":
        raise UsageError(f"{ref!r} is a {getattr(config, 'model_type', '?')!r} model, not CLIP; "
                         "the clip describer needs a CLIPModel (e.g. openai/clip-vit-base-patch32).")
    model = from_pretrained(CLIPModel.from_pretrained, ref, "CLIP model", (CONFIG_FILES, WEIGHT_FILES),
                            dtype=torch.float32)
    tokenizer = from_pretrained(AutoTokenizer.from_pretrained, ref, "CLIP tokenizer", (TOKENIZER_FILES,))
    pre = preprocess_for(ref, "clip", config.vision_config, "CLIP image processor")
    name = f"hf:{display_name(ref)}"
    return ClipModel(model, tokenizer, pre, name, torch.device(device))
