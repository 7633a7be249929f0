"""Benchmark: the localisation leaderboard of every registered method on the real classifier.

Builds (or loads from the cache) the localisation suite for EfficientNet-Lite0 (embedded
weights), runs every registered attribution method on it with the suite's settings (the lighter
options of ``vlx.evaluate.leaderboard.LIGHT_OPTIONS`` unless ``--full``), and prints the
leaderboard (pointing game, energy pointing game, deletion, insertion, seconds per image), the
wall and CPU time of the run, and the literature's figures for context. The same as
``vlx eval --suite localisation --methods all``, plus timing.

Run: ``.venv/bin/python benchmarks/leaderboard.py [--limit 30] [--methods all] [--markdown out.md]``
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

LITERATURE = ("For context (not targets): RISE on ImageNet with ResNet-50, deletion ≈ 0.11 and insertion ≈ 0.73 "
              "(Petsiuk et al. 2018; zero/blur baselines, 224 steps, real ImageNet photos); about 2.8 s per image on "
              "a GPU of its time.")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="suite items (default: the suite's default, 30)")
    ap.add_argument("--methods", default="all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=None, help="deletion/insertion steps (default 16)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--full", action="store_true", help="default method settings, every item (slow)")
    ap.add_argument("--markdown", default=None, help="also write the leaderboard as Markdown here")
    args = ap.parse_args()

    from vlx.evaluate.cli_eval import _curve_options, suite_footer
    from vlx.evaluate.leaderboard import SUITE_METRIC_OPTIONS, SUITE_METRICS, run_leaderboard
    from vlx.evaluate.suite import DEFAULT_SIZE, build_suite
    from vlx.evaluate.tables import leaderboard_table, rich_table, to_markdown
    from vlx.models import load_classifier
    from rich.console import Console

    model = load_classifier("effnet-lite0", args.device)
    n = args.limit or DEFAULT_SIZE
    t0, c0 = time.perf_counter(), cpu_seconds()
    suite = build_suite(model, n, args.seed, args.cache_dir)
    build_s, build_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    print(f"suite: {len(suite.items)} items from {suite.attempts} candidates in {build_s:.1f} s "
          f"(CPU {build_cpu:.1f} s), {suite.folder}", flush=True)

    def on_row(row) -> None:  # progress on stderr
        vals = " ".join(f"{k}={v:.3f}" for k, v in row.values.items())
        print(f"  {row.method:>22} {row.image} {row.seconds:7.2f} s {vals} {row.error or ''}", file=sys.stderr,
              flush=True)

    t0, c0 = time.perf_counter(), cpu_seconds()
    board = run_leaderboard(model, suite.items, args.methods, SUITE_METRICS, light=not args.full,
                            metric_options=_curve_options(SUITE_METRICS, args.steps, SUITE_METRIC_OPTIONS),
                            on_row=on_row, settings={"suite": suite.version, "seed": suite.seed,
                                                     "folder": str(suite.folder), "attempts": suite.attempts})
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    headers, body = leaderboard_table(board)
    console = Console(width=200)
    console.print(rich_table(headers, body, title=f"{suite.version} leaderboard"))
    timing = (f"leaderboard: wall {wall:.0f} s, process CPU {cpu:.0f} s (≈ {cpu / 2:.0f} s of wall on two idle "
              f"cores); torch threads {__import__('torch').get_num_threads()}.")
    print(suite_footer(board) + timing + "\n" + LITERATURE)
    if args.markdown:
        Path(args.markdown).write_text(to_markdown(headers, body) + "\n" + suite_footer(board) + timing + "\n\n"
                                       + LITERATURE + "\n")


if __name__ == "__main__":
    main()
