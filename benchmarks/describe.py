"""Benchmark: what describing a region costs, per describer, and what the offline describer says.

On the bundled images in ``examples/images`` with EfficientNet-Lite0 (embedded weights), the
regions of a Grad-CAM explanation (SLIC superpixels, 50% coverage) are described by:

* ``traits``: ``region_traits`` alone (colour, contrast, texture, shape), per region;
* ``offline``: the default describer (crop classified in one batch + colours + traits), per region;
* ``clip``: ``ClipDescriber`` on a full-size CLIP ViT-B/32 architecture (``CLIPConfig()``, random
  weights: no CLIP weights exist offline), 99-concept vocabulary; text embedded once (reported
  apart), then per region;
* ``vlm`` (with ``--vlm hf:<folder or id>``): the VLM describer, per region (``--max-new-tokens``).

Run: ``.venv/bin/python benchmarks/describe.py [--device cpu] [--vlm hf:<folder>] [--max-new-tokens 20]``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

IMAGES = Path(__file__).resolve().parents[1] / "examples" / "images"


def full_size_clip(device: str):
    """``ClipModel`` around ``CLIPModel(CLIPConfig())`` (ViT-B/32 sizes, random weights)."""
    from transformers import CLIPConfig, CLIPModel

    from vlx.models.classifier import Preprocess
    from vlx.models.clip import ClipModel
    from vlx.testing.tiny_vlm import word_tokenizer

    tok = word_tokenizer(["<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"], bos="<|startoftext|>",
                         eos="<|endoftext|>")
    config = CLIPConfig()
    config.text_config.eos_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    pre = Preprocess(size=(224, 224), mean=(0.481, 0.458, 0.408), std=(0.269, 0.261, 0.276))
    return ClipModel(CLIPModel(config), tok, pre, "hf:clip-vit-b32-random", torch.device(device))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vlm", default=None, help="hf:<VLM folder or id> to time the VLM describer too")
    ap.add_argument("--max-new-tokens", type=int, default=20)
    args = ap.parse_args()

    from vlx.describe import region_traits
    from vlx.describe.clip import ClipDescriber
    from vlx.describe.vlm import VlmDescriber
    from vlx.image import load_image
    from vlx.pipeline import Explainer

    explainer = Explainer("effnet-lite0", describer=None, device=args.device)
    t = time.perf_counter()
    clip = ClipDescriber(full_size_clip(args.device))
    print(f"clip: vocabulary of {len(clip.concepts)} concepts embedded in {time.perf_counter() - t:.2f} s")
    vlm = VlmDescriber(args.vlm, args.device, max_new_tokens=args.max_new_tokens) if args.vlm else None
    offline = Explainer(explainer.model, describer="offline").describer
    totals: dict[str, list[float]] = {"traits": [], "offline": [], "clip": [], "vlm": []}
    for path in sorted(IMAGES.glob("*.png")) + sorted(IMAGES.glob("*.jpg")):
        img = load_image(path)
        regions = explainer.explain(img).regions
        n = max(1, len(regions))
        t = time.perf_counter()
        for r in regions:
            region_traits(img.pixels, r.mask)
        totals["traits"].append((time.perf_counter() - t) / n)
        runs = [("offline", offline), ("clip", clip)] + ([("vlm", vlm)] if vlm else [])
        for name, describer in runs:
            t = time.perf_counter()
            descs = describer.describe(explainer.model, img, regions)
            totals[name].append((time.perf_counter() - t) / n)
            if name == "offline" and descs:
                print(f"{img.id}: {len(regions)} regions; region 0: {descs[0].text}")
    print(f"\nseconds per region ({args.device}, mean over {len(totals['traits'])} images):")
    for name, vals in totals.items():
        if vals:
            print(f"  {name:8s} {sum(vals) / len(vals):.4f}")


if __name__ == "__main__":
    main()
