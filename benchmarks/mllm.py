"""MLLM explanation benchmark: cost of each method relative to one forward pass, MSEA's cost per
scale, ARC's overhead, and deletion / insertion of each method on the planted model and on the
embedded demo (EfficientNet-Lite0 + SmolLM2; a demo target, not proof of faithfulness).

    .venv/bin/python benchmarks/mllm.py [--skip-demo] [--steps 10] [--demo-steps 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from vlx.mllm import load_mllm
from vlx.mllm.ask import context_relevance
from vlx.mllm.context import AnswerContext
from vlx.mllm.methods import MLLM_METHODS, get_mllm_method
from vlx.mllm.metrics import deletion_insertion, forward_seconds, mass_inside, method_seconds
from vlx.mllm.msea import msea


def bench(label: str, ctx: AnswerContext, token: int, steps: int, mask: np.ndarray | None,
          options: dict[str, dict]) -> None:
    fwd = forward_seconds(ctx)
    word = ctx.token_text((token,)).strip()
    print(f"\n## {label}: answer {''.join(ctx.model.decode_tokens(ctx.answer_ids)).strip()!r}, token {token} "
          f"({word!r}); one forward pass = {fwd * 1000:.0f} ms\n")
    head = "| method | seconds | × forward | deletion ↓ | insertion ↑ |"
    head += " mass on planted |" if mask is not None else ""
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for name in MLLM_METHODS.names():
        m = get_mllm_method(name, **options.get(name, {}))
        sec = method_seconds(ctx, m, [token])
        amap = m.explain(ctx, [token])[0]
        dele, ins = deletion_insertion(ctx, amap, steps=steps)
        extra = f" {mass_inside(amap, mask):.2f} |" if mask is not None else ""
        print(f"| {name} | {sec:.3f} | {sec / fwd:.1f} | {dele.value:.3f} | {ins.value:.3f} |{extra}")
    t0 = time.perf_counter()
    tam_arc = get_mllm_method("tam", weights="arc")
    sec_arc = method_seconds(ctx, tam_arc, [token])
    sec_tam = method_seconds(ctx, get_mllm_method("tam"), [token])
    ctx.output()
    t1 = time.perf_counter()
    rel = context_relevance(ctx, token)
    t_rel = time.perf_counter() - t1
    print(f"\nARC: TAM with ARC weights {sec_arc:.3f} s vs TAM's own weights {sec_tam:.3f} s "
          f"(overhead {sec_arc - sec_tam:+.3f} s = {(sec_arc - sec_tam) / fwd:+.2f} forward passes); "
          f"relevance vector alone {t_rel * 1000:.1f} ms over {len(rel)} context words; "
          f"top: {', '.join(f'{w} {v:.2f}' for w, v in rel[:3])}")
    amap = get_mllm_method("tam", weights="arc").explain(ctx, [token])[0]
    d, i = deletion_insertion(ctx, amap, steps=steps)
    print(f"TAM+ARC deletion {d.value:.3f} insertion {i.value:.3f}")
    for scales in ((1.0, 0.75, 0.5),):
        res = msea(ctx, get_mllm_method("tam"), [token], scales)[0]
        d, i = deletion_insertion(ctx, res, steps=steps)
        per = ", ".join(f"{s['scale']}: {s['seconds']:.3f} s ({s['seconds'] / fwd:.1f}× fwd, {s['image_tokens']} image "
                        f"tokens, p={s['probability']:.2f})" for s in res.details["scales"])
        extra = f", mass on planted {mass_inside(res, mask):.2f}" if mask is not None else ""
        print(f"MSEA(tam) scales {scales}: {per}; deletion {d.value:.3f} insertion {i.value:.3f}{extra}")
    print(f"(section took {time.perf_counter() - t0:.1f} s after the method table)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--demo-steps", type=int, default=5)
    ap.add_argument("--skip-demo", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from vlx.testing.tiny_mllm import PlantedMLLM, planted_image, planted_mask

    planted = PlantedMLLM()
    img = planted_image()
    ctx = AnswerContext(planted, img, "what colour has it?")
    bench("planted-signal MLLM (64 image tokens)", ctx, 0, a.steps, planted_mask(img.size_hw), {})
    if a.skip_demo:
        return
    from skimage import data

    from vlx.image import from_array

    t0 = time.perf_counter()
    demo = load_mllm("demo", "cpu")
    print(f"\ndemo loaded in {time.perf_counter() - t0:.1f} s")
    chelsea = from_array(data.chelsea(), id="chelsea")
    t0 = time.perf_counter()
    ctx = AnswerContext(demo, chelsea, "What is in the image? Answer with the object's name.", max_new_tokens=4)
    print(f"demo answer in {time.perf_counter() - t0:.1f} s")
    words = demo.decode_tokens(ctx.answer_ids)
    token = next((i for i, w in enumerate(words) if any(c.isalpha() for c in w)), 0)
    bench("demo (EfficientNet-Lite0 + SmolLM2, 49 image tokens; not proof of faithfulness)", ctx, token,
          a.demo_steps, None, {"occlusion": {"n_segments": 16}})


if __name__ == "__main__":
    main()
