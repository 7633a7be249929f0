"""Run attribution methods × images × metrics, and rank methods on the localisation suite.

``run_grid`` is the shared loop (``vlx eval IMAGES``): for every image it computes each method's
map of the target class, times it, and measures it with each metric; an error on one
(image, method) pair is recorded as a one-line message on that row and the loop goes on.
``run_leaderboard`` runs the grid on the suite's items (target = the classifier's top-1 class,
ground truth = the item's mask) and averages per method.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vlx.errors import UsageError
from vlx.models.classifier import ImageClassifier
from vlx.registry import METHODS, METRICS
from vlx.types import ClassTarget, ImageInput

SUITE_METRICS: tuple[str, ...] = ("pointing-game", "energy-pointing-game", "deletion", "insertion")
# The suite's deletion / insertion settings: fewer steps than the metric's default (50), so the
# leaderboard of every method runs in minutes on a CPU. Printed with the leaderboard.
SUITE_METRIC_OPTIONS: dict[str, dict[str, Any]] = {"deletion": {"steps": 16, "batch_size": 17},
                                                   "insertion": {"steps": 16, "batch_size": 17}}
# Lighter settings for methods that are slow at their defaults (1000+ forward passes per image).
# Used by the suite unless ``light=False``; printed with the leaderboard.
LIGHT_OPTIONS: dict[str, dict[str, Any]] = {
    "rise": {"n_masks": 250},
    "occlusion": {"window": 56, "stride": 28},
    "lime": {"n_samples": 64},
    "kernelshap": {"n_samples": 64},
    "integrated_gradients": {"n_steps": 16},
    "xrai": {"n_steps": 16},
    "smoothgrad": {"n_samples": 8},
}
# Methods whose cost does not shrink with an option (one forward pass per channel of the layer):
# the suite runs them on at most this many items, shown in the leaderboard's ``n`` column.
ITEM_CAPS: dict[str, int] = {"scorecam": 3, "ablationcam": 3}


@dataclass(frozen=True)
class GridItem:
    """One image to evaluate: ``target`` a class index (``None``: the model's top-1),
    ``gt_mask`` an optional boolean ``(H, W)`` ground truth for localisation metrics."""

    image: ImageInput
    target: int | None = None
    gt_mask: np.ndarray | None = None


@dataclass
class GridRow:
    """The result for one (image, method): ``values`` maps metric name → value (``[0, 1]`` for the
    built-in metrics), ``curves`` maps ``deletion``/``insertion`` → ``(fractions, probs)``,
    ``seconds`` the attribution's wall time; ``error`` a one-line message when it failed."""

    image: str
    method: str
    target: int = -1
    label: str = ""
    values: dict[str, float] = field(default_factory=dict)
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    seconds: float = float("nan")
    error: str | None = None


def resolve_methods(spec: str | Sequence[str] | None) -> list[str]:
    """``"all"`` (or ``None``) → every registered method; ``"a,b"`` or a list → those names, each
    checked against the registry (UsageError with suggestions when unknown)."""
    if spec is None or spec == "all" or (not isinstance(spec, str) and list(spec) == ["all"]):
        return METHODS.names()
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s) for s in spec]
    names = [n for n in names if n]
    if not names:
        raise UsageError("no method named; pass --methods gradcam,rise,... or --methods all.")
    for n in names:
        METHODS.get(n)
    return names


def resolve_metrics(spec: str | Sequence[str] | None, default: Sequence[str]) -> list[str]:
    """Comma-separated metric names (or a list; ``None`` → ``default``), checked against the registry."""
    names = list(default) if spec is None else (
        [s.strip() for s in spec.split(",") if s.strip()] if isinstance(spec, str) else list(spec))
    if not names:
        raise UsageError("no metric named; pass --metrics deletion,insertion,...")
    for n in names:
        METRICS.get(n)
    return names


