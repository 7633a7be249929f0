"""Core frozen dataclasses that flow between the stages of vlx.

Conventions used everywhere in vlx:

* Images are RGB ``uint8`` arrays of shape ``(H, W, 3)`` (never BGR), converted once at load.
* Maps are ``float32`` arrays of shape ``(H, W)`` at the input image's resolution.
* Boxes are ``(x0, y0, x1, y1)`` in pixels, ``x1``/``y1`` exclusive (XYXY).
* Fractions and probabilities are floats in ``[0, 1]``; text renders them as percentages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class ImageInput:
    """One image, RGB uint8 ``(H, W, 3)``, with where it came from.

    Attributes:
        pixels: RGB uint8 array of shape ``(H, W, 3)``.
        path: the file it was read from, if any.
        id: a short name for reports and output folders (the file stem by default).
    """

    pixels: np.ndarray
    path: str | None = None
    id: str = "image"

    def __post_init__(self) -> None:
        p = self.pixels
        if not (isinstance(p, np.ndarray) and p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8):
            raise ValueError("ImageInput.pixels must be a uint8 array of shape (H, W, 3)")

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.pixels.shape[0]), int(self.pixels.shape[1])


@dataclass(frozen=True)
class ClassTarget:
    """Explain the logit of a class (one index for the batch, or one per sample).

    Attributes:
        index: a class index, or a tuple with one index per sample of the batch.
        label: human-readable class name (for text and reports).
    """

    index: int | tuple[int, ...]
    label: str = ""

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the explained score per sample, shape ``(B,)``, from logits ``(B, C)``."""
        return logits.gather(1, _indices(self.index, logits)).squeeze(1)

    @property
    def primary(self) -> int:
        return self.index if isinstance(self.index, int) else int(self.index[0])

    def to_json(self) -> dict[str, Any]:
        return {"kind": "class", "index": self.index, "label": self.label}


@dataclass(frozen=True)
class ContrastTarget:
    """Explain "A and not B": the logit difference ``logit_A - logit_B``."""

    index: int | tuple[int, ...]
    other: int | tuple[int, ...]
    label: str = ""
    other_label: str = ""

    def score(self, logits: torch.Tensor) -> torch.Tensor:
        a = logits.gather(1, _indices(self.index, logits)).squeeze(1)
        b = logits.gather(1, _indices(self.other, logits)).squeeze(1)
        return a - b

    @property
    def primary(self) -> int:
        return self.index if isinstance(self.index, int) else int(self.index[0])

    def to_json(self) -> dict[str, Any]:
        return {"kind": "contrast", "index": self.index, "label": self.label,
                "other": self.other, "other_label": self.other_label}


Target = ClassTarget | ContrastTarget


def _indices(index: int | Sequence[int], logits: torch.Tensor) -> torch.Tensor:
    b = logits.shape[0]
    if isinstance(index, int):
        idx = torch.full((b, 1), index, dtype=torch.long, device=logits.device)
    else:
        if len(index) != b:
            raise ValueError(f"target has {len(index)} indices for a batch of {b}")
        idx = torch.tensor(list(index), dtype=torch.long, device=logits.device)[:, None]
    return idx


@dataclass(frozen=True)
class Prediction:
    """The model's top classes for one image. ``scores`` are softmax probabilities."""

    indices: tuple[int, ...]
    labels: tuple[str, ...]
    scores: tuple[float, ...]

    def to_json(self) -> list[dict[str, Any]]:
        return [{"index": i, "label": l, "score": s} for i, l, s in zip(self.indices, self.labels, self.scores)]


@dataclass(frozen=True)
class AttributionMap:
    """An attribution map for one image.

    Attributes:
        values: float32 ``(H, W)`` at the input image's resolution, not normalised.
        raw: float32 map at the method's own resolution (layer grid for CAMs, model input for
            gradient methods), not normalised.
        method: registry name of the method.
        target: what was explained.
        layer: the layer name for layer methods, else ``None``.
        signed: whether negative values carry meaning (``False``: values are ``>= 0``).
        seconds: wall time of the attribution call.
        sampling: for sampled methods (KernelSHAP, LIME, RISE), what the method's ``last_info``
            reports: ``samples`` scored, ``max_samples``, ``stderr`` (largest standard error of the
            map, score units), ``tolerance``, ``converged`` and ``sampler``; empty otherwise.
    """

    values: np.ndarray
    raw: np.ndarray
    method: str
    target: Target
    layer: str | None = None
    signed: bool = False
    seconds: float = 0.0
    sampling: dict[str, Any] = field(default_factory=dict)

    def normalized(self) -> np.ndarray:
        """Return ``values`` scaled to ``[0, 1]`` (positive part divided by its maximum)."""
        v = np.clip(self.values, 0, None) if not self.signed else np.abs(self.values)
        m = float(v.max())
        return (v / m).astype(np.float32) if m > 0 else np.zeros_like(v, dtype=np.float32)


