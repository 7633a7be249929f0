"""Images per second of ``Explainer.explain_many`` against the plain forward pass at the same batch
size (issue 15 item 4): the embedded default (EfficientNet-Lite0) with Grad-CAM at ``_bn1`` and the
causal region scores (superpixel regions, offline descriptions, template text; the map check off
unless ``--metrics``), the same 2 × max(B) photos in calls of B stacked photos. The forward throughput is ``model.logits`` on the
same B inputs. Warm-up first; median of ``--repeats``. Prints a table; asserts nothing.

Run: .venv/bin/python benchmarks/explain_many.py [--batches 1,4,8] [--repeats 3] [--device cpu] [--metrics]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from photos import bundled_photos          # benchmarks/photos.py (this script's folder)


def photos(n: int) -> list[np.ndarray]:
    """``n`` RGB photos: the bundled examples and scikit-image's, cycled."""
    from PIL import Image
    from skimage import data

    base = [np.asarray(Image.open(p).convert("RGB")) for p in bundled_photos()]
    base += [data.astronaut(), data.coffee(), data.rocket(), data.chelsea()]
    return [base[i % len(base)] for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batches", default="1,4,8")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--metrics", action="store_true", help="measure each map too (the CLI's default)")
    args = ap.parse_args()

    import torch

    from vlx.pipeline import Explainer

    ex = Explainer("effnet-lite0", "gradcam", layer="_bn1", device=args.device, metrics=args.metrics)
    print(f"device {ex.model.device}, torch threads {torch.get_num_threads()}, metrics {args.metrics}")
    print(f"{'batch':>5} {'explain_many img/s':>19} {'forward img/s':>14} {'ratio':>6}")
    batches = [int(v) for v in args.batches.split(",")]
    imgs = photos(max(batches) * 2)                  # the same photos at every batch size, in chunks of b
    xs = [ex.model.to_input(p) for p in imgs]
    ex.explain_many(imgs[:max(batches)])                                         # warm-up
    for b in batches:
        chunks = [(imgs[i:i + b], torch.cat(xs[i:i + b])) for i in range(0, len(imgs), b)]
        walls, fwd = [], []
        for _ in range(args.repeats):
            t = time.perf_counter()
            for chunk, _x in chunks:
                ex.explain_many(chunk)
            walls.append(time.perf_counter() - t)
            t = time.perf_counter()
            with torch.no_grad():
                for _chunk, x in chunks:
                    ex.model.logits(x)
                if ex.model.device.type == "cuda":
                    torch.cuda.synchronize()
            fwd.append(time.perf_counter() - t)
        e, f = len(imgs) / statistics.median(walls), len(imgs) / statistics.median(fwd)
        print(f"{b:5d} {e:19.2f} {f:14.1f} {e / f:6.3f}", flush=True)


if __name__ == "__main__":
    main()
