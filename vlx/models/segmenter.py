"""Promptable segmenters (SAM) behind one small interface, in segment-anything's shape: the
expensive step (``set_image``: one image encoding) is cached, the cheap step (``predict``: one
prompt-decoder call for a whole batch of prompts) is called many times.

Specs:
``hf:<hub id or folder>``     transformers ``SamModel`` (e.g. ``hf:facebook/sam-vit-base``), or
                              ``Sam2Model`` when the config's ``model_type`` is ``sam2`` and the
                              installed transformers has SAM 2 (e.g. ``hf:facebook/sam2.1-hiera-tiny``)
``sam:<vit_b|vit_l|vit_h>=<checkpoint.pth>``  the ``segment-anything`` package (extra ``vlx[sam]``),
                              weights loaded with ``map_location`` and ``weights_only=True``

Coordinates: points are ``(x, y)`` in pixels of the original image; boxes are XYXY in pixels.
Point labels: ``1`` positive, ``0`` negative, ``-1`` padding (ignored, as in SAM).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vlx.errors import ModelNotAvailable, UsageError

SAM_MEAN = (0.485, 0.456, 0.406)
SAM_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class MaskPrediction:
    """Masks for a batch of ``P`` prompts, ``K`` candidates each (3 with multimask output).

    Attributes:
        masks: bool ``(P, K, H, W)`` at the image's resolution.
        iou: float32 ``(P, K)``, SAM's predicted IoU (its own quality score), roughly ``[0, 1]``.
        stability: float32 ``(P, K)`` in ``[0, 1]``: IoU of the mask thresholded at logit ``+1``
            and at ``-1`` (segment-anything's stability score).
    """

    masks: np.ndarray
    iou: np.ndarray
    stability: np.ndarray


class PromptSegmenter(Protocol):
    """What the region code needs from a promptable segmenter."""

    name: str
    encoder_calls: int

    def set_image(self, pixels: np.ndarray) -> None:
        """Encode an RGB uint8 ``(H, W, 3)`` image once; a second call with the same pixels is free."""

    def predict(self, points: np.ndarray | None, labels: np.ndarray | None, boxes: np.ndarray | None = None,
                multimask: bool = True, min_quality: tuple[float, float] | None = None) -> MaskPrediction:
        """Decode ``P`` prompts for the current image. ``points`` float ``(P, N, 2)`` as ``(x, y)``,
        ``labels`` int ``(P, N)``, ``boxes`` float ``(P, 4)`` XYXY; pixels of the original image.
        ``min_quality = (iou, stability)``: candidates below either come back as empty masks
        (not upsampled, which saves most of the cost of automatic masks)."""


def image_key(pixels: np.ndarray) -> str:
    """A content hash of an image, used to cache its embedding."""
    return f"{pixels.shape}:{hashlib.blake2b(np.ascontiguousarray(pixels).data, digest_size=16).hexdigest()}"


def _stability(logits: torch.Tensor, offset: float = 1.0) -> torch.Tensor:
    hi = (logits > offset).flatten(-2).sum(-1).float()
    lo = (logits > -offset).flatten(-2).sum(-1).float()
    return torch.where(lo > 0, hi / lo.clamp(min=1), torch.zeros_like(lo))


class HFSam:
    """A transformers ``SamModel``. Preprocessing is SAM's own, done here in torch (no torchvision):
    resize the longest side to ``longest`` (bilinear, antialiased), normalise with ``mean``/``std``
    on ``[0, 1]`` pixels, pad bottom/right with zeros to ``longest × longest``.

    Attributes:
        encoder_calls: how many times the vision encoder ran (a cache test reads it).
    """

    def __init__(self, model: torch.nn.Module, name: str, device: torch.device, longest: int | None = None,
                 mean: tuple[float, float, float] = SAM_MEAN, std: tuple[float, float, float] = SAM_STD) -> None:
        self.model = model.eval().to(device)
        self.name, self.device = name, device
        self.longest = int(longest or model.config.vision_config.image_size)
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1)
        self.encoder_calls = 0
        self._key: str | None = None
        self._emb: torch.Tensor | None = None
        self._hw = (0, 0)
        self._scale = 1.0

    def preprocess(self, pixels: np.ndarray) -> tuple[torch.Tensor, float]:
        """RGB uint8 ``(H, W, 3)`` → float ``(1, 3, longest, longest)`` and the resize scale."""
        h, w = pixels.shape[:2]
        scale = self.longest / max(h, w)
        nh, nw = int(h * scale + 0.5), int(w * scale + 0.5)
        x = torch.from_numpy(np.array(pixels, dtype=np.uint8, copy=True)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        x = (x - self.mean) / self.std
        return F.pad(x, (0, self.longest - nw, 0, self.longest - nh)), scale

    @torch.no_grad()
    def set_image(self, pixels: np.ndarray) -> None:
        key = image_key(pixels)
        if key == self._key:
            return
        x, self._scale = self.preprocess(pixels)
        dtype = next(self.model.parameters()).dtype
        self._emb = self.model.get_image_embeddings(x.to(dtype))
        self.encoder_calls += 1
        self._key, self._hw = key, (int(pixels.shape[0]), int(pixels.shape[1]))

    @torch.no_grad()
    def predict(self, points: np.ndarray | None, labels: np.ndarray | None, boxes: np.ndarray | None = None,
                multimask: bool = True, min_quality: tuple[float, float] | None = None) -> MaskPrediction:
        if self._emb is None:
            raise RuntimeError("call set_image before predict")
        kw = {}
        if points is not None:
            if labels is None or labels.shape != points.shape[:2]:
                raise ValueError("labels must have shape (P, N) matching points (P, N, 2)")
            kw["input_points"] = torch.as_tensor(points * self._xy_scale(), dtype=torch.float32,
                                                 device=self.device)[None]
            kw["input_labels"] = torch.as_tensor(labels, dtype=torch.long, device=self.device)[None]
        if boxes is not None:
            kw["input_boxes"] = torch.as_tensor(boxes * np.tile(self._xy_scale(), 2), dtype=torch.float32,
                                                device=self.device)[None]
        if not kw:
            raise ValueError("give points, boxes or both")
        out = self.model(image_embeddings=self._emb, multimask_output=multimask, **kw)
        low = out.pred_masks[0].float()                                     # (P, K, h, w)
        iou, stab = out.iou_scores[0].float(), _stability(low)
        ok = torch.ones_like(iou, dtype=torch.bool) if min_quality is None else \
            (iou >= min_quality[0]) & (stab >= min_quality[1])
        return MaskPrediction(self._upsample(low, ok), iou.cpu().numpy(), stab.cpu().numpy())

    def _xy_scale(self) -> np.ndarray:
        """Factors ``(sx, sy)`` from original-image pixels to model-input pixels."""
        return np.array([self._scale, self._scale])

    def _upsample(self, low: torch.Tensor, ok: torch.Tensor) -> np.ndarray:
        """Low-res logits ``(P, K, h, w)`` → bool masks ``(P, K, H, W)``; only where ``ok``."""
        p, k = low.shape[:2]
        h, w = self._hw
        out = np.zeros((p * k, h, w), dtype=bool)
        idx = torch.nonzero(ok.reshape(-1)).flatten()
        if idx.numel():
            x = self._logits_to_image(low.reshape(p * k, 1, *low.shape[-2:])[idx])
            out[idx.cpu().numpy()] = (x[:, 0] > 0).cpu().numpy()
        return out.reshape(p, k, h, w)

    def _logits_to_image(self, x: torch.Tensor) -> torch.Tensor:
        """Low-res logits ``(N, 1, h, w)`` → ``(N, 1, H, W)``: up to the padded input, crop the
        padding, down to the image."""
        h, w = self._hw
        x = F.interpolate(x, size=(self.longest, self.longest), mode="bilinear", align_corners=False)
        x = x[..., : int(h * self._scale + 0.5), : int(w * self._scale + 0.5)]
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


class HFSam2(HFSam):
    """A transformers ``Sam2Model`` (SAM 2 / 2.1, image mode). Same interface and caching as
    ``HFSam``; SAM 2's preprocessing differs and is done here in torch (its image processor
    needs torchvision): resize to ``longest × longest`` *without* keeping the aspect ratio
    (bilinear, antialiased), normalise, no padding. Points and boxes are scaled per axis; the
    low-resolution logits (``longest / 4`` square) are resized straight to the image's size.

    The cached embedding is SAM 2's list of feature maps (two high-resolution levels and the
    decoder's ``image_embeddings``). The object-score head (``object_score_logits``) is not
    used: like SAM 2's image predictor, every prompt's masks come back as predicted.
    """

    def __init__(self, model: torch.nn.Module, name: str, device: torch.device, longest: int | None = None,
                 mean: tuple[float, float, float] = SAM_MEAN, std: tuple[float, float, float] = SAM_STD) -> None:
        super().__init__(model, name, device, longest or _side(model.config.prompt_encoder_config.image_size),
                         mean, std)

    def preprocess(self, pixels: np.ndarray) -> tuple[torch.Tensor, float]:
        """RGB uint8 ``(H, W, 3)`` → float ``(1, 3, longest, longest)``; the scale returned is
        the longest side's (per-axis factors come from ``_xy_scale``)."""
        h, w = pixels.shape[:2]
        x = torch.from_numpy(np.array(pixels, dtype=np.uint8, copy=True)).to(self.device).permute(2, 0, 1)[None].float() / 255.0
        x = F.interpolate(x, size=(self.longest, self.longest), mode="bilinear", align_corners=False, antialias=True)
        return (x - self.mean) / self.std, self.longest / max(h, w)

    def _xy_scale(self) -> np.ndarray:
        h, w = self._hw
        return np.array([self.longest / w, self.longest / h])

    def _logits_to_image(self, x: torch.Tensor) -> torch.Tensor:
        """No padding to crop: low-res logits resized straight to the image."""
        return F.interpolate(x, size=self._hw, mode="bilinear", align_corners=False)