@dataclass(frozen=True)
class RegionDescription:
    """Words for one region: what the model sees in it and its dominant colours.

    ``labels``/``label_scores``: class labels (offline) or concepts (CLIP) with scores in
    ``[0, 1]``; ``traits``: measured visual traits (see ``vlx.describe.traits.TRAIT_RANGES``:
    hue, saturation, brightness, contrast, texture, elongation, compactness); ``source``: the
    describer that wrote it (``offline``, ``clip:...``, ``vlm:...``)."""

    labels: tuple[str, ...] = ()
    label_scores: tuple[float, ...] = ()
    colors: tuple[str, ...] = ()
    text: str = ""
    source: str = "offline"
    traits: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "label_scores": list(self.label_scores),
                "colors": list(self.colors), "text": self.text, "source": self.source,
                "traits": dict(self.traits)}


@dataclass(frozen=True)
class Region:
    """A region that carries part of the decision.

    Attributes:
        id: rank of the region (0 = holds the most attribution).
        mask: boolean ``(H, W)`` at the image's resolution.
        bbox_xyxy: ``(x0, y0, x1, y1)`` in pixels, exclusive end.
        area_fraction: share of the image's pixels in ``[0, 1]``.
        attribution_mass: share of the map's positive attribution inside the region, ``[0, 1]``.
        mean_attribution: mean of the raw map values inside the region.
        position: where it lies, in words ("centre-left").
        source: how it was cut ("superpixel", "sam", "threshold").
        score_after_removal: target probability once the region is blurred out, or ``None``.
        score_when_kept: target probability when only the region is kept (the rest blurred out),
            or ``None``.
        shapley_value: the region's Shapley value (probability units) with the selected regions
            as players, or ``None`` when not computed.
        description: words for the region, or ``None`` before description.
    """

    id: int
    mask: np.ndarray
    bbox_xyxy: tuple[int, int, int, int]
    area_fraction: float
    attribution_mass: float
    mean_attribution: float
    position: str
    source: str = "superpixel"
    score_after_removal: float | None = None
    description: RegionDescription | None = None
    score_when_kept: float | None = None
    shapley_value: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "bbox_xyxy": list(self.bbox_xyxy), "area_fraction": self.area_fraction,
            "attribution_mass": self.attribution_mass, "mean_attribution": self.mean_attribution,
            "position": self.position, "source": self.source,
            "score_after_removal": self.score_after_removal,
            "score_when_kept": self.score_when_kept, "shapley_value": self.shapley_value,
            "description": self.description.to_json() if self.description else None,
        }


@dataclass(frozen=True)
class Fact:
    """One measured fact a verbalization may state: ``key`` names it, ``value`` is exact."""

    key: str
    value: float | str

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True)
class Verbalization:
    """Text for an explanation and the facts it states (every number in it is one of them).

    ``verified``: ``True`` when every stated number, region and class matches the facts (always
    for templates), ``False`` when the text failed the check, ``None`` when not checked.
    ``check``: the verifier's record (status verified/corrected/rejected, issues, original text).
    """

    text: str
    style: str
    verbalizer: str
    facts: tuple[Fact, ...]
    verified: bool | None = None
    check: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"style": self.style, "verbalizer": self.verbalizer, "text": self.text,
                "facts": [f.to_json() for f in self.facts], "verified": self.verified, "check": self.check}


@dataclass(frozen=True)
class MetricResult:
    """A measured score with its direction and category."""

    name: str
    value: float
    higher_is_better: bool
    category: Literal["faithfulness", "localisation", "sanity", "complexity", "text", "fewshot"]
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "higher_is_better": self.higher_is_better,
                "category": self.category, "details": self.details}


@dataclass(frozen=True)
class Explanation:
    """Everything vlx knows about one explained prediction. ``to_json`` is JSON-serialisable;
    the arrays (map, masks) are written beside it as files by the report writers."""

    image: ImageInput
    model: str
    prediction: Prediction
    target: Target
    target_score: float
    attribution: AttributionMap
    regions: tuple[Region, ...]
    verbalization: Verbalization
    metrics: tuple[MetricResult, ...] = ()
    timing_s: dict[str, float] = field(default_factory=dict)
    alternatives: tuple[Verbalization, ...] = ()

    def to_json(self) -> dict[str, Any]:
        t = self.target
        target = {**t.to_json(), "index": t.primary, "label": t.label, "score": self.target_score}
        return {
            "image": {"id": self.image.id, "path": self.image.path,
                      "height": self.image.size_hw[0], "width": self.image.size_hw[1]},
            "model": self.model,
            "method": self.attribution.method,
            "layer": self.attribution.layer,
            **({"sampling": dict(self.attribution.sampling)} if self.attribution.sampling else {}),
            "target": target,
            "prediction": self.prediction.to_json(),
            "regions": [r.to_json() for r in self.regions],
            "verbalization": self.verbalization.to_json(),
            "alternatives": [v.to_json() for v in self.alternatives],
            "metrics": [m.to_json() for m in self.metrics],
            "timing_s": dict(self.timing_s),
        }
