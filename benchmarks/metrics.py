"""Benchmark: batched deletion curve vs an unbatched loop of the same curve.

EfficientNet-Lite0 (embedded weights), ``skimage.data.chelsea``, a Grad-CAM map of the top
class. Times one 50-step deletion curve built as one tensor and scored in batches against the
same curve scored one step per forward pass (the way unbatched toolkits do it), checks both give
the same curve, and prints deletion / insertion / ROAD values.

Run: ``.venv/bin/python benchmarks/metrics.py [--repeats 3] [--batch-size 32] [--device cpu]``
"""

from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np
import torch


def best_of(fns: list[Callable[[], object]], repeats: int) -> list[tuple[float, object]]:
    """Minimum wall time of ``repeats`` calls of each function, interleaved (A, B, A, B, ...) so
    that load from other processes hits both alike; with the last result of each."""
    best = [float("inf")] * len(fns)
    outs: list[object] = [None] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            outs[i] = fn()
            best[i] = min(best[i], time.perf_counter() - t0)
    return list(zip(best, outs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the model's (4 on CPU, 64 on GPU)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from skimage import data

    from vlx.attribute import attribute
    from vlx.evaluate import evaluate, pixel_curve, pixel_curve_loop
    from vlx.image import from_array
    from vlx.models import load_classifier
    from vlx.types import ClassTarget

    model = load_classifier("effnet-lite0", args.device)
    image = from_array(data.chelsea(), id="chelsea")
    pred = model.predict(image, k=1)
    idx = pred.indices[0]
    amap = attribute(model, image, ClassTarget(idx, model.label(idx)), "gradcam")
    print(f"device {args.device}, torch threads {torch.get_num_threads()}, image {image.size_hw}, "
          f"class {idx} ({pred.labels[0]}, p={pred.scores[0]:.3f}), Grad-CAM {amap.seconds * 1000:.0f} ms")

    with torch.no_grad():  # warm-up (allocator, kernels)
        model.logits(model.to_input(image))
    (t_batched, (_, c_b)), (t_loop, (_, c_l)) = best_of(
        [lambda: pixel_curve(model, image, amap, idx, "deletion", args.steps, "blur", args.batch_size),
         lambda: pixel_curve_loop(model, image, amap, idx, "deletion", args.steps, "blur")], args.repeats)
    diff = float(np.abs(np.asarray(c_b) - np.asarray(c_l)).max())
    print(f"deletion curve, {args.steps} steps ({args.steps + 1} forward images), best of {args.repeats}, interleaved:")
    print(f"  batched (batch {args.batch_size}): {t_batched:.3f} s")
    print(f"  unbatched loop:          {t_loop:.3f} s")
    print(f"  speed-up: {t_loop / t_batched:.2f}x   max |curve difference|: {diff:.2e}")

    t0 = time.perf_counter()
    results = evaluate(model, image, amap, idx, ["deletion", "insertion", "road", "sparseness", "complexity"],
                       options={"deletion": {"steps": args.steps, "batch_size": args.batch_size},
                                "insertion": {"steps": args.steps, "batch_size": args.batch_size}})
    print(f"metrics ({time.perf_counter() - t0:.2f} s in all):")
    for r in results:
        arrow = "higher" if r.higher_is_better else "lower"
        print(f"  {r.name:<12} {r.value:.4f}  ({arrow} is better, {r.category})")


if __name__ == "__main__":
    main()
