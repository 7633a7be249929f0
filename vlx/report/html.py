"""Self-contained HTML report (images embedded as PNG data URIs), rendered with Jinja2 with
autoescaping on, so file names, labels and model text can never inject markup."""

from __future__ import annotations

from functools import lru_cache

import jinja2

from vlx.report.images import REGION_COLORS, _ANCHORS, data_uri, outline_regions, overlay
from vlx.types import Explanation
from vlx.verbalize.format import pct
from vlx.verbalize.template import method_display_name


@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.PackageLoader("vlx.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined)


def render_html(expl: Explanation, coverage: float = 0.5) -> str:
    """The report of one explanation as one HTML string with everything embedded."""
    from vlx import __version__

    data = expl.to_json()
    px = expl.image.pixels
    images = {
        "input": data_uri(px),
        "overlay": data_uri(overlay(px, expl.attribution.normalized())),
        "regions": data_uri(outline_regions(px, [r.mask for r in expl.regions])),
    }
    regions = []
    for r in expl.regions:
        d = r.description
        regions.append({
            "id": r.id, "position": r.position, "color": REGION_COLORS[r.id % len(REGION_COLORS)],
            "attribution_mass": r.attribution_mass, "mass_pct": pct(r.attribution_mass),
            "area_pct": pct(r.area_fraction),
            "after_pct": pct(r.score_after_removal) if r.score_after_removal is not None else "—",
            "description": d.text if d else "",
        })
    target = dict(data["target"], score_pct=pct(expl.target_score))
    prediction = [dict(p, pct=pct(p["score"])) for p in data["prediction"]]
    ramp = ", ".join(f"rgb({int(a)},{int(b)},{int(c)})" for a, b, c in _ANCHORS)
    return _env().get_template("report.html.j2").render(
        model=expl.model, model_display=expl.verbalization.facts[0].value if expl.verbalization.facts else expl.model,
        method_display=method_display_name(expl.attribution.method), layer=expl.attribution.layer,
        image=data["image"], target=target, prediction=prediction, regions=regions,
        verbalization=data["verbalization"], metrics=data["metrics"], images=images, ramp=ramp,
        coverage_pct=pct(coverage), timing=data["timing_s"], version=__version__,
    )
