"""Render evaluation results: a rich table for the terminal, Markdown, CSV and JSON, and the
deletion / insertion curves as PNG drawn with PIL (no plotting library needed).

Tables are built once as ``(headers, rows of cells)`` (``grid_table`` / ``leaderboard_table``)
and rendered by format; numbers are kept as floats until rendering (3 decimals in text formats,
full precision in JSON).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw

from vlx.errors import UsageError
from vlx.evaluate.leaderboard import GridRow, Leaderboard
from vlx.registry import METRICS

FORMATS: tuple[str, ...] = ("table", "markdown", "csv", "json")
Cell = str | float | int | None


def _arrow(metric: str) -> str:
    hib = METRICS.get(metric).higher_is_better if metric in METRICS else True
    return "↑" if hib else "↓"


def grid_table(rows: Sequence[GridRow], metrics: Sequence[str]) -> tuple[list[str], list[list[Cell]]]:
    """One line per (image, method): image, method, target, each metric, seconds, error."""
    headers = ["image", "method", "target"] + [f"{m} {_arrow(m)}" for m in metrics] + ["seconds", "error"]
    body: list[list[Cell]] = []
    for r in rows:
        body.append([r.image, r.method, r.label or None] + [r.values.get(m) for m in metrics]
                    + [None if math.isnan(r.seconds) else r.seconds, r.error])
    return headers, body


def leaderboard_table(board: Leaderboard) -> tuple[list[str], list[list[Cell]]]:
    """One line per method: rank, method, each metric's mean, seconds per image, n, options."""
    headers = ["#", "method"] + [f"{m} {_arrow(m)}" for m in board.metrics] + ["s/image", "n", "options"]
    body: list[list[Cell]] = []
    for i, s in enumerate(board.scores, 1):
        opts = ", ".join(f"{k}={v}" for k, v in s.options.items())
        if s.failed:
            opts = (opts + "; " if opts else "") + f"{s.failed} failed: {s.errors[0]}"
        body.append([i, s.method] + [s.means[m] for m in board.metrics]
                    + [None if math.isnan(s.seconds) else s.seconds, s.n, opts])
    return headers, body


def _fmt(c: Cell) -> str:
    if c is None:
        return ""
    if isinstance(c, float):
        return "nan" if math.isnan(c) else f"{c:.3f}"
    return str(c)


