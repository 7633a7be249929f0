"""Score-CAM and Ablation-CAM with fewer passes (``channels=k``) against the full methods, on
EfficientNet-Lite0 at its default layer (``_bn1``, 1280 channels).

For every image (the bundled ``examples/images/*`` and skimage's astronaut, plus any given with
``--images``) and method: the full map and the fast one for the image's top class, the Spearman
rank correlation of the two maps on the layer grid (7 × 7, ties ranked by their average) and at
the model input (224 × 224, bilinear), and the fast method's time as a share of the full one's.
Both run with the same batch size; the fast one runs first for half the images and second for the
other half. Nothing is asserted; the goal (issue 15) is Spearman >= 0.95 at <= 10% of the time.

    .venv/bin/python benchmarks/fast_cam.py [--methods scorecam,ablationcam] [--channels 64]
        [--rank auto] [--batch-size 32] [--scorecam-weights probability] [--images a.png,b.jpg]
        [--no-skimage]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import vlx.attribute  # noqa: F401
from vlx.attribute.base import get_method, upsample
from vlx.models import load_classifier
from vlx.types import ClassTarget

from photos import bundled_photos          # benchmarks/photos.py (this script's folder)


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given their average rank."""
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inv]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = rankdata(a.double().ravel().numpy()), rankdata(b.double().ravel().numpy())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = np.sqrt((ra ** 2).sum() * (rb ** 2).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def images(extra: list[str], skimage: bool) -> list[tuple[str, np.ndarray]]:
    from PIL import Image

    paths = bundled_photos() + [Path(p) for p in extra]
    out = [(p.name, np.asarray(Image.open(p).convert("RGB"))) for p in paths if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    if skimage:
        from skimage import data

        out.append(("skimage:astronaut", data.astronaut()))
    return out


def timed(method, model, x, target, layer) -> tuple[torch.Tensor, float]:
    t0 = time.perf_counter()
    out = method.attribute(model, x, target, layer)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="scorecam,ablationcam")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--rank", default="auto", help="auto: each method's default (Score-CAM cluster, Ablation-CAM gradient)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--scorecam-weights", default="probability", help="probability (paper) or channel_softmax")
    ap.add_argument("--images", default="")
    ap.add_argument("--no-skimage", action="store_true")
    args = ap.parse_args()

    model = load_classifier("effnet-lite0", "cpu")
    layer = model.layer("auto")[0]
    print(f"EfficientNet-Lite0, layer {layer}, batch size {args.batch_size}, fast: channels={args.channels}, "
          f"rank={args.rank}, torch threads {torch.get_num_threads()}")
    print(f"{'image':24s} {'method':12s} {'rho(7x7)':>9s} {'rho(224)':>9s} {'full s':>8s} {'fast s':>8s} {'ratio':>6s}")
    rows = []
    for n, (name, pixels) in enumerate(images([p for p in args.images.split(",") if p], not args.no_skimage)):
        x = model.to_input(pixels)
        with torch.no_grad():
            target = ClassTarget(int(model.logits(x).argmax()))
        for mname in args.methods.split(","):
            extra = {"weights": args.scorecam_weights} if mname == "scorecam" else {}
            full_m = get_method(mname, batch_size=args.batch_size, **extra)
            rank = {} if args.rank == "auto" else {"rank": args.rank}
            fast_m = get_method(mname, batch_size=args.batch_size, channels=args.channels, **rank, **extra)
            order = [("fast", fast_m), ("full", full_m)] if n % 2 == 0 else [("full", full_m), ("fast", fast_m)]
            res = {}
            for tag, m in order:
                res[tag] = timed(m, model, x, target, layer)
            (full, t_full), (fast, t_fast) = res["full"], res["fast"]
            r7 = spearman(full[0], fast[0])
            r224 = spearman(upsample(full, (224, 224))[0], upsample(fast, (224, 224))[0])
            rows.append((mname, r7, r224, t_fast / t_full))
            print(f"{name[:24]:24s} {mname:12s} {r7:9.3f} {r224:9.3f} {t_full:8.2f} {t_fast:8.2f} {t_fast / t_full:6.3f}",
                  flush=True)
    for mname in args.methods.split(","):
        r = [row for row in rows if row[0] == mname]
        if r:
            print(f"{mname}: median rho(7x7) {np.median([v[1] for v in r]):.3f}, min {min(v[1] for v in r):.3f}; "
                  f"median rho(224) {np.median([v[2] for v in r]):.3f}; median time ratio {np.median([v[3] for v in r]):.3f}")


if __name__ == "__main__":
    main()
