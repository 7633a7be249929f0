"""The work behind ``vlx eval``: load, run, render, write. Kept out of ``vlx/cli.py`` so the
command stays a thin layer (and ``--help`` stays fast)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from vlx.errors import UsageError
from vlx.evaluate.leaderboard import (
    LIGHT_OPTIONS, SUITE_METRIC_OPTIONS, SUITE_METRICS, GridItem, GridRow, Leaderboard, resolve_methods,
    resolve_metrics, run_grid, run_leaderboard,
)
from vlx.evaluate.tables import (
    FORMATS, curves_png, grid_json, grid_table, leaderboard_json, leaderboard_table, render, rich_table,
    to_csv, to_markdown, write_curve_pngs,
)

IMAGE_METRICS: tuple[str, ...] = ("deletion", "insertion")
Say = Callable[[str], None] | None

__all__ = ["FORMATS", "IMAGE_METRICS", "eval_images", "eval_suite"]


def _curve_options(metrics: Sequence[str], steps: int | None, base: dict[str, dict[str, Any]]) -> dict:
    opts = {k: dict(v) for k, v in base.items() if k in metrics}
    if steps is not None:
        for m in ("deletion", "insertion"):
            if m in metrics:
                opts[m] = {**opts.get(m, {}), "steps": steps, "batch_size": min(steps + 1, 64)}
    return opts


def _reporter(say: Say) -> Callable[[GridRow], None]:
    def on_row(row: GridRow) -> None:
        if row.error is not None:
            print(f"vlx: error: {row.image} / {row.method}: {row.error}", file=sys.stderr, flush=True)
        elif say is not None:
            vals = "  ".join(f"{k} {v:.3f}" for k, v in row.values.items())
            say(f"{row.method:>22}  {row.image}  {row.seconds:6.2f} s  {vals}")
    return on_row


def _write(out_dir: Path | None, headers: list[str], body: list, json_text: str) -> None:
    if out_dir is None:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table.md").write_text(to_markdown(headers, body))
    (out_dir / "table.csv").write_text(to_csv(headers, body))
    (out_dir / "results.json").write_text(json_text)


def _write_html(out_dir: Path, title: str, headers: list[str], body: list, pngs: Sequence[Path],
                chips: Sequence[str], notes: str = "") -> None:
    """``report.html`` beside the tables: the same table and the curves, self-contained."""
    from vlx.report.html import render_eval
    from vlx.report.writer import atomic_write

    atomic_write(out_dir / "report.html", render_eval(title, headers, body, pngs, chips, notes).encode("utf-8"))


def _load_model(model: str, device: str) -> Any:
    from vlx.models import load_classifier

    return load_classifier(model, device)


def eval_images(paths: Sequence[Path], model: str, device: str, methods: str | None, metrics: str | None,
                target: str | None, steps: int | None, out_dir: Path | None, fmt: str,
                say: Say, strict: bool = False) -> tuple[str, Any, int]:
    """``vlx eval IMAGES``: returns ``(text, rich table or None, number of failures)``. An image
    that cannot be read is one failed row (one line on stderr) unless it is the only image, when
    its InputError is raised. ``strict`` (``--debug``) re-raises the first error."""
    from vlx.errors import VlxError
    from vlx.image import load_image

    names = resolve_methods(methods or "gradcam")
    mets = resolve_metrics(metrics, IMAGE_METRICS)
    clf = _load_model(model, device)
    ti = clf.class_index(target) if target is not None else None
    items, rows = [], []
    report = _reporter(say)
    for p in paths:
        try:
            items.append(GridItem(load_image(p), ti))
        except VlxError as e:
            if len(paths) == 1 or strict:
                raise
            row = GridRow(image=Path(p).name, method="-", error=str(e).strip().splitlines()[0])
            rows.append(row)
            report(row)
    rows += run_grid(clf, items, names, mets, None, _curve_options(mets, steps, {}), None, report, strict)
    headers, body = grid_table(rows, mets)
    settings = {"model": clf.name, "methods": names, "metrics": mets, "metric_options":
                _curve_options(mets, steps, {}), "images": [str(p) for p in paths]}
    json_text = grid_json(rows, mets, settings)
    _write(out_dir, headers, body, json_text)
    if out_dir is not None:
        pngs = write_curve_pngs(rows, out_dir / "curves")
        _write_html(out_dir, f"vlx eval: {len(names)} method(s) on {len(paths)} image(s)", headers, body, pngs,
                    [f"model {clf.name}", f"metrics {', '.join(mets)}"])
    failed = sum(r.error is not None for r in rows)
    if fmt == "table":
        return "", rich_table(headers, body), failed
    return render(fmt, headers, body, json_text), None, failed


def suite_footer(board: Leaderboard) -> str:
    """One paragraph that says how the leaderboard was run (printed under the table)."""
    s = board.settings
    curve = s["metric_options"].get("deletion") or s["metric_options"].get("insertion") or {}
    lines = [f"suite {s.get('suite')} (seed {s.get('seed')}, {s['items']} items, cache {s.get('folder')}), "
             f"model {s['model']}, wall {s['wall_seconds']} s.",
             f"deletion/insertion: {curve.get('steps', 50)} steps, blur baseline; AUC of the target's probability. "
             "pointing game: 15 px tolerance. s/image: attribution time only."]
    if s["light"]:
        light = "; ".join(f"{k} {', '.join(f'{a}={b}' for a, b in v.items())}" for k, v in LIGHT_OPTIONS.items()
                          if any(sc.method == k for sc in board.scores))
        caps = ", ".join(f"{k} on {v} items" for k, v in s["item_caps"].items())
        lines.append(f"lighter suite settings (--full to lift): {light}" + (f"; {caps}" if caps else "") + ".")
    return "\n".join(lines) + "\n"


def eval_suite(suite: str, model: str, device: str, methods: str | None, metrics: str | None, steps: int | None,
               limit: int | None, seed: int, cache_dir: Path | None, full: bool, out_dir: Path | None, fmt: str,
               say: Say, strict: bool = False) -> tuple[str, Any, int]:
    """``vlx eval --suite localisation``: build or load the suite, run the leaderboard, render it.
    Returns ``(text, rich renderable or None, 0)``; failed methods are shown in the table."""
    from vlx.evaluate.suite import DEFAULT_SIZE, SUITE_NAME, build_suite

    if suite != SUITE_NAME:
        raise UsageError(f"unknown suite {suite!r}; the built-in suite is {SUITE_NAME!r}.")
    names = resolve_methods(methods or "all")
    mets = resolve_metrics(metrics, SUITE_METRICS)
    clf = _load_model(model, device)
    n = limit if limit is not None else DEFAULT_SIZE
    if say is not None:
        say(f"building or loading the {SUITE_NAME} suite ({n} items, seed {seed}) ...")
    built = build_suite(clf, n, seed, cache_dir)
    board = run_leaderboard(clf, built.items, names, mets, light=not full,
                            metric_options=_curve_options(mets, steps, SUITE_METRIC_OPTIONS),
                            on_row=_reporter(say),
                            settings={"suite": built.version, "seed": built.seed, "folder": str(built.folder),
                                      "attempts": built.attempts}, strict=strict)
    headers, body = leaderboard_table(board)
    json_text = leaderboard_json(board)
    _write(out_dir, headers, body, json_text)
    if out_dir is not None:
        for metric in ("deletion", "insertion"):
            curves = {sc.method: sc.curves[metric] for sc in board.scores if metric in sc.curves}
            if curves:
                curves_png(curves, out_dir / "curves" / f"suite_{metric}.png",
                           f"mean {metric} curve, {built.version}, {len(built.items)} items (AUC in the legend)")
    footer = suite_footer(board)
    if out_dir is not None:
        _write_html(out_dir, f"{built.version} leaderboard", headers, body,
                    sorted((out_dir / "curves").glob("suite_*.png")),
                    [f"model {clf.name}", f"{len(built.items)} items", f"seed {built.seed}"], footer)
    if fmt == "table":
        from rich.console import Group
        from rich.text import Text

        return "", Group(rich_table(headers, body, title=f"{built.version} leaderboard"), Text(footer)), 0
    return render(fmt, headers, body, json_text) + ("\n" + footer if fmt == "markdown" else ""), None, 0