def to_markdown(headers: Sequence[str], body: Sequence[Sequence[Cell]]) -> str:
    """A GitHub Markdown table (``|`` in cells escaped)."""
    esc = lambda s: s.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(esc(_fmt(c)) for c in row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def to_csv(headers: Sequence[str], body: Sequence[Sequence[Cell]]) -> str:
    """CSV with a header line; floats at full precision, missing cells empty."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([h.replace(" ↑", "").replace(" ↓", "") for h in headers])
    for row in body:
        w.writerow(["" if c is None else (repr(c) if isinstance(c, float) else c) for c in row])
    return buf.getvalue()


def rich_table(headers: Sequence[str], body: Sequence[Sequence[Cell]], title: str | None = None) -> Any:
    """A ``rich.table.Table`` of the cells (numbers right-aligned)."""
    from rich.table import Table

    table = Table(title=title, box=None, header_style="bold")
    numeric = [all(isinstance(r[i], (int, float)) or r[i] is None for r in body) for i in range(len(headers))]
    for h, num in zip(headers, numeric):
        table.add_column(h, justify="right" if num else "left", overflow="fold")
    for row in body:
        table.add_row(*[_fmt(c) for c in row])
    return table


def grid_json(rows: Sequence[GridRow], metrics: Sequence[str], settings: dict[str, Any]) -> str:
    """JSON: ``{"settings", "metrics", "rows": [{image, method, target, label, values, seconds,
    error}]}`` (curves are left to the PNGs)."""
    doc = {"settings": settings, "metrics": [{"name": m, "higher_is_better": _arrow(m) == "↑"} for m in metrics],
           "rows": [{"image": r.image, "method": r.method, "target": r.target, "label": r.label, "values": {k: _num(v) for k, v in r.values.items()},
                     "seconds": None if math.isnan(r.seconds) else r.seconds, "error": r.error} for r in rows]}
    return json.dumps(doc, indent=2, allow_nan=False, default=_reject) + "\n"


def leaderboard_json(board: Leaderboard) -> str:
    """JSON: ``{"settings", "metrics", "scores": [{method, means, seconds, n, failed, options,
    errors}]}``; NaN becomes ``null``."""
    doc = {"settings": board.settings, "metrics": [{"name": m, "higher_is_better": _arrow(m) == "↑"}
                                                   for m in board.metrics],
           "scores": [{"method": s.method, "means": {k: _num(v) for k, v in s.means.items()},
                       "seconds": _num(s.seconds), "n": s.n, "failed": s.failed, "options": s.options,
                       "errors": list(s.errors)} for s in board.scores]}
    return json.dumps(doc, indent=2, allow_nan=False, default=_reject) + "\n"


def _num(v: float) -> float | None:
    return None if math.isnan(v) or math.isinf(v) else float(v)


def _reject(o: object) -> object:
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def render(fmt: str, headers: Sequence[str], body: Sequence[Sequence[Cell]], json_text: str) -> str:
    """Text of ``markdown``, ``csv`` or ``json`` (``table`` is printed with rich instead)."""
    if fmt == "markdown":
        return to_markdown(headers, body)
    if fmt == "csv":
        return to_csv(headers, body)
    if fmt == "json":
        return json_text
    raise UsageError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}.")


PALETTE = ((31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207))


def curves_png(curves: dict[str, tuple[Sequence[float], Sequence[float]]], path: str | Path, title: str,
               size: tuple[int, int] = (640, 420)) -> Path:
    """Draw probability curves (``label → (fractions in [0, 1], probabilities in [0, 1])``) on
    one chart with axes, a legend (with each curve's AUC) and a title; write a PNG at ``path``."""
    from vlx.evaluate.base import auc

    w, h = size
    left, right, top, bottom = 52, 170, 30, 40
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    pw, ph = w - left - right, h - top - bottom
    to_xy = lambda fx, py: (left + fx * pw, top + (1 - py) * ph)  # noqa: E731
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        x, y = to_xy(t, t)
        d.line([to_xy(0, t), to_xy(1, t)], fill=(230, 230, 230))
        d.text((left - 34, y - 6), f"{t:.2f}", fill="black")
        d.text((x - 10, top + ph + 6), f"{t:.2f}", fill="black")
    d.rectangle([left, top, left + pw, top + ph], outline="black")
    d.text((left, 8), title, fill="black")
    d.text((left + pw // 2 - 60, h - 16), "fraction of pixels perturbed", fill="black")
    for i, (label, (xs, ys)) in enumerate(curves.items()):
        color = PALETTE[i % len(PALETTE)]
        pts = [to_xy(float(x), min(max(float(y), 0.0), 1.0)) for x, y in zip(xs, ys)]
        if len(pts) > 1:
            d.line(pts, fill=color, width=2)
        ly = top + 4 + 14 * i
        d.line([(left + pw + 10, ly + 6), (left + pw + 28, ly + 6)], fill=color, width=3)
        d.text((left + pw + 32, ly), f"{label[:16]} {auc(list(ys), list(xs)):.3f}", fill="black")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    im.save(p)
    return p


def write_curve_pngs(rows: Sequence[GridRow], out_dir: str | Path) -> list[Path]:
    """One PNG per (image, curve metric) with every method's curve: ``<image>_<metric>.png``."""
    out = []
    images = list(dict.fromkeys(r.image for r in rows))
    for image in images:
        for metric in ("deletion", "insertion"):
            curves = {r.method: r.curves[metric] for r in rows if r.image == image and metric in r.curves}
            if curves:
                out.append(curves_png(curves, Path(out_dir) / f"{_safe(image)}_{metric}.png",
                                      f"{metric} - {image}: target probability (AUC in the legend)"))
    return out


def _safe(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)
