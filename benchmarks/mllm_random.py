"""Each MLLM method's map against random maps on the embedded demo (EfficientNet-Lite0 +
SmolLM2; a demo target, not proof of faithfulness): deletion and insertion AUC of the map of one
answer token next to ``--random`` seeded token-level random maps (``compare_maps_with_random``:
every method's map and the random maps over the same curves; the random maps' images are scored
once for all methods).

    .venv/bin/python benchmarks/mllm_random.py [--image chelsea] [--question "What is in the image?"]
        [--steps 10] [--random 3] [--baseline mean]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vlx.mllm import load_mllm
from vlx.mllm.context import AnswerContext
from vlx.mllm.methods import MLLM_METHODS, get_mllm_method
from vlx.mllm.metrics import compare_maps_with_random

OPTIONS = {"occlusion": {"n_segments": 16}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--image", default="chelsea", help="a skimage.data image name")
    ap.add_argument("--question", default="What is in the image?")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--random", type=int, default=3)
    ap.add_argument("--baseline", default="mean")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from skimage import data

    from vlx.image import from_array

    demo = load_mllm("demo", "cpu")
    img = from_array(getattr(data, a.image)(), id=a.image)
    t0 = time.perf_counter()
    ctx = AnswerContext(demo, img, a.question)
    words = demo.decode_tokens(ctx.answer_ids)
    token = next((i for i, w in enumerate(words) if any(c.isalpha() for c in w)), 0)
    print(f"{a.image}, {a.question!r}: answer {''.join(words)!r} ({len(words)} tokens, "
          f"{time.perf_counter() - t0:.1f} s); token {token} ({words[token]!r}); {a.steps} steps, "
          f"{a.baseline} baseline, {a.random} random maps (seeds 0..{a.random - 1})\n")
    names = list(MLLM_METHODS.names()) + ["tam+arc"]
    maps = []
    for name in names:
        m = get_mllm_method("tam", weights="arc") if name == "tam+arc" else get_mllm_method(name, **OPTIONS.get(name, {}))
        t0 = time.perf_counter()
        maps.append(m.explain(ctx, [token])[0])
        print(f"  {name}: map in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    comps = compare_maps_with_random(ctx, maps, n_random=a.random, steps=a.steps, baseline=a.baseline)
    print(f"  curves in {time.perf_counter() - t0:.1f} s\n")
    rd, ri = comps[0].random_deletion, comps[0].random_insertion
    print(f"random maps: deletion {np.mean(rd):.3f} ({', '.join(f'{x:.3f}' for x in rd)}), "
          f"insertion {np.mean(ri):.3f} ({', '.join(f'{x:.3f}' for x in ri)})\n")
    print("| method | deletion ↓ | random | margin | insertion ↑ | random | margin | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name, c in zip(names, comps):
        print(f"| {name} | {c.deletion:.3f} | {np.mean(c.random_deletion):.3f} | {c.deletion_margin:+.3f} | "
              f"{c.insertion:.3f} | {np.mean(c.random_insertion):.3f} | {c.insertion_margin:+.3f} | {c.verdict} |")


if __name__ == "__main__":
    main()
