"""Support diagnosis: which shot carries the segmentation, and which one to replace.

For each shot: its share of the positive support attribution, the query IoU when the shot is
dropped (the episode run with the other K−1 shots), the change against the full support in
points (percentage points of IoU), and a rank by share (1 = contributes most). The IoU reference
is the ground-truth query mask when given, else the model's prediction with all shots (then
dropping a shot can only lower the agreement, and the sentence says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vlx.fewshot.explain import SupportAttribution
from vlx.fewshot.inputs import EpisodeInputs, query_prediction
from vlx.fewshot.metrics import iou, reference_mask
from vlx.fewshot.protocol import FewShotModel


@dataclass(frozen=True)
class ShotReport:
    """One support shot. ``index`` is 0-based (text says "shot index+1"); ``share`` in ``[0, 1]``;
    ``iou_without`` in ``[0, 1]`` or ``None`` for a single shot; ``delta_points`` is
    ``100 · (iou_without − iou_all)`` (positive: dropping the shot helps)."""

    index: int
    share: float
    rank: int
    iou_without: float | None
    delta_points: float | None

    def to_json(self) -> dict[str, Any]:
        return {"shot": self.index + 1, "share": self.share, "rank": self.rank,
                "iou_without": self.iou_without, "delta_points": self.delta_points}


@dataclass(frozen=True)
class Diagnosis:
    """Per-shot report, the query IoU with all shots, what it was measured against, a sentence."""

    shots: tuple[ShotReport, ...]
    iou_all: float
    reference: str
    sentence: str

    def to_json(self) -> dict[str, Any]:
        return {"iou_all": self.iou_all, "reference": self.reference, "sentence": self.sentence,
                "shots": [s.to_json() for s in self.shots]}


@torch.no_grad()
def drop_one_ious(model: FewShotModel, inputs: EpisodeInputs, ref: torch.Tensor) -> tuple[float, list[float]]:
    """Query IoU with all shots, and with each shot dropped in turn (``[]`` for one shot)."""
    full = iou(query_prediction(model.forward(inputs.query, inputs.support, inputs.masks), inputs.query_hw), ref)
    k = inputs.shots
    without = []
    for i in range(k if k > 1 else 0):
        keep = [j for j in range(k) if j != i]
        out = model.forward(inputs.query, inputs.support[:, keep], inputs.masks[:, keep])
        without.append(float(iou(query_prediction(out, inputs.query_hw), ref)[0]))
    return float(full[0]), without


def diagnose(model: FewShotModel, inputs: EpisodeInputs, attribution: SupportAttribution,
             gt: np.ndarray | None = None) -> Diagnosis:
    """Diagnose the support set of one episode from an attribution (any explainer)."""
    shares = attribution.shot_shares()
    ref = reference_mask(model, inputs, gt)
    full, without = drop_one_ious(model, inputs, ref)
    order = np.argsort(-shares, kind="stable")
    rank = np.empty(len(shares), dtype=int)
    rank[order] = np.arange(1, len(shares) + 1)
    shots = tuple(ShotReport(i, float(shares[i]), int(rank[i]), without[i] if without else None,
                             100.0 * (without[i] - full) if without else None) for i in range(len(shares)))
    reference = "ground truth" if gt is not None else "prediction"
    return Diagnosis(shots, full, reference, sentence(shots, full, reference))


def sentence(shots: tuple[ShotReport, ...], iou_all: float, reference: str) -> str:
    """One sentence with the measured numbers, e.g. "Shot 3 contributes least (9% of the support
    attribution) and dropping it raises mIoU by 4 points (71 → 75)."."""
    least = max(shots, key=lambda s: s.rank)
    most = min(shots, key=lambda s: s.rank)
    if len(shots) == 1 or least.delta_points is None:
        return f"The single shot carries all of the support attribution; query mIoU is {100 * iou_all:.0f}."
    head = f"Shot {least.index + 1} contributes least ({100 * least.share:.0f}% of the support attribution)"
    d = round(least.delta_points)
    before, after = 100 * iou_all, 100 * least.iou_without
    if reference == "prediction":
        tail = (f"dropping it leaves the prediction unchanged" if d == 0 else
                f"dropping it changes the prediction (IoU with the all-shot prediction {after:.0f}%)")
    elif d > 0:
        tail = f"dropping it raises mIoU by {d} point{'s' if d != 1 else ''} ({before:.0f} → {after:.0f}): consider replacing it"
    elif d < 0:
        tail = f"dropping it lowers mIoU by {-d} point{'s' if d != -1 else ''} ({before:.0f} → {after:.0f})"
    else:
        tail = f"dropping it leaves mIoU at {before:.0f}"
    return f"{head} and {tail}. Shot {most.index + 1} contributes most ({100 * most.share:.0f}%)."
