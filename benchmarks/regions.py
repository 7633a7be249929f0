"""Benchmark: (a) does a region-refined map beat the raw map on deletion and insertion, per
method? (b) the encoder/decoder cost split of SAM ViT-B (full-size architecture, random weights).

(a) EfficientNet-Lite0 (embedded weights), the localisation suite's items (``--on suite``, the
default: 30 items at seed 0, their top-1 class) or the bundled images in ``examples/images``
(``--on images``, the top class). For each method at the model's default layer,
the raw map and its refined copies (attribution averaged inside SLIC superpixels or Felzenszwalb
segments) are scored with ``vlx.evaluate`` deletion (lower is better) and insertion (higher is
better), blur baseline. Mean over images, and how many images improved.

(b) ``SamModel(SamConfig())`` (ViT-B: 12 layers, 768 wide, 1024² input), random weights: time
one image encoding, one decoder call with one prompt (3 masks), and one with 16 prompts.

Run: ``.venv/bin/python benchmarks/regions.py [--methods gradcam,...] [--steps 25] [--on suite|images]
[--skip b] [--device cpu]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"
VARIANTS = ("raw", "superpixels", "felzenszwalb")


def refinement_table(methods: list[str], steps: int, device: str, on: str = "suite", limit: int | None = None,
                     layer_spec: str | None = None) -> None:
    import vlx.attribute  # noqa: F401
    from vlx.attribute.base import attribute, get_method
    from vlx.evaluate import Deletion, Insertion
    from vlx.image import load_image
    from vlx.models import load_classifier
    from vlx.regions.refine import Refiner, refine_map
    from vlx.types import ClassTarget

    model = load_classifier("effnet-lite0", device)
    if on == "suite":
        from vlx.evaluate.suite import DEFAULT_SIZE, build_suite

        suite = build_suite(model, limit or DEFAULT_SIZE)
        images = [it.image for it in suite.items]
        where = f"{suite.version}, {len(images)} items"
    else:
        images = [load_image(p) for p in sorted(IMAGES.iterdir()) if p.suffix in (".png", ".jpg")]
        where = f"{len(images)} images ({', '.join(i.id for i in images)})"
    refiners = {k: Refiner(k) for k in VARIANTS[1:]}
    labels = {(img.id, k): r.labels(img) for img in images for k, r in refiners.items()}
    dele, ins = Deletion(steps=steps), Insertion(steps=steps)
    print(f"(a) EfficientNet-Lite0, layer {model.layer(layer_spec)[0]}, {where}, "
          f"{steps}-step curves, blur baseline; mean over images [images improved vs raw]")
    print(f"{'method':22} {'variant':13} {'deletion ↓':>14} {'insertion ↑':>15} {'ins - del':>10}")
    for name in methods:
        method = get_method(name)
        layer = model.layer(layer_spec)[0] if method.needs_layer else None
        scores = {v: [] for v in VARIANTS}
        t0 = time.perf_counter()
        for img in images:
            ti = int(model.logits(model.to_input(img)).argmax())
            amap = attribute(model, img, ClassTarget(ti, model.label(ti)), method, layer)
            for v in VARIANTS:
                m = amap if v == "raw" else refine_map(amap, labels[(img.id, v)])
                scores[v].append((dele(model, img, m, ti).value, ins(model, img, m, ti).value))
        raw = np.array(scores["raw"])
        for v in VARIANTS:
            s = np.array(scores[v])
            better_d = "" if v == "raw" else f" [{int((s[:, 0] < raw[:, 0]).sum())}/{len(s)}]"
            better_i = "" if v == "raw" else f" [{int((s[:, 1] > raw[:, 1]).sum())}/{len(s)}]"
            print(f"{name:22} {v:13} {s[:, 0].mean():8.3f}{better_d:>6} {s[:, 1].mean():9.3f}{better_i:>6} "
                  f"{(s[:, 1] - s[:, 0]).mean():10.3f}")
        print(f"{'':22} ({time.perf_counter() - t0:.1f} s)")


def sam_split(device: str, repeats: int) -> None:
    from transformers import SamConfig, SamModel

    torch.manual_seed(0)
    model = SamModel(SamConfig()).eval().to(device)
    n = sum(p.numel() for p in model.parameters())
    enc = sum(p.numel() for p in model.vision_encoder.parameters())
    x = torch.randn(1, 3, 1024, 1024, device=device)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    def best(fn, reps: int) -> float:
        t = float("inf")
        for _ in range(reps):
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            t = min(t, time.perf_counter() - t0)
        return t

    with torch.no_grad():
        emb = model.get_image_embeddings(x)                       # warm-up
        t_enc = best(lambda: model.get_image_embeddings(x), repeats)
        p1 = torch.tensor([[[[500.0, 400.0]]]], device=device)
        l1 = torch.ones(1, 1, 1, dtype=torch.long, device=device)
        p16 = torch.rand(1, 16, 1, 2, device=device) * 1024
        l16 = torch.ones(1, 16, 1, dtype=torch.long, device=device)
        model(image_embeddings=emb, input_points=p1, input_labels=l1)
        t_dec1 = best(lambda: model(image_embeddings=emb, input_points=p1, input_labels=l1), 5 * repeats)
        t_dec16 = best(lambda: model(image_embeddings=emb, input_points=p16, input_labels=l16), 3 * repeats)
    print(f"(b) SAM ViT-B (random weights), {n / 1e6:.1f} M parameters ({enc / 1e6:.1f} M in the image "
          f"encoder), {device}, {torch.get_num_threads()} threads, best of {repeats}+")
    print(f"    image encoding (1024²):            {t_enc * 1000:9.1f} ms")
    print(f"    decoder, 1 prompt (3 masks):       {t_dec1 * 1000:9.1f} ms   "
          f"(encoder = {t_enc / t_dec1:.0f}× one prompt)")
    print(f"    decoder, 16 prompts in one call:   {t_dec16 * 1000:9.1f} ms   ({t_dec16 / 16 * 1000:.1f} ms a prompt)")
    print(f"    a map's prompts (~5) cost {5 * t_dec1 / (t_enc + 5 * t_dec1):.1%} of encode + decode; caching the "
          f"embedding saves {t_enc * 1000:.0f} ms for every further call on the same image")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="gradcam,gradcampp,layercam,saliency")
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--on", choices=("suite", "images"), default="suite", help="the localisation suite or examples/images")
    ap.add_argument("--layer", default=None, help="CAM layer (default: the model's default)")
    ap.add_argument("--limit", type=int, default=None, help="suite items (default 30)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip", choices=("a", "b"), default=None, help="skip part a or b")
    args = ap.parse_args()
    if args.skip != "a":
        refinement_table(args.methods.split(","), args.steps, args.device, args.on, args.limit, args.layer)
    if args.skip != "b":
        sam_split(args.device, args.repeats)


if __name__ == "__main__":
    main()
