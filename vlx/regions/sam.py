"""Regions from SAM prompted by the attribution map, or chosen from SAM's automatic masks.

Per image the encoder runs once (``PromptSegmenter.set_image`` caches the embedding); all the
prompts are decoded in two batched decoder calls (point prompts, box prompt), and automatic
masks in chunks of ``chunk`` grid points.

Prompt sets decoded for a map (see ``prompts.map_prompts``), each with all negative points:
one per positive peak alone, all positive peaks together, and the box with all peaks. Each
gives ``K = 3`` candidates (multimask); per prompt the candidate with the largest
``iou * (mass - area)`` is kept, then ``select.select_masks`` picks disjoint regions.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from vlx.models.segmenter import MaskPrediction, PromptSegmenter, load_segmenter
from vlx.regions.prompts import MapPrompts, map_prompts
from vlx.regions.scoring import region_from_mask
from vlx.regions.select import gain, mask_iou, select_masks
from vlx.registry import SEGMENTERS
from vlx.types import AttributionMap, ImageInput, Region


PointPrompts = tuple[np.ndarray, np.ndarray]
BoxPrompt = tuple[np.ndarray, np.ndarray, np.ndarray]


def prompt_batches(p: MapPrompts) -> tuple[PointPrompts, BoxPrompt | None]:
    """Point prompts and the box prompt for ``MapPrompts``.

    Returns:
        ``(points (P, N, 2), labels (P, N))`` for the ``P = n_pos + 1`` point prompts (padding
        label ``-1``), and ``(points (1, N', 2), labels (1, N'), box (1, 4))`` for the box prompt
        or ``None`` when the map gave no box. Points are ``(x, y)``; the box is XYXY.
    """
    pos, neg = p.positive, p.negative
    sets = [pos[i:i + 1] for i in range(len(pos))] + ([pos] if len(pos) > 1 else [])
    n = max(len(s) for s in sets) + len(neg)
    pts = np.zeros((len(sets), n, 2))
    lab = -np.ones((len(sets), n), dtype=np.int64)
    for k, s in enumerate(sets):
        both = np.concatenate([s, neg])
        pts[k, :len(both)] = both
        lab[k, :len(s)] = 1
        lab[k, len(s):len(both)] = 0
    box = None
    if p.box is not None:
        bp = np.concatenate([pos, neg])[None]
        bl = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]).astype(np.int64)[None]
        box = (bp, bl, np.asarray(p.box, dtype=np.float64)[None])
    return (pts, lab), box


def best_per_prompt(pred: MaskPrediction, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each prompt keep the candidate maximising ``iou * (mass - area)``: bool ``(P, H, W)``
    masks and their float ``(P,)`` SAM iou scores."""
    p, k = pred.iou.shape
    flat = pred.masks.reshape(p * k, *pred.masks.shape[2:])
    g = gain(flat, values, pred.iou.reshape(-1)).reshape(p, k)
    best = g.argmax(axis=1)
    return pred.masks[np.arange(p), best], pred.iou[np.arange(p), best]


def automatic_masks(seg: PromptSegmenter, pixels: np.ndarray, points_per_side: int = 16, pred_iou_thresh: float = 0.88,
                    stability_thresh: float = 0.92, dedupe_iou: float = 0.7, chunk: int = 64,
                    min_area: float = 0.001) -> tuple[np.ndarray, np.ndarray]:
    """SAM's automatic masks: a ``points_per_side²`` grid of single positive points, multimask,
    filtered by predicted IoU and stability, deduplicated by mask IoU (higher iou wins).

    Returns:
        bool ``(M, H, W)`` masks and float ``(M,)`` iou scores, best first (``M`` may be 0).
    """
    seg.set_image(pixels)
    h, w = pixels.shape[:2]
    g = (np.arange(points_per_side) + 0.5) / points_per_side
    grid = np.stack(np.meshgrid(g * w, g * h), -1).reshape(-1, 1, 2)
    keep_m, keep_q = [], []
    for i in range(0, len(grid), chunk):
        pts = grid[i:i + chunk]
        pred = seg.predict(pts, np.ones(pts.shape[:2], dtype=np.int64), multimask=True,
                           min_quality=(pred_iou_thresh, stability_thresh))
        ok = (pred.iou >= pred_iou_thresh) & (pred.stability >= stability_thresh)
        ok &= pred.masks.mean(axis=(2, 3)) >= min_area
        keep_m.append(pred.masks[ok])
        keep_q.append(pred.iou[ok])
    masks = np.concatenate(keep_m) if keep_m else np.zeros((0, h, w), dtype=bool)
    q = np.concatenate(keep_q) if keep_q else np.zeros(0)
    order = np.argsort(-q, kind="stable")
    masks, q = masks[order], q[order]
    if len(masks) == 0:
        return masks, q
    iou = mask_iou(masks, masks)
    kept: list[int] = []
    for i in range(len(masks)):
        if not kept or iou[i, kept].max() < dedupe_iou:
            kept.append(i)
    return masks[kept], q[kept]


