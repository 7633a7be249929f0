"""Optional report sections: a method-comparison grid, MLLM token maps and few-shot episodes.

Each builder turns arrays into template data (embedded PNGs, formatted numbers); the report
renders a section only when its data is given. Untrusted strings stay plain strings here and
are escaped by the template."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from vlx.report.images import data_uri, outline_regions, overlay
from vlx.types import AttributionMap, ImageInput, MetricResult
from vlx.verbalize.format import pct


@dataclass(frozen=True)
class TokenMap:
    """A map for one answer token of a vision-language model.

    Attributes:
        token: the token's text as decoded.
        position: its index in the answer.
        values: float ``(H, W)`` at the image's resolution (any range; shown normalised).
        score: the token's probability, if known.
        leans_on: earlier words the token depended on, with weights in ``[0, 1]``.
    """

    token: str
    position: int
    values: np.ndarray
    score: float | None = None
    leans_on: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class SupportShot:
    """One support example of a few-shot episode: image RGB uint8 ``(H, W, 3)``, its mask
    bool ``(H, W)``, how much it contributed to the query's prediction, and optionally a map of
    which support pixels mattered (float ``(H, W)``)."""

    image: np.ndarray
    mask: np.ndarray
    contribution: float
    attribution: np.ndarray | None = None
    label: str = ""


@dataclass(frozen=True)
class FewShotEpisode:
    """A few-shot segmentation episode: the query, the predicted mask, the support shots, and
    (optionally) the shot the explainer suggests replacing, by index."""

    query: np.ndarray
    predicted_mask: np.ndarray
    shots: tuple[SupportShot, ...]
    replace_suggestion: int | None = None
    note: str = ""


@dataclass(frozen=True)
class ReportExtras:
    """What a report may show beyond the ``Explanation``: maps of other methods (the
    comparison grid, with their metrics by method), token maps and a few-shot episode."""

    maps: Mapping[str, AttributionMap] = field(default_factory=dict)
    metrics_by_method: Mapping[str, Sequence[MetricResult]] = field(default_factory=dict)
    token_maps: Sequence[TokenMap] = ()
    episode: FewShotEpisode | None = None


def _norm(values: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(np.asarray(values, dtype=np.float32))
    v = np.clip(v, 0, None) if v.min() >= 0 or v.max() > 0 else np.abs(v)
    m = float(v.max()) if v.size else 0.0
    return v / m if m > 0 else np.zeros_like(v)


def comparison_cells(image: ImageInput, maps: Mapping[str, AttributionMap],
                     metrics_by_method: Mapping[str, Sequence[MetricResult]] | None = None,
                     max_side: int = 420) -> list[dict[str, Any]]:
    """One grid cell per method: its overlay, display name, layer, timing and metrics."""
    from vlx.verbalize.template import method_display_name

    cells = []
    for name, amap in maps.items():
        if amap.values.shape != image.size_hw:
            raise ValueError(f"map of {name!r} has shape {amap.values.shape}; the image is {image.size_hw}")
        ms = [{"name": m.name, "value": f"{m.value:.3f}", "arrow": "↑" if m.higher_is_better else "↓",
               "better": "higher" if m.higher_is_better else "lower"} for m in (metrics_by_method or {}).get(name, ())]
        cells.append({"method": name, "display": method_display_name(amap.method), "layer": amap.layer,
                      "seconds": f"{amap.seconds:.2f}", "signed": amap.signed, "metrics": ms,
                      "src": data_uri(overlay(image.pixels, amap.normalized()), max_side)})
    return cells


def token_cells(image: ImageInput, tokens: Sequence[TokenMap], max_side: int = 320) -> list[dict[str, Any]]:
    """One cell per answer token: overlay, token text, probability, words it leaned on."""
    return [{"token": t.token, "position": t.position, "score": pct(t.score) if t.score is not None else None,
             "leans_on": [{"word": w, "weight": pct(x), "width": round(60 * max(0.0, min(1.0, x)))}
                          for w, x in t.leans_on],
             "src": data_uri(overlay(image.pixels, _norm(t.values)), max_side)} for t in tokens]


def episode_data(ep: FewShotEpisode, max_side: int = 320) -> dict[str, Any]:
    """Query with its predicted mask, and each shot with its mask, map and contribution."""
    shots = []
    total = sum(max(0.0, s.contribution) for s in ep.shots) or 1.0
    for i, s in enumerate(ep.shots):
        shots.append({"index": i, "label": s.label, "contribution": f"{s.contribution:.3f}",
                      "share": pct(max(0.0, s.contribution) / total),
                      "width": round(100 * max(0.0, s.contribution) / total),
                      "replace": ep.replace_suggestion == i,
                      "mask_src": data_uri(outline_regions(s.image, [s.mask]), max_side),
                      "map_src": data_uri(outline_regions(overlay(s.image, _norm(s.attribution)), [s.mask]), max_side)
                      if s.attribution is not None else None})
    return {"query_src": data_uri(outline_regions(ep.query, [ep.predicted_mask]), max_side), "shots": shots,
            "note": ep.note, "replace": ep.replace_suggestion}
