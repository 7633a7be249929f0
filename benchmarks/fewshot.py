"""Benchmark: explainers of a few-shot segmenter on the offline episode suite.

Model: the embedded training-free matching segmenter on EfficientNet-Lite0 features
(``vlx.fewshot.MatchingSegmenter``). Data: ``vlx.fewshot.episode_suite`` (1-way K-shot,
photos on textures and texture-vs-texture scenes, exact ground truth; see
docs/fewshot-episodes.md). For each episode and explainer: support-side deletion and insertion
AUC (AffinityExplainer's protocol: deleted pixels leave the support images and masks; measure
``--measure``, by default the mean query foreground probability over the ROI as in the reference;
``miou`` is the query IoU against the ground truth), their difference, mIoULoss@1%,
all in points (×100), and the explainer's wall time. Prints the model's own mIoU against the
trivial all-foreground baseline first, then a markdown leaderboard (mean ± standard error over
episodes) beside the numbers the Affinity Explainer paper reports for DCAMA on COCO-20i (a
different model and different data: compare the ordering, not the values).

Run: ``.venv/bin/python benchmarks/fewshot.py [--episodes 6] [--shots 2] [--steps 75]
[--measure probability] [--threads 1]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

PAPER = {  # Affinity Explainer paper, COCO-20i, 1-way 5-shot, DCAMA: insertion, deletion, difference
    "affinity-masked": (52.3, 15.1, 37.3),
    "best baseline (XRAI)": (None, None, 15.7),
}
DEFAULT_EXPLAINERS = ("affinity", "affinity-masked", "affinity-signed", "affinity-masked-ablation", "saliency", "ig",
                      "gradcam", "occlusion", "kernelshap", "lime", "random")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=6)
    ap.add_argument("--shots", type=int, default=2)
    ap.add_argument("--steps", type=int, default=75, help="curve steps (75: the reference's)")
    ap.add_argument("--measure", default="probability", choices=("probability", "miou", "logit"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core machine)")
    ap.add_argument("--explainers", default=",".join(DEFAULT_EXPLAINERS))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from vlx.fewshot import MatchingSegmenter, episode_suite, explain_support, fewshot_metrics, prepare
    from vlx.fewshot.inputs import query_prediction
    from vlx.fewshot.metrics import iou

    t_start = time.perf_counter()
    model = MatchingSegmenter(device=args.device)
    episodes = episode_suite(args.episodes, shots=args.shots, seed=args.seed)
    names = args.explainers.split(",")
    rows: dict[str, list[tuple[float, float, float, float, float]]] = {n: [] for n in names}
    model_iou, trivial = [], []
    for e in episodes:
        sup = [s.pixels for s in e.supports]
        inp = prepare(model, e.query.pixels, sup, e.support_masks)
        with torch.no_grad():
            pred = query_prediction(model.forward(inp.query, inp.support, inp.masks), inp.query_hw)
        model_iou.append(float(iou(pred, torch.from_numpy(e.query_mask))[0]))
        trivial.append(float(e.query_mask.mean()))
        for n in names:
            a = explain_support(model, e.query.pixels, sup, e.support_masks, n, seed=e.seed, inputs=inp)
            m = {r.name: r.value for r in fewshot_metrics(model, inp, a, e.query_mask, args.measure, args.steps,
                                                                  seed=e.seed)}
            rows[n].append((100 * m["support-insertion"], 100 * m["support-deletion"],
                            100 * m["support-insertion-minus-deletion"], 100 * m["miou-loss@1%"], a.seconds))
        print(f"episode {e.seed} ({e.kind}, {e.category}): model IoU {100 * model_iou[-1]:.1f}", flush=True)

    print(f"\nmodel: {model.name}, {args.episodes} episodes, 1-way {args.shots}-shot, input "
          f"{model.input_size[0]}x{model.input_size[1]}, {args.steps}-step curves of {args.measure}, "
          f"torch threads {args.threads}")
    print(f"query mIoU {100 * np.mean(model_iou):.1f} (all-foreground baseline {100 * np.mean(trivial):.1f}, "
          f"all-background 0.0)\n")
    print("| explainer | insertion ↑ | deletion ↓ | ins − del ↑ | mIoULoss@1% ↓ | s / episode |")
    print("|---|---|---|---|---|---|")
    order = sorted(names, key=lambda n: -np.mean([r[2] for r in rows[n]]))
    for n in order:
        a = np.array(rows[n])
        mean, sem = a.mean(0), a.std(0, ddof=1) / np.sqrt(len(a)) if len(a) > 1 else np.zeros(a.shape[1])
        cells = [f"{mean[i]:.1f} ± {sem[i]:.1f}" for i in range(4)]
        print(f"| {n} | " + " | ".join(cells) + f" | {mean[4]:.2f} |")
    print("\npaper (DCAMA, COCO-20i, 1-way 5-shot; different model and data):")
    for n, (ins, dele, diff) in PAPER.items():
        fmt = lambda v: "—" if v is None else f"{v:.1f}"  # noqa: E731
        print(f"| {n} | {fmt(ins)} | {fmt(dele)} | {fmt(diff)} | — | — |")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")


if __name__ == "__main__":
    main()