class SegmentAnythingSam:
    """The ``segment-anything`` package's ``SamPredictor`` (imports torchvision; extra ``vlx[sam]``)."""

    def __init__(self, predictor: object, name: str) -> None:
        self.predictor, self.name = predictor, name
        self.encoder_calls = 0
        self._key: str | None = None

    @torch.no_grad()
    def set_image(self, pixels: np.ndarray) -> None:
        key = image_key(pixels)
        if key != self._key:
            self.predictor.set_image(np.ascontiguousarray(pixels), image_format="RGB")
            self.encoder_calls += 1
            self._key, self._hw = key, (int(pixels.shape[0]), int(pixels.shape[1]))

    @torch.no_grad()
    def predict(self, points: np.ndarray | None, labels: np.ndarray | None, boxes: np.ndarray | None = None,
                multimask: bool = True, min_quality: tuple[float, float] | None = None) -> MaskPrediction:
        p = self.predictor
        dev = p.device
        pts = lab = bx = None
        if points is not None:
            pts = p.transform.apply_coords_torch(torch.as_tensor(points, dtype=torch.float32, device=dev), self._hw)
            lab = torch.as_tensor(labels, dtype=torch.int64, device=dev)
        if boxes is not None:
            bx = p.transform.apply_boxes_torch(torch.as_tensor(boxes, dtype=torch.float32, device=dev), self._hw)
        masks, iou, low = p.predict_torch(pts, lab, boxes=bx, multimask_output=multimask, return_logits=True)
        iou, stab = iou.float(), _stability(low.float())
        keep = masks > p.model.mask_threshold
        if min_quality is not None:   # candidates below either threshold come back empty, as HFSam's
            keep &= ((iou >= min_quality[0]) & (stab >= min_quality[1]))[..., None, None]
        return MaskPrediction(keep.cpu().numpy(), iou.cpu().numpy(), stab.cpu().numpy())


