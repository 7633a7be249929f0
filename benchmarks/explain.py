"""End-to-end timing of `vlx explain` on the embedded default: model load, one explanation after
load (per stage), and the cold start of the command. Prints a table; asserts nothing.

Run: .venv/bin/python benchmarks/explain.py [--repeats 5] [--no-metrics]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from photos import bundled_photos          # benchmarks/photos.py (this script's folder)

IMAGES = bundled_photos()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-metrics", action="store_true", help="explain without measuring the map (as --no-metrics)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    t = time.perf_counter()
    from vlx.pipeline import Explainer

    import_s = time.perf_counter() - t
    t = time.perf_counter()
    explainer = Explainer("effnet-lite0", device="cpu", metrics=not args.no_metrics)   # the default method
    load_s = time.perf_counter() - t
    explainer.explain(IMAGES[0])                                  # warm-up
    stages: dict[str, list[float]] = {}
    walls = []
    for _ in range(args.repeats):
        for img in IMAGES:
            t = time.perf_counter()
            e = explainer.explain(img)
            walls.append(time.perf_counter() - t)
            for k, v in e.timing_s.items():
                stages.setdefault(k, []).append(v)

    exe = shutil.which("vlx", path=str(Path(sys.executable).parent))
    colds = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(3):
            t = time.perf_counter()
            subprocess.run([exe, "explain", str(IMAGES[0]), "--out", tmp, "-q",
                            *(["--no-metrics"] if args.no_metrics else [])], check=True)
            colds.append(time.perf_counter() - t)
        t = time.perf_counter()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        help_s = time.perf_counter() - t

    print(f"images: {', '.join(p.name for p in IMAGES)}; repeats {args.repeats}; torch threads {torch.get_num_threads()}")
    print(f"{'import vlx.pipeline':32} {import_s:8.3f} s")
    print(f"{'load effnet-lite0':32} {load_s:8.3f} s")
    print(f"{'explain one image (median)':32} {statistics.median(walls):8.3f} s")
    for k, v in stages.items():
        print(f"{'  ' + k:32} {statistics.median(v):8.3f} s")
    print(f"{'vlx explain, cold (median of 3)':32} {statistics.median(colds):8.3f} s")
    print(f"{'vlx --help':32} {help_s:8.3f} s")


if __name__ == "__main__":
    main()
