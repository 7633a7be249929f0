"""SmolLM2 verbalization, checked: fact fidelity of the LM's raw text and of the text shown after
verification (verified / corrected / rejected → template), coverage, and time per explanation,
on the bundled images plus a few scikit-image photos. Prints a table; asserts nothing.

Run: .venv/bin/python benchmarks/verbalize.py [--llm smollm2] [--style short]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def images():
    from skimage import data

    from vlx.image import from_array, load_image

    out = [load_image(p) for p in sorted((ROOT / "examples" / "images").glob("*"))]
    for name in ("astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field", "immunohistochemistry"):
        if not any(o.id.startswith(name) for o in out):
            out.append(from_array(getattr(data, name)(), id=name))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--llm", default="smollm2")
    ap.add_argument("--style", default="short")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    from vlx.evaluate.text import coverage, fact_fidelity
    from vlx.pipeline import Explainer

    t = time.perf_counter()
    explainer = Explainer("effnet-lite0", verbalizer="llm", llm=args.llm, style=args.style, device=args.device)
    _ = explainer.verbalizer.llm
    load_s = time.perf_counter() - t
    rows = []
    for img in images():
        e = explainer.explain(img)
        c = e.verbalization.check
        sheet = explainer.last_sheet
        rows.append((img.id, c["status"], fact_fidelity(c["original"], sheet).value,
                     fact_fidelity(e.verbalization.text, sheet).value, coverage(c["original"], sheet).value,
                     c["seconds"]))
    print(f"LLM {args.llm}, style {args.style}, device {args.device}; load {load_s:.1f} s")
    print(f"{'image':24} {'status':10} {'fidelity raw':>12} {'after check':>12} {'coverage raw':>12} {'LM s':>7}")
    for r in rows:
        print(f"{r[0]:24} {r[1]:10} {r[2]:12.2f} {r[3]:12.2f} {r[4]:12.2f} {r[5]:7.1f}")
    print(f"{'mean':24} {'':10} {statistics.mean(r[2] for r in rows):12.2f} {statistics.mean(r[3] for r in rows):12.2f}"
          f" {statistics.mean(r[4] for r in rows):12.2f} {statistics.mean(r[5] for r in rows):7.1f}")
    statuses = [r[1] for r in rows]
    print("statuses: " + ", ".join(f"{s} {statuses.count(s)}" for s in ("verified", "corrected", "rejected")))


if __name__ == "__main__":
    main()
