"""CLIP as a zero-shot image classifier over a label set.

Specs: ``clip:hf:<hub id or folder>`` (transformers ``CLIPModel``) and
``open_clip:<arch>=<weights path>`` (the ``openclip`` extra, imported lazily).

Each label becomes a prompt (``"a photo of a {}."`` by default); the prompts' text embeddings are
computed once at load. The classifier's module maps ``pixel_values`` to
``logits = logit_scale · cos(image_embed, text_embeds)`` ``(B, n_labels)``, the same numbers as
``CLIPModel(...).logits_per_image``. So a target is a label (a text prompt), never an index into
embedding dimensions, and every attribution method runs on the vision tower: its blocks emit
``(B, T, D)`` tokens whose patch grid vlx infers (``vlx.models.layers.to_spatial``).

Images are resized whole to the tower's input size (no crop, no padding), as for every
``ImageClassifier``, so maps stay aligned with the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from vlx.errors import InputError, UsageError
from vlx.models.classifier import ImageClassifier, Preprocess

DEFAULT_PROMPT_TEMPLATE = "a photo of a {}."
# Names under the transformers vision tower that resolve on the classifier itself, so that a
# layer can be given as ``encoder.layers.-2`` as well as ``vision_model.encoder.layers.-2``.
_TOWER_PARTS = ("embeddings", "pre_layrnorm", "encoder", "post_layernorm")


def parse_labels(labels: str | Sequence[str] | None) -> tuple[str, ...]:
    """``"cat,dog,car"``, ``"@labels.txt"`` (one label a line; blank lines and ``#`` comments
    skipped) or a sequence of names → a tuple of distinct, stripped labels."""
    if labels is None:
        return ()
    if isinstance(labels, str):
        text = labels.strip()
        if text.startswith("@"):
            path = Path(text[1:]).expanduser()
            try:
                lines = path.read_text(encoding="utf-8").splitlines()
            except OSError as e:
                raise InputError(f"cannot read the label file {str(path)!r}: {e.strerror or e}.") from None
            items = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
        else:
            items = [t.strip() for t in text.split(",") if t.strip()]
    else:
        items = [str(t).strip() for t in labels if str(t).strip()]
    out: list[str] = []
    for it in items:
        if it not in out:
            out.append(it)
    if len(out) < 2 and items:
        raise UsageError(f"--labels needs at least two labels for zero-shot classification; got {out}.")
    return tuple(out)


def _check_template(template: str) -> str:
    if template.count("{}") != 1:
        raise UsageError(f"prompt template {template!r} must contain exactly one {{}} where the label goes, "
                         f"e.g. {DEFAULT_PROMPT_TEMPLATE!r}.")
    return template


class ZeroShotHead(nn.Module):
    """Image embedding → ``logit_scale · cos(image_embed, text_embeds)``: the image embedding is
    L2-normalised and multiplied by the fixed, normalised text embeddings ``(C, D)``."""

    def __init__(self, text_embeds: torch.Tensor, logit_scale: float) -> None:
        super().__init__()
        self.register_buffer("text_embeds", F.normalize(text_embeds.detach().float(), dim=-1))
        self.logit_scale = float(logit_scale)

    def forward(self, image_embeds: torch.Tensor) -> torch.Tensor:
        e = F.normalize(image_embeds, dim=-1)
        return self.logit_scale * e @ self.text_embeds.to(e.dtype).T


class HFClipZeroShot(nn.Module):
    """``pixel_values (B, 3, h, w)`` → logits ``(B, C)`` for a transformers ``CLIPModel``'s vision
    tower, projection and fixed text embeddings (the text tower is not kept)."""

    def __init__(self, vision_model: nn.Module, visual_projection: nn.Module, head: ZeroShotHead) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = visual_projection
        self.head = head

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixel_values).pooler_output
        return self.head(self.visual_projection(pooled))

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in _TOWER_PARTS:
                return getattr(super().__getattr__("vision_model"), name)
            raise


class OpenClipZeroShot(nn.Module):
    """``pixel_values`` → logits for an open_clip model's ``visual`` tower and fixed text embeddings."""

    def __init__(self, visual: nn.Module, head: ZeroShotHead) -> None:
        super().__init__()
        self.visual = visual
        self.head = head

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.visual(pixel_values)
        return self.head(out[0] if isinstance(out, (tuple, list)) else out)


