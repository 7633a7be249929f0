"""Benchmark: which CAM method and layer should the embedded default use?

Every candidate (a CAM method at a layer of EfficientNet-Lite0, or several layers averaged) is
run on the localisation suite (``vlx.evaluate.suite``, 30 items at seed 0 by default, the
classifier's top-1 class) and scored with the pointing game and the energy pointing game (the
suite's settings: 15 px tolerance, the item's mask); ``--curves`` adds deletion and insertion
AUC (16 steps, blur baseline, as the leaderboard). "s/image" is the median attribution time per
image (model input to the map at image resolution, as ``vlx.attribute.attribute`` times it),
after one warm-up call; metrics are not timed. Prints a Markdown table, best first by
pointing game then energy.

Layers: ``_bn1`` is the head's BatchNorm output, before the ReLU6 (signed); ``_head_act`` the
head's own ReLU6 (non-negative, what CAM papers assume; see ``vlx/models/effnet.py``);
``_blocks.N`` the output of MBConv block N (15: 7 × 7 × 320, 10: 14 × 14 × 112, 7: 14 × 14 × 80,
4: 28 × 28 × 40; block outputs are linear projections, signed).

Run: ``nice -n 5 .venv/bin/python benchmarks/default_layer.py [--limit 30] [--curves]
[--only gradcam@_head_act,...] [--markdown out.md]``
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

METHODS = ("gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "eigencam")
LAYERS = ("_head_act", "_bn1", "_blocks.15", "_blocks.10", "_blocks.7", "_blocks.4",
          "_head_act,_blocks.10", "_head_act,_blocks.15")
# Follow-ups to the grid: LayerCAM near its best layer, two layers mixed with _bn1, the head's
# convolution (before its BatchNorm).
EXTRA = ("layercam@_blocks.8", "layercam@_blocks.9", "layercam@_blocks.11", "layercam@_blocks.12",
         "layercam@_blocks.9,_blocks.10", "layercam@_bn1,_blocks.10", "gradcam@_bn1,_blocks.10",
         "gradcampp@_bn1,_blocks.10", "gradcam@_blocks.11", "gradcam@_conv_head", "gradcampp@_conv_head",
         "fusedcam@_bn1,_blocks.10", "fusedcam@_bn1,_blocks.9", "fusedcam@_bn1,_blocks.8")


@dataclass(frozen=True)
class Candidate:
    """``method`` at ``layer`` (comma-separated: maps averaged, as ``CAMBase`` does; for
    ``fusedcam``, one layer per part: Grad-CAM's, then LayerCAM's)."""

    method: str
    layer: str

    @property
    def key(self) -> str:
        return f"{self.method}@{self.layer}"


def candidates(only: str | None) -> list[Candidate]:
    """Every method × layer and the ``EXTRA`` ones, or the ``method@layer`` keys listed in ``only``
    (``;``-separated)."""
    keys = [k.strip() for k in only.split(";") if k.strip()] if only else list(EXTRA)
    grid = [] if only else [Candidate(m, l) for l in LAYERS for m in METHODS]
    return grid + [Candidate(*k.split("@", 1)) for k in keys]


def measure(model, items, cand: Candidate, metrics: list[str], options: dict) -> dict[str, float]:
    """Mean of each metric and of the attribution seconds over ``items`` for one candidate."""
    from vlx.attribute import attribute, get_method
    from vlx.evaluate.runner import evaluate
    from vlx.types import ClassTarget

    method = get_method(cand.method)
    first = items[0]
    attribute(model, first.image, ClassTarget(first.target, first.label), method, cand.layer)  # warm-up
    vals: dict[str, list[float]] = {m: [] for m in metrics}
    secs = []
    for it in items:
        amap = attribute(model, it.image, ClassTarget(it.target, it.label), method, cand.layer)
        secs.append(amap.seconds)
        for r in evaluate(model, it.image, amap, it.target, metrics, gt_mask=it.mask, options=options):
            vals[r.name].append(r.value)
    return {**{m: float(np.mean(v)) for m, v in vals.items()}, "seconds": float(np.median(secs))}


def table(results: list[tuple[Candidate, dict[str, float]]], metrics: list[str]) -> str:
    """A Markdown table, best first (pointing game, then energy pointing game)."""
    names = {"pointing-game": "pointing game ↑", "energy-pointing-game": "energy PG ↑",
             "deletion": "deletion ↓", "insertion": "insertion ↑"}
    head = "| method | layer | " + " | ".join(names[m] for m in metrics) + " | s/image |"
    rule = "|---|---|" + "---:|" * (len(metrics) + 1)
    order = sorted(results, key=lambda r: (-r[1]["pointing-game"], -r[1]["energy-pointing-game"]))
    rows = [f"| {c.method} | `{c.layer}` | " + " | ".join(f"{v[m]:.3f}" for m in metrics)
            + f" | {v['seconds']:.3f} |" for c, v in order]
    return "\n".join([head, rule, *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="suite items (default: the suite's default, 30)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", type=int, default=0, help="skip the first items (a held-out check: --start 30 --limit 60)")
    ap.add_argument("--curves", action="store_true", help="also deletion and insertion (16 steps)")
    ap.add_argument("--only", default=None, help="candidates as method@layer;method@layer,layer;...")
    ap.add_argument("--markdown", default=None, help="also write the table here")
    args = ap.parse_args()

    import torch

    from vlx.evaluate.leaderboard import SUITE_METRIC_OPTIONS
    from vlx.evaluate.suite import DEFAULT_SIZE, build_suite
    from vlx.models import load_classifier

    model = load_classifier("effnet-lite0", "cpu")
    suite = build_suite(model, args.limit or DEFAULT_SIZE, args.seed)
    metrics = ["pointing-game", "energy-pointing-game"] + (["deletion", "insertion"] if args.curves else [])
    options = {k: v for k, v in SUITE_METRIC_OPTIONS.items() if k in metrics}
    items = suite.items[args.start:]
    results = []
    t0 = time.perf_counter()
    for cand in candidates(args.only):
        v = measure(model, items, cand, metrics, options)
        results.append((cand, v))
        print(f"  {cand.key:36} " + " ".join(f"{k}={x:.3f}" for k, x in v.items()), file=sys.stderr, flush=True)
    text = (table(results, metrics) + f"\n\nEfficientNet-Lite0, {suite.version}, items {args.start + 1}–{len(suite.items)} "
            f"({len(items)}), seed {suite.seed}; CPU, {torch.get_num_threads()} torch threads; run took "
            f"{time.perf_counter() - t0:.0f} s.")
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")


if __name__ == "__main__":
    main()
