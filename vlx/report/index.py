"""The index page of a batch: a sortable, filterable table of every item, with thumbnails and
links to each item's report, and the failed items with their reasons. It lives at
``OUT/index.html`` and refers to ``items/<id>/thumb.jpg`` and ``items/<id>/report.html``
relatively, so the folder can be moved or zipped as a whole. All text is escaped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

from vlx.report.html import _env, ramp_css
from vlx.report.writer import atomic_write
from vlx.verbalize.format import pct


def render_index(results: Sequence[dict[str, Any]], errors: Sequence[dict[str, Any]], title: str = "vlx batch") -> str:
    """The index page's HTML for batch ``results`` and ``errors`` records (see ``vlx.batch``)."""
    from vlx import __version__

    rows = [_row(r) for r in results]
    metric_names = sorted({k for r in results for k in (r.get("metrics") or {})})
    for row, r in zip(rows, results):
        row["metrics"] = [_metric(r.get("metrics", {}).get(k)) for k in metric_names]
    labels: dict[str, int] = {}
    for r in results:
        labels[str(r.get("label", ""))] = labels.get(str(r.get("label", "")), 0) + 1
    top_labels = sorted(labels.items(), key=lambda kv: -kv[1])[:6]
    has_correct = any("correct" in r for r in results)
    accuracy = (sum(1 for r in results if r.get("correct")) / sum(1 for r in results if "correct" in r)
                if has_correct else None)
    return _env().get_template("index.html.j2").render(
        title=title, rows=rows, errors=[_error(e) for e in errors], metric_names=metric_names,
        has_correct=has_correct, accuracy=pct(accuracy) if accuracy is not None else None, top_labels=top_labels,
        total=len(results) + len(errors), ramp=ramp_css(), version=__version__,
        when=time.strftime("%Y-%m-%d %H:%M"))


def write_index(out: str | Path, results: Sequence[dict[str, Any]], errors: Sequence[dict[str, Any]],
                title: str = "vlx batch") -> Path:
    """Write ``out/index.html`` atomically; returns its path."""
    path = Path(out) / "index.html"
    atomic_write(path, render_index(results, errors, title).encode("utf-8"))
    return path


def _row(r: dict[str, Any]) -> dict[str, Any]:
    score = float(r.get("score", 0.0))
    mass = float(r.get("top_region_mass", 0.0))
    top1 = r.get("top1") or {}
    return {"id": str(r["id"]), "index": int(r.get("index", 0)), "path": str(r.get("path", "")),
            "name": Path(str(r.get("path", ""))).name, "label": str(r.get("label", "")),
            "class_index": r.get("class_index"), "score": score, "score_pct": pct(score), "mass": mass,
            "mass_pct": pct(mass), "n_regions": int(r.get("n_regions", 0)), "text": str(r.get("text", "")),
            "verified": r.get("verified"), "correct": r.get("correct"),
            "is_top": top1.get("index") == r.get("class_index"),
            "report": str(r.get("report", "")), "thumbnail": str(r.get("thumbnail", "")),
            "seconds": float(r.get("seconds", 0.0))}


def _metric(v: Any) -> dict[str, Any]:
    if isinstance(v, (int, float)):
        return {"text": f"{v:.3f}", "value": float(v)}
    return {"text": "—", "value": -1e9}


def _error(e: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(e.get("id", "")), "index": e.get("index", ""), "path": str(e.get("path", "")),
            "error": str(e.get("error", "")), "kind": str(e.get("kind", ""))}
