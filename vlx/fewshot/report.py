"""A self-contained HTML report of one few-shot explanation: support and query panels, the shot
diagnosis and the measured metrics. Images are inlined as base64 PNG; every text goes through
Jinja2 with autoescape on."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Sequence

import numpy as np

from vlx.fewshot.diagnose import Diagnosis
from vlx.fewshot.explain import SupportAttribution
from vlx.types import MetricResult

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>vlx few-shot: {{ title }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2rem;color:#222;max-width:1200px}
.row{display:flex;flex-wrap:wrap;gap:1rem}.panel{border:1px solid #ddd;border-radius:6px;padding:.5rem}
.panel img{width:{{ width }}px;height:auto;display:block;margin-bottom:.3rem}
table{border-collapse:collapse;margin:1rem 0}td,th{border-bottom:1px solid #eee;padding:.3rem .7rem;text-align:right}
th:first-child,td:first-child{text-align:left}.sentence{font-size:1.15rem;background:#f6f8fa;padding:.8rem;border-radius:6px}
.muted{color:#777;font-size:.9rem}
</style></head><body>
<h1>Which support pixels made the model segment the query?</h1>
<p class="muted">model {{ model }} · explainer {{ method }} · {{ shots|length }} shot(s) · {{ "%.2f"|format(seconds) }} s</p>
<p class="sentence">{{ sentence }}</p>
<h2>Query</h2>
<div class="row">
{% for p in query_panels %}<div class="panel"><img alt="{{ p.caption }}" src="data:image/png;base64,{{ p.png }}"><div>{{ p.caption }}</div></div>{% endfor %}
</div>
<h2>Support</h2>
<div class="row">
{% for s in shots %}<div class="panel"><img alt="shot {{ s.n }} image and mask" src="data:image/png;base64,{{ s.image }}">
<img alt="shot {{ s.n }} attribution" src="data:image/png;base64,{{ s.map }}">
<div>shot {{ s.n }}{% if s.name %} · {{ s.name }}{% endif %}</div><div class="muted">{{ s.share }} of the attribution · rank {{ s.rank }}{% if s.delta is not none %} · drop it: {{ s.delta }}{% endif %}</div></div>{% endfor %}
</div>
{% if metrics %}<h2>Faithfulness (support side)</h2>
<table><tr><th>metric</th><th>value</th><th>better</th></tr>
{% for m in metrics %}<tr><td>{{ m.name }}</td><td>{{ "%.1f"|format(100 * m.value) if m.name != "support-logit" else "%.3f"|format(m.value) }}</td><td>{{ "higher" if m.higher_is_better else "lower" }}</td></tr>{% endfor %}
</table><p class="muted">AUCs and mIoULoss in points (×100); mIoU measured against the {{ reference }}.</p>{% endif %}
</body></html>
"""


def png_b64(pixels: np.ndarray) -> str:
    """RGB uint8 ``(H, W, 3)`` → base64 PNG text."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def overlay_mask(pixels: np.ndarray, mask: np.ndarray, color: tuple[int, int, int], alpha: float = 0.45,
                 outline: bool = True) -> np.ndarray:
    """Tint ``mask`` (bool ``(H, W)``) on an RGB uint8 image; with ``outline`` draw its border."""
    from skimage.segmentation import find_boundaries

    out = pixels.astype(np.float32).copy()
    m = np.asarray(mask, bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.array(color, np.float32)
    if outline:
        out[find_boundaries(m, mode="inner")] = color
    return np.clip(out, 0, 255).astype(np.uint8)


def heat_overlay(pixels: np.ndarray, values: np.ndarray, signed: bool, scale: float) -> np.ndarray:
    """Attribution over a greyed image: red for positive, blue for negative; ``scale`` is the
    value shown at full strength (shared across shots so they compare)."""
    grey = pixels.astype(np.float32).mean(2, keepdims=True) * np.ones(3, np.float32) * 0.6 + 50
    v = np.asarray(values, np.float32) / scale if scale > 0 else np.zeros(values.shape, np.float32)
    pos = np.clip(v, 0, 1)[..., None]
    neg = np.clip(-v, 0, 1)[..., None] if signed else 0
    out = grey * (1 - pos) + pos * np.array([230, 30, 30], np.float32)
    out = out * (1 - neg) + neg * np.array([30, 80, 230], np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def render_report(query: np.ndarray, prediction: np.ndarray, supports: Sequence[np.ndarray],
                  masks: Sequence[np.ndarray], attribution: SupportAttribution, diagnosis: Diagnosis,
                  metrics: Sequence[MetricResult] = (), model: str = "", query_mask: np.ndarray | None = None,
                  names: Sequence[str] = (), title: str = "episode", width: int = 240) -> str:
    """The report as one HTML string. ``prediction``/``query_mask``: bool ``(H, W)`` at the query
    size; ``supports``/``masks``: the K support images and their masks at their own sizes."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    panels = [{"caption": "query", "png": png_b64(query)},
              {"caption": "prediction", "png": png_b64(overlay_mask(query, prediction, (255, 200, 0)))}]
    if query_mask is not None:
        panels.append({"caption": "ground truth", "png": png_b64(overlay_mask(query, query_mask, (0, 200, 90)))})
    vals = [np.asarray(m, np.float32) for m in attribution.maps]
    scale = max(float(np.abs(v).max()) for v in vals) if vals else 0.0
    shots = []
    for k, (img, m, v, s) in enumerate(zip(supports, masks, vals, diagnosis.shots)):
        shots.append({"n": k + 1, "name": names[k] if k < len(names) else "",
                      "image": png_b64(overlay_mask(img, np.asarray(m) > 0.5, (0, 200, 90), alpha=0.25)),
                      "map": png_b64(heat_overlay(img, v, attribution.signed, scale)),
                      "share": f"{100 * s.share:.0f}%", "rank": s.rank,
                      "delta": None if s.delta_points is None else f"{s.delta_points:+.1f} points"})
    return env.from_string(TEMPLATE).render(
        title=title, model=model, method=attribution.method, seconds=attribution.seconds, shots=shots,
        sentence=diagnosis.sentence, query_panels=panels, metrics=list(metrics), reference=diagnosis.reference,
        width=width)


def write_report(path: str | Path, html: str) -> Path:
    """Write the HTML to ``path`` (parents created) and return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(html, encoding="utf-8")
    return p
