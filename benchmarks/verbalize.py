"""SmolLM2 verbalization, checked: fact fidelity of the LM's raw text and of the text shown after
verification (verified / corrected / rejected → template), coverage, and time per explanation,
on the bundled images plus a few scikit-image photos, and optionally the first N items of the
localisation suite. For every text shown as the LM's (not the template fallback) it re-runs the
verifier and counts the words outside the vocabulary of measured claims (must be 0), and the
share of LM texts shown. ``--texts FILE`` writes every shown text for reading. Prints a table;
asserts nothing.

Run: .venv/bin/python benchmarks/verbalize.py [--llm smollm2] [--style short] [--mode constrained]
     [--suite 30] [--texts texts.md]
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
    ap.add_argument("--mode", default="constrained", help="constrained or free")
    ap.add_argument("--suite", type=int, default=0, help="also the first N localisation-suite items")
    ap.add_argument("--texts", type=Path, default=None, help="write every shown LM text here (markdown)")
    args = ap.parse_args()

    from vlx.evaluate.text import coverage, fact_fidelity
    from vlx.pipeline import Explainer
    from vlx.verbalize.claims import unsupported_words
    from vlx.verbalize.template import method_display_name
    from vlx.verbalize.verify import verify

    t = time.perf_counter()
    explainer = Explainer("effnet-lite0", verbalizer="llm", llm=args.llm, style=args.style, device=args.device)
    explainer.verbalizer.mode = args.mode
    _ = explainer.verbalizer.llm
    load_s = time.perf_counter() - t
    inputs = images()
    if args.suite:
        from vlx.evaluate.suite import build_suite

        inputs += [it.image for it in build_suite(explainer.model, args.suite).items]
    rows, shown, unsupported, texts = [], 0, 0, []
    for img in inputs:
        e = explainer.explain(img)
        c = e.verbalization.check
        sheet = explainer.last_sheet
        if c.get("fallback") is None:
            shown += 1
            words = unsupported_words(e.verbalization.text, sheet, method_display_name(sheet.method))
            unsupported += len(words)
            print(f"{img.id}: {c['status']}: {e.verbalization.text}", flush=True)
            texts.append(f"- **{img.id}** ({c['status']}; re-verified: {verify(e.verbalization.text, sheet).status}"
                         f"{'; unsupported: ' + ', '.join(words) if words else ''}): {e.verbalization.text}")
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
    print(f"LM texts shown (no template fallback): {shown}/{len(rows)} = {shown / len(rows):.0%}; "
          f"words outside the measured vocabulary in shown texts: {unsupported}")
    if args.texts:
        args.texts.write_text("\n".join(texts) + "\n")
        print(f"shown texts → {args.texts}")


if __name__ == "__main__":
    main()