def load_segmenter(spec: str, device: str | torch.device = "cpu") -> PromptSegmenter:
    """Load a promptable segmenter from ``hf:<id or folder>`` or ``sam:<type>=<checkpoint>``."""
    dev = torch.device(device) if isinstance(device, str) else device
    prefix, _, ref = spec.strip().partition(":")
    if prefix == "hf" and ref:
        return _load_hf(ref, dev)
    if prefix == "sam" and ref:
        return _load_segment_anything(ref, dev)
    raise UsageError(f"unknown segmenter model {spec!r}; use hf:<hub id or folder> (transformers SAM) or "
                     "sam:vit_b=/path/to/checkpoint.pth (segment-anything).")


def _load_hf(ref: str, device: torch.device) -> HFSam:
    """``SamModel`` / ``Sam2Model`` and its image-processor settings through transformers'
    loaders (folder or hub id; any processor-file layout)."""
    from transformers import AutoConfig, SamModel
    from transformers.utils import logging as hf_logging

    from vlx.models.hub import CONFIG_FILES, WEIGHT_FILES, display_name, from_pretrained

    hf_logging.disable_progress_bar()
    try:
        config = from_pretrained(AutoConfig.from_pretrained, ref, "SAM model", (CONFIG_FILES,))
    except UsageError as e:  # a model_type this transformers does not know (e.g. sam2 on an old one)
        raise UsageError(f"hf:{ref}: this transformers ({_transformers_version()}) cannot read its config "
                         f"({e}); SAM 2 needs a transformers with Sam2Model.") from e
    name = f"hf:{display_name(ref)}"
    if config.model_type == "sam2":
        try:
            from transformers import Sam2Model
        except ImportError as e:
            raise UsageError(f"hf:{ref} is SAM 2, but this transformers ({_transformers_version()}) has no "
                             "Sam2Model; upgrade transformers or use a SAM (v1) model.") from e
        model = from_pretrained(Sam2Model.from_pretrained, ref, "SAM 2 model", (CONFIG_FILES, WEIGHT_FILES),
                              dtype=torch.float32)
        longest, mean, std = _processor_settings(ref, "sam2", _side(config.prompt_encoder_config.image_size))
        return HFSam2(model, name, device, longest, mean, std)
    if config.model_type != "sam":
        raise UsageError(f"hf:{ref} is a {config.model_type!r} model, not SAM (model_type 'sam' or 'sam2').")
    model = from_pretrained(SamModel.from_pretrained, ref, "SAM model", (CONFIG_FILES, WEIGHT_FILES),
                              dtype=torch.float32)
    longest, mean, std = _processor_settings(ref, "sam", int(config.vision_config.image_size))
    return HFSam(model, name, device, longest, mean, std)


