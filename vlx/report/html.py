"""Self-contained HTML report (images embedded as PNG data URIs), rendered with Jinja2 with
autoescaping on, so file names, labels and model or LLM text can never inject markup.

``render_html(expl)`` is the report of one explanation; ``extras`` adds a method-comparison
grid, MLLM token maps and a few-shot episode (each section appears only when given).
``render_comparison(image, maps)`` is a page with just the comparison grid."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import jinja2
import numpy as np

from vlx.report.images import REGION_COLORS, _ANCHORS, data_uri, outline_regions, overlay
from vlx.report.sections import ReportExtras, comparison_cells, episode_data, token_cells
from vlx.types import AttributionMap, Explanation, ImageInput, MetricResult, Region
from vlx.verbalize.format import pct
from vlx.verbalize.template import method_display_name

STATUS_LABELS = {
    "verified": ("verified", "ok", "Checked against the measurements: every number and what it measures, the "
                 "region each number is about, every class and concept name, and every other word against the "
                 "vocabulary of what vlx measures."),
    "corrected": ("corrected", "warn", "The text stated wrong numbers; they were replaced by the measured ones."),
    "rejected": ("rejected", "bad", "The text failed the check and is not used as the explanation."),
    "unchecked": ("not checked", "muted", "This text was not checked against the measurements."),
    "failed": ("failed check", "bad", "This text does not match the measurements."),
}


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("vlx.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def render_html(expl: Explanation, coverage: float = 0.5, extras: ReportExtras | None = None) -> str:
    """The report of one explanation as one HTML string with everything embedded."""
    from vlx import __version__

    ex = extras or ReportExtras()
    data = expl.to_json()
    px = expl.image.pixels
    images = {
        "input": data_uri(px),
        "overlay": data_uri(overlay(px, expl.attribution.normalized())),
        "regions": data_uri(outline_regions(px, [r.mask for r in expl.regions])),
    }
    maps = dict(ex.maps)
    if maps and expl.attribution.method not in maps:
        maps = {expl.attribution.method: expl.attribution, **maps}
    by_method = dict(ex.metrics_by_method)
    if maps and expl.metrics and expl.attribution.method not in by_method:
        by_method[expl.attribution.method] = expl.metrics
    target = dict(data["target"], score_pct=pct(expl.target_score))
    prediction = [dict(p, pct=pct(p["score"])) for p in data["prediction"]]
    facts = {f.key: f.value for f in expl.verbalization.facts}
    return _env().get_template("report.html.j2").render(
        model=expl.model, model_display=facts.get("model", expl.model),
        method_display=method_display_name(expl.attribution.method), layer=expl.attribution.layer,
        image=data["image"], target=target, prediction=prediction,
        regions=[_region(r, px, expl.target_score) for r in expl.regions],
        verbalization=verbal(expl.verbalization.to_json()),
        alternatives=[verbal(v.to_json()) for v in expl.alternatives],
        metrics=metric_groups(expl.metrics), map_trust=map_trust(expl), images=images, ramp=ramp_css(), coverage_pct=pct(coverage),
        timing=[(k, f"{v:.2f}") for k, v in data["timing_s"].items() if k != "total"],
        total_s=f"{data['timing_s'].get('total', 0.0):.2f}", version=__version__,
        comparison=comparison_cells(expl.image, maps, by_method) if maps else [],
        tokens=token_cells(expl.image, ex.token_maps) if ex.token_maps else [],
        episode=episode_data(ex.episode) if ex.episode is not None else None,
    )


def render_comparison(image: ImageInput, maps: Mapping[str, AttributionMap],
                      metrics_by_method: Mapping[str, Sequence[MetricResult]] | None = None,
                      title: str = "") -> str:
    """A self-contained page with the input and one overlay per method (``maps``: name → map at
    the image's resolution), each with its metrics and their direction."""
    from vlx import __version__

    return _env().get_template("comparison.html.j2").render(
        title=title or f"Attribution methods on {image.id}", image_id=image.id, input_src=data_uri(image.pixels, 420),
        cells=comparison_cells(image, maps, metrics_by_method), ramp=ramp_css(), version=__version__)


def render_eval(title: str, headers: Sequence[str], body: Sequence[Sequence[Any]],
                curve_pngs: Sequence[Path] = (), chips: Sequence[str] = (), notes: str = "") -> str:
    """A self-contained page for ``vlx eval``: the results table (cells: str, number or None) and
    the curve PNGs embedded."""
    import base64

    from vlx import __version__

    def cell(c: Any) -> dict[str, Any]:
        if c is None:
            return {"text": "", "num": False}
        if isinstance(c, float):
            return {"text": "nan" if c != c else f"{c:.3f}", "num": True}
        return {"text": str(c), "num": isinstance(c, int)}

    curves = [{"name": Path(p).stem.replace("_", " "),
               "src": "data:image/png;base64," + base64.b64encode(Path(p).read_bytes()).decode("ascii")}
              for p in curve_pngs]
    return _env().get_template("eval.html.j2").render(
        title=title, headers=list(headers), body=[[cell(c) for c in row] for row in body], curves=curves,
        chips=list(chips), notes=notes, ramp=ramp_css(), version=__version__)


def ramp_css() -> str:
    """The colour map's anchors as a CSS gradient stop list."""
    return ", ".join(f"rgb({int(a)},{int(b)},{int(c)})" for a, b, c in _ANCHORS)


def verbal(v: dict[str, Any]) -> dict[str, Any]:
    """Template data for a verbalization: text, verifier status badge, issues, original text."""
    check = v.get("check") or {}
    status = check.get("status")
    if status not in STATUS_LABELS:
        status = {True: "verified", False: "failed", None: "unchecked"}[v.get("verified")]
    label, css, meaning = STATUS_LABELS[status]
    original = check.get("original")
    fidelity = check.get("fidelity")
    return {"text": v["text"], "style": v.get("style", ""), "verbalizer": v.get("verbalizer", ""),
            "status": status, "status_label": label, "css": css, "meaning": meaning,
            "issues": [str(i) for i in check.get("issues", [])],
            "original": original if isinstance(original, str) and original.strip() != v["text"].strip() else None,
            "fallback": check.get("fallback"), "llm": check.get("llm"),
            "fidelity": pct(fidelity) if isinstance(fidelity, (int, float)) else None}


def metric_groups(metrics: Sequence[MetricResult]) -> list[dict[str, Any]]:
    """Metrics grouped by category, each with its value and direction ("↑ higher is better")."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in metrics:
        details = [(k, _short(v)) for k, v in m.details.items() if isinstance(v, (int, float, str, bool))][:4]
        groups.setdefault(m.category, []).append({
            "name": m.name, "value": f"{m.value:.3f}", "arrow": "↑" if m.higher_is_better else "↓",
            "better": "higher is better" if m.higher_is_better else "lower is better", "details": details})
    return [{"category": c, "metrics": ms} for c, ms in groups.items()]


def map_trust(expl: Explanation) -> dict[str, Any] | None:
    """Template data for the map's own measurement: the measured sentence (from the verified
    text's facts), deletion and insertion next to random maps with a verdict and the curves as
    SVG points, and the cached sanity check. ``None`` when the explanation holds none of them."""
    by_name = {m.name: m for m in expl.metrics}
    curves = []
    for name in ("deletion", "insertion"):
        m = by_name.get(name)
        if m is None or "random" not in m.details:
            continue
        rnd = float(m.details["random"])
        better = m.value > rnd if m.higher_is_better else m.value < rnd
        curves.append({"name": name.capitalize(), "value": f"{m.value:.3f}", "random": f"{rnd:.3f}",
                       "arrow": "↑" if m.higher_is_better else "↓",
                       "better": "higher is better" if m.higher_is_better else "lower is better",
                       "verdict": "better than random" if better else "no better than random",
                       "css": "ok" if better else "bad", "better_than_random": better,
                       "points": _points(m.details["fractions"], m.details["curve"]),
                       "random_points": _points(m.details["fractions"],
                                                np.mean(m.details["random_curves"], axis=0).tolist())})
    s = by_name.get("sanity")
    sanity = None
    if s is not None and "passed" in s.details:
        passed = bool(s.details["passed"])
        sanity = {"value": f"{s.value:.2f}", "passed": passed, "verdict": "passes" if passed else "fails",
                  "css": "ok" if passed else "bad", "threshold": s.details.get("threshold"),
                  "repeats": s.details.get("repeats"), "image": s.details.get("image"),
                  "cached": bool(s.details.get("cached")), "flat": s.value == 0.0}
    if not curves and sanity is None:
        return None
    first = by_name.get("deletion") or by_name.get("insertion")
    facts = {f.key for f in expl.verbalization.facts}
    sentence = next((x.strip() + "." for x in expl.verbalization.text.split(".") if "random" in x), None) \
        if "map.fraction" in facts else None
    no_better = " and ".join(c["name"].lower() for c in curves if not c["better_than_random"])
    return {"curves": curves, "sanity": sanity, "sentence": sentence, "no_better": no_better,
            "steps": first.details.get("steps") if first else None, "baseline": first.details.get("baseline") if first else None,
            "n_random": first.details.get("random_maps") if first else None}


def _points(xs: Sequence[float], ys: Sequence[float], w: int = 120, h: int = 48) -> str:
    """SVG polyline points of a curve on ``[0, 1] x [0, 1]`` in a ``w x h`` box (y up)."""
    return " ".join(f"{2 + x * (w - 4):.1f},{h - 2 - min(1.0, max(0.0, y)) * (h - 4):.1f}" for x, y in zip(xs, ys))


def _short(v: int | float | str | bool) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    return str(v)[:40]


def _region(r: Region, px: np.ndarray, before: float) -> dict[str, Any]:
    d = r.description
    kept = getattr(r, "score_when_kept", None)
    shap = getattr(r, "shapley_value", None)
    return {
        "id": r.id, "position": r.position, "color": REGION_COLORS[r.id % len(REGION_COLORS)],
        "attribution_mass": r.attribution_mass, "mass_pct": pct(r.attribution_mass), "area_pct": pct(r.area_fraction),
        "after_pct": pct(r.score_after_removal) if r.score_after_removal is not None else "—",
        "drop": (before - r.score_after_removal) if r.score_after_removal is not None else None,
        "kept_pct": pct(kept) if kept is not None else None,
        "shapley": f"{shap:+.3f}" if shap is not None else None,
        "description": d.text if d else "", "labels": list(d.labels[:3]) if d else [],
        "colors": list(d.colors[:3]) if d else [], "source": r.source, "crop": _crop(px, r),
    }


def _crop(px: np.ndarray, r: Region, max_side: int = 180) -> str:
    """The region's box (padded by 10%) with its outline, as a small embedded PNG."""
    h, w = px.shape[:2]
    x0, y0, x1, y1 = r.bbox_xyxy
    pw, ph = max(2, (x1 - x0) // 10), max(2, (y1 - y0) // 10)
    x0, y0, x1, y1 = max(0, x0 - pw), max(0, y0 - ph), min(w, x1 + pw), min(h, y1 + ph)
    crop = outline_regions(px[y0:y1, x0:x1], [r.mask[y0:y1, x0:x1]], width=2,
                           colors=[REGION_COLORS[r.id % len(REGION_COLORS)]])
    return data_uri(np.ascontiguousarray(crop), max_side)
