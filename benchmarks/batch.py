"""Throughput of `vlx batch` on the embedded default (EfficientNet-Lite0, Grad-CAM, superpixel
regions, offline descriptions, template text, report per item): images per minute with 1 and 2
processes of one torch thread each, over ~20 photos (crops of the bundled examples and of
scikit-image's pictures, 224-480 px). Wall time includes starting the processes and loading the
model; "steady" divides by the time from the first item's start to the last commit. Prints a
table; asserts nothing.

Run: .venv/bin/python benchmarks/batch.py [--images 20] [--processes 1 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def photos(folder: Path, n: int) -> list[Path]:
    """``n`` photos: the bundled examples and scikit-image pictures, cropped and scaled."""
    from skimage import data

    pics = [np.asarray(Image.open(p).convert("RGB")) for p in sorted((ROOT / "examples" / "images").glob("*"))]
    for name in ("astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field", "immunohistochemistry",
                 "brick", "grass", "gravel"):
        a = getattr(data, name)()
        pics.append(np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a[:, :, :3])
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        a = pics[i % len(pics)]
        h, w = a.shape[:2]
        s = rng.uniform(0.6, 1.0)
        ch, cw = int(h * s), int(w * s)
        y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        im = Image.fromarray(a[y:y + ch, x:x + cw])
        side = int(rng.integers(224, 481))
        im.thumbnail((side, side))
        p = folder / f"photo{i:03d}.jpg"
        im.save(p, quality=92)
        paths.append(p)
    return paths


def run(folder: Path, out: Path, processes: int, device: str) -> tuple[float, float, int]:
    """Returns (wall seconds, steady seconds, items done)."""
    from vlx.batch.journal import read_jsonl

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "vlx.cli", "batch", str(folder), "--out", str(out), "--processes", str(processes),
           "--threads", "1", "--device", device, "--no-progress", "-q"]
    t0 = time.perf_counter()
    start_wall = time.time()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        logs = "".join(f"\n--- {f.name}\n{f.read_text()[-3000:]}" for f in sorted((out / ".logs").glob("*.log")))
        raise SystemExit(f"batch failed ({p.returncode}): {p.stderr[-2000:]}{logs}")
    results = read_jsonl(out / "results.jsonl")
    commits = sorted((out / "items" / r["id"] / "report.html").stat().st_mtime for r in results)
    first_start = min(c - r["seconds"] for c, r in zip(commits, results))
    steady = commits[-1] - max(first_start, start_wall)
    return wall, steady, len(results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="vlx-bench-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        photos(folder, args.images)
        rows = []
        for n in args.processes:
            wall, steady, done = run(folder, Path(tmp) / f"out{n}", n, args.device)
            rows.append((n, done, wall, 60 * done / wall, 60 * done / steady if steady > 0 else float("nan")))
    print(f"vlx batch, effnet-lite0 + gradcam, {args.images} photos, 1 torch thread per process, device "
          f"{args.device}, {os.cpu_count()} CPUs")
    print(f"{'processes':>9} {'items':>6} {'wall s':>8} {'img/min (wall)':>15} {'img/min (steady)':>17}")
    for n, done, wall, rate, steady in rows:
        print(f"{n:>9} {done:>6} {wall:>8.1f} {rate:>15.1f} {steady:>17.1f}")
    if len(rows) > 1:
        print(f"speed-up {rows[-1][0]} vs {rows[0][0]} processes: wall {rows[-1][3] / rows[0][3]:.2f}x, "
              f"steady {rows[-1][4] / rows[0][4]:.2f}x")


if __name__ == "__main__":
    main()