def one_line(e: BaseException) -> str:
    """``Type: first line of the message``."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}".rstrip(": ")


def run_grid(model: ImageClassifier, items: Sequence[GridItem], methods: Sequence[str], metrics: Sequence[str],
             method_options: Mapping[str, Mapping[str, Any]] | None = None,
             metric_options: Mapping[str, Mapping[str, Any]] | None = None,
             item_caps: Mapping[str, int] | None = None,
             on_row: Callable[[GridRow], None] | None = None, strict: bool = False) -> list[GridRow]:
    """Evaluate every method on every item with every metric.

    Args:
        model: the classifier.
        items: images with optional targets and ground-truth masks.
        methods: registered method names; ``method_options`` their constructor options.
        metrics: registered metric names; ``metric_options`` their constructor options.
        item_caps: method → at most this many items (the first ones).
        on_row: called with each finished row (progress, one-line error reports).
        strict: re-raise the first error instead of recording it (``--debug``).

    Returns rows in (method, item) order; a failed pair has ``error`` set and no values. A
    localisation metric on an item without ``gt_mask`` raises UsageError before any work.
    """
    from vlx.attribute import attribute, get_method
    from vlx.evaluate.runner import evaluate

    needs_gt = [m for m in metrics if METRICS.get(m).needs_gt_mask]
    if needs_gt and any(it.gt_mask is None for it in items):
        raise UsageError(f"{', '.join(needs_gt)} need a ground-truth mask, which plain images lack; drop them "
                         "or use --suite localisation.")
    mopts = {k: dict(v) for k, v in (metric_options or {}).items() if k in metrics}
    rows: list[GridRow] = []
    for name in methods:
        cap = (item_caps or {}).get(name, len(items))
        method = None
        for it in items[:cap]:
            row = GridRow(image=it.image.id, method=name)
            try:
                if method is None:
                    method = get_method(name, **dict((method_options or {}).get(name, {})))
                ti = it.target if it.target is not None else model.predict(it.image, k=1).indices[0]
                row.target, row.label = int(ti), model.label(int(ti))
                amap = attribute(model, it.image, ClassTarget(int(ti), row.label), method)
                row.seconds = amap.seconds
                for r in evaluate(model, it.image, amap, int(ti), metrics, gt_mask=it.gt_mask, options=mopts):
                    row.values[r.name] = r.value
                    if "curve" in r.details and "fractions" in r.details:
                        row.curves[r.name] = (list(r.details["fractions"]), list(r.details["curve"]))
            except Exception as e:  # recorded on the row and reported by on_row; the grid goes on
                if strict:
                    raise
                row.error = one_line(e)
            rows.append(row)
            if on_row is not None:
                on_row(row)
    return rows


@dataclass(frozen=True)
class MethodScore:
    """A method's leaderboard line: mean of each metric over its items, ``seconds`` the mean
    attribution time per image, ``n`` items measured, ``failed`` items that raised (``errors``:
    their distinct one-line messages), ``options`` the method options used."""

    method: str
    means: dict[str, float]
    seconds: float
    n: int
    failed: int
    options: dict[str, Any]
    errors: tuple[str, ...] = ()
    curves: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Leaderboard:
    """Methods ranked on a suite. ``metrics`` in column order, ``settings`` how it was run (suite,
    seed, items, model, metric options), ``scores`` sorted by the first metric, best first."""

    metrics: tuple[str, ...]
    scores: tuple[MethodScore, ...]
    settings: dict[str, Any]
    rows: tuple[GridRow, ...] = ()


def summarise(rows: Sequence[GridRow], metrics: Sequence[str],
              method_options: Mapping[str, Mapping[str, Any]]) -> list[MethodScore]:
    """Average ``rows`` per method (failed rows excluded); mean curves per curve metric."""
    out = []
    for name in dict.fromkeys(r.method for r in rows):
        ok = [r for r in rows if r.method == name and r.error is None]
        bad = [r for r in rows if r.method == name and r.error is not None]
        means = {m: float(np.mean([r.values[m] for r in ok])) if ok else float("nan") for m in metrics}
        curves = {}
        for c in ("deletion", "insertion"):
            have = [r.curves[c] for r in ok if c in r.curves]
            if have and len({len(x) for x, _ in have}) == 1:
                curves[c] = (have[0][0], [float(v) for v in np.mean([y for _, y in have], axis=0)])
        out.append(MethodScore(name, means, float(np.mean([r.seconds for r in ok])) if ok else float("nan"), len(ok),
                               len(bad), dict(method_options.get(name, {})),
                               tuple(dict.fromkeys(r.error or "" for r in bad)), curves))
    return out


def run_leaderboard(model: ImageClassifier, items: Sequence[Any], methods: Sequence[str] | None = None,
                    metrics: Sequence[str] = SUITE_METRICS, light: bool = True,
                    metric_options: Mapping[str, Mapping[str, Any]] | None = None,
                    on_row: Callable[[GridRow], None] | None = None,
                    settings: Mapping[str, Any] | None = None, strict: bool = False) -> Leaderboard:
    """Rank methods on suite items (``vlx.evaluate.suite.SuiteItem``: image, mask, target).

    ``light`` applies ``LIGHT_OPTIONS`` and ``ITEM_CAPS``; ``metric_options`` defaults to
    ``SUITE_METRIC_OPTIONS``. Scores are sorted by the first metric (best first; NaN last).
    ``strict`` re-raises the first error instead of recording it.
    """
    names = resolve_methods(methods)
    mopts = dict(SUITE_METRIC_OPTIONS if metric_options is None else metric_options)
    opts = {n: dict(LIGHT_OPTIONS.get(n, {})) for n in names} if light else {}
    caps = {n: c for n, c in ITEM_CAPS.items() if n in names} if light else {}
    grid = [GridItem(it.image, it.target, it.mask) for it in items]
    t0 = time.perf_counter()
    rows = run_grid(model, grid, names, list(metrics), opts, mopts, caps, on_row, strict)
    scores = summarise(rows, metrics, opts)
    first = metrics[0]
    sign = 1.0 if METRICS.get(first).higher_is_better else -1.0
    scores.sort(key=lambda s: (np.isnan(s.means[first]), -sign * np.nan_to_num(s.means[first])))
    info = {**dict(settings or {}), "model": model.name, "items": len(items), "metrics": list(metrics),
            "metric_options": mopts, "light": light, "item_caps": caps,
            "wall_seconds": round(time.perf_counter() - t0, 1)}
    return Leaderboard(tuple(metrics), tuple(scores), info, tuple(rows))