class ZeroShotClassifier(ImageClassifier):
    """An ``ImageClassifier`` over a label set; ``prompts`` are the texts behind the labels.
    Layer names come back canonical (``encoder.layers.1`` → ``vision_model.encoder.layers.1``)."""

    def __init__(self, *args, prompts: Sequence[str] = (), **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prompts = list(prompts)

    def layer(self, spec: str | None = "auto") -> tuple[str, nn.Module]:
        name, module = super().layer(spec)
        for n, m in self.module.named_modules():
            if m is module:
                return n, module
        return name, module


def _prompts(labels: tuple[str, ...], template: str) -> list[str]:
    return [template.format(lab) for lab in labels]


def load_hf_clip_classifier(ref: str, device: torch.device, labels: tuple[str, ...],
                            prompt_template: str = DEFAULT_PROMPT_TEMPLATE) -> ImageClassifier:
    """``clip:hf:<ref>``: a transformers CLIP as a zero-shot classifier over ``labels``. Reuses
    ``vlx.models.clip`` (loading, preprocessing, text encoding)."""
    from vlx.models.clip import load_clip

    template = _check_template(prompt_template)
    clip = load_clip(f"hf:{ref}", device)
    text = clip.text_features(_prompts(labels, template))
    module = HFClipZeroShot(clip.model.vision_model, clip.model.visual_projection,
                            ZeroShotHead(text, clip.logit_scale))
    n = len(getattr(clip.model.vision_model.encoder, "layers", ()))
    # The input of the last block: the last block's patch tokens never reach the CLS-token head.
    default = f"vision_model.encoder.layers.{n - 2}" if n >= 2 else "vision_model.pre_layrnorm"
    short = Path(ref).name if Path(ref).expanduser().exists() else ref
    return ZeroShotClassifier(module, f"clip:hf:{ref}", f"CLIP {short} (zero-shot)", labels, clip.preprocess,
                              device, default_layer=default, prompts=_prompts(labels, template))


def load_open_clip_classifier(ref: str, device: torch.device, labels: tuple[str, ...],
                              prompt_template: str = DEFAULT_PROMPT_TEMPLATE) -> ImageClassifier:
    """``open_clip:<arch>=<weights path>`` (or ``open_clip:<arch>=<pretrained tag>``, which
    open_clip may download): a zero-shot classifier over ``labels``; needs the ``openclip`` extra."""
    from vlx.models.extras import import_extra

    open_clip = import_extra("open_clip", "openclip")
    template = _check_template(prompt_template)
    arch, _, weights = ref.partition("=")
    if not arch or not weights:
        raise UsageError(f"open_clip spec {ref!r}: use open_clip:<arch>=<weights path>, "
                         "e.g. open_clip:ViT-B-32=/models/vit_b_32.bin.")
    try:
        model = open_clip.create_model(arch, pretrained=weights, device="cpu")
        tokenizer = open_clip.get_tokenizer(arch)
    except RuntimeError as e:
        raise UsageError(f"open_clip model {arch!r} with {weights!r}: {str(e).splitlines()[0]}") from e
    model = model.eval().to(device)
    with torch.no_grad():
        text = model.encode_text(tokenizer(_prompts(labels, template)).to(device)).float()
    scale = float(model.logit_scale.detach().exp())
    visual = model.visual
    cfg = getattr(visual, "preprocess_cfg", None) or {}
    size = cfg.get("size", getattr(visual, "image_size", 224))
    size = (int(size[0]), int(size[-1])) if isinstance(size, (tuple, list)) else (int(size), int(size))
    mean = tuple(cfg.get("mean", getattr(open_clip, "OPENAI_DATASET_MEAN", (0.48145466, 0.4578275, 0.40821073))))
    std = tuple(cfg.get("std", getattr(open_clip, "OPENAI_DATASET_STD", (0.26862954, 0.26130258, 0.27577711))))
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    default = None
    if isinstance(blocks, nn.ModuleList):
        if not getattr(visual.transformer, "batch_first", False):
            # Older open_clip runs its blocks sequence-first (T, B, D); the token grid needs (B, T, D).
            raise UsageError(f"this open_clip ({getattr(open_clip, '__version__', '?')}) runs ViT blocks "
                             "sequence-first; pip install -U 'open_clip_torch>=2.24'.")
        default = f"visual.transformer.resblocks.{len(blocks) - 2}" if len(blocks) >= 2 else None
    module = OpenClipZeroShot(visual, ZeroShotHead(text, scale))
    return ZeroShotClassifier(module, f"open_clip:{ref}", f"OpenCLIP {arch} (zero-shot)", labels,
                              Preprocess(size=size, mean=mean, std=std), device, default_layer=default,
                              prompts=_prompts(labels, template))