@SEGMENTERS.register
class SamRegions:
    """Regions cut by SAM where the map points.

    Args:
        model: a segmenter spec (``hf:<id or folder>``, ``sam:vit_b=<ckpt>``) or a loaded one.
        coverage: share of positive attribution the regions should hold, ``(0, 1]``.
        max_regions, min_area: at most this many regions, each at least this share of the image.
        proposals: ``prompts`` (prompted by the map) or ``automatic`` (grid of points, then chosen
            by attribution).
        n_positive, n_negative: how many positive / negative points to place.
        points_per_side, pred_iou_thresh, stability_thresh: options of ``automatic_masks``.
        device: where a spec is loaded.
    """

    name = "sam"

    def __init__(self, model: str | PromptSegmenter = "hf:facebook/sam-vit-base", coverage: float = 0.5,
                 max_regions: int = 5, min_area: float = 0.005,
                 proposals: Literal["prompts", "automatic"] = "prompts", n_positive: int = 3, n_negative: int = 3,
                 points_per_side: int = 16, pred_iou_thresh: float = 0.88, stability_thresh: float = 0.92,
                 dedupe_iou: float = 0.7, device: str | torch.device = "cpu") -> None:
        if not 0 < coverage <= 1:
            raise ValueError("coverage must be in (0, 1]")
        if proposals not in ("prompts", "automatic"):
            raise ValueError("proposals must be 'prompts' or 'automatic'")
        self.segmenter = load_segmenter(model, device) if isinstance(model, str) else model
        self.coverage, self.max_regions, self.min_area = coverage, max_regions, min_area
        self.proposals, self.n_positive, self.n_negative = proposals, n_positive, n_negative
        self.auto = dict(points_per_side=points_per_side, pred_iou_thresh=pred_iou_thresh,
                         stability_thresh=stability_thresh, dedupe_iou=dedupe_iou)
        self.dedupe_iou = dedupe_iou

    def candidates(self, image: ImageInput, amap: AttributionMap) -> tuple[np.ndarray, np.ndarray]:
        """Candidate masks bool ``(M, H, W)`` and their SAM iou ``(M,)`` for this map."""
        if self.proposals == "automatic":
            return self.automatic(image)
        self.segmenter.set_image(image.pixels)
        p = map_prompts(amap.values, self.n_positive, self.n_negative)
        if len(p.positive) == 0:
            h, w = image.size_hw
            return np.zeros((0, h, w), dtype=bool), np.zeros(0)
        (pts, lab), box = prompt_batches(p)
        masks, q = best_per_prompt(self.segmenter.predict(pts, lab, multimask=True), amap.values)
        if box is not None:
            bm, bq = best_per_prompt(self.segmenter.predict(box[0], box[1], box[2], multimask=True), amap.values)
            masks, q = np.concatenate([masks, bm]), np.concatenate([q, bq])
        return masks, q

    def automatic(self, image: ImageInput) -> tuple[np.ndarray, np.ndarray]:
        """SAM's automatic masks for the image (see ``automatic_masks``)."""
        return automatic_masks(self.segmenter, image.pixels, **self.auto)

    def regions(self, image: ImageInput, amap: AttributionMap) -> list[Region]:
        """Disjoint regions ranked by attribution mass (``Region.id`` 0 holds the most)."""
        masks, q = self.candidates(image, amap)
        chosen = select_masks(masks, amap.values, q, self.coverage, self.max_regions, self.min_area, self.dedupe_iou)
        regions = [region_from_mask(0, m, amap.values, "sam") for m in chosen]
        regions.sort(key=lambda r: -r.attribution_mass)
        return [_with_id(r, i) for i, r in enumerate(regions)]


def _with_id(r: Region, i: int) -> Region:
    import dataclasses

    return dataclasses.replace(r, id=i)