def _side(size: int | list | tuple) -> int:
    """A square model input's side from an ``int`` or ``[h, w]`` config value."""
    return int(size[0]) if isinstance(size, (list, tuple)) else int(size)


def _transformers_version() -> str:
    import transformers

    return f"transformers {transformers.__version__}"


def _processor_settings(ref: str, model_type: str, default_longest: int) -> tuple[int, tuple, tuple]:
    """Longest side, mean and std of the model's image processor, as transformers loads it
    (``vlx.models.processing``; SAM: ``size = {"longest_edge": n}``, SAM 2: ``{"height": n, "width": n}``)."""
    from vlx.models.processing import image_processor_settings

    cfg = image_processor_settings(ref, model_type, "SAM image processor")
    size = cfg.get("size") or {}
    longest = int(size.get("longest_edge") or size.get("height") or default_longest)
    return longest, tuple(cfg.get("image_mean") or SAM_MEAN), tuple(cfg.get("image_std") or SAM_STD)


def _load_segment_anything(ref: str, device: torch.device) -> SegmentAnythingSam:
    kind, _, path = ref.partition("=")
    if not path:
        raise UsageError(f"sam:{ref}: give a checkpoint, e.g. sam:vit_b=/path/to/sam_vit_b_01ec64.pth.")
    from vlx.models.extras import import_extra

    sa = import_extra("segment_anything", "sam")   # one line: missing, or the torch/torchvision pair
    SamPredictor, sam_model_registry = sa.SamPredictor, sa.sam_model_registry
    if kind not in sam_model_registry:
        raise UsageError(f"unknown SAM type {kind!r}; choose one of {', '.join(sorted(sam_model_registry))}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ModelNotAvailable(f"SAM checkpoint {path!r} does not exist; check the path.") from None
    model = sam_model_registry[kind](checkpoint=None)
    model.load_state_dict(state)
    return SegmentAnythingSam(SamPredictor(model.eval().to(device)), f"sam:{kind}")
