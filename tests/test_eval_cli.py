"""`vlx eval` through the real entry point: a table in each format, PNG curves and files in
--out, the suite leaderboard, and one clear line for each bad input."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")


def run(*args):
    assert VLX, "the vlx console script is not installed"
    return subprocess.run([VLX, *map(str, args)], capture_output=True, text=True, timeout=300)


def error_lines(p):
    return [l for l in p.stderr.splitlines() if l.startswith("vlx: error:")]


def assert_one_line_error(p, *needles):
    assert p.returncode != 0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("vlx: error:") and "Traceback" not in p.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from skimage import data

    d = tmp_path_factory.mktemp("eval-images")
    Image.fromarray(data.chelsea()[::2, ::2]).save(d / "cat.png")
    Image.fromarray(data.coffee()[::2, ::2]).save(d / "cup.jpg")
    (d / "broken.png").write_text("not an image\n")
    return d


def test_csv_out_dir_and_png_curves(images, tmp_path):
    p = run("eval", images / "cat.png", images / "cup.jpg", "--methods", "gradcam,saliency",
            "--metrics", "deletion,insertion", "--steps", "4", "--format", "csv", "--out", tmp_path, "-q")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert [(r["image"], r["method"]) for r in rows] == [("cat", "gradcam"), ("cup", "gradcam"),
                                                         ("cat", "saliency"), ("cup", "saliency")]
    assert all(0 <= float(r["deletion"]) <= 1 and 0 <= float(r["insertion"]) <= 1 for r in rows)
    assert (tmp_path / "table.csv").read_text() == p.stdout
    assert (tmp_path / "table.md").read_text().startswith("| image | method |")
    assert len(json.loads((tmp_path / "results.json").read_text())["rows"]) == 4
    pngs = sorted(x.name for x in (tmp_path / "curves").iterdir())
    assert pngs == ["cat_deletion.png", "cat_insertion.png", "cup_deletion.png", "cup_insertion.png"]
    im = np.asarray(Image.open(tmp_path / "curves" / "cat_deletion.png").convert("RGB"))
    assert im.shape == (420, 640, 3) and (im != 255).any()
    html = (tmp_path / "report.html").read_text()                     # the same table and curves, embedded
    assert html.count("data:image/png;base64,") == 4 and "saliency" in html and "deletion ↓" in html


@pytest.mark.parametrize("fmt", ["json", "markdown", "table"])
def test_each_format(images, fmt):
    p = run("eval", images / "cat.png", "--steps", "3", "--format", fmt, "-q")
    assert p.returncode == 0, p.stderr
    if fmt == "json":
        doc = json.loads(p.stdout)
        (row,) = doc["rows"]
        assert row["method"] == "gradcam" and set(row["values"]) == {"deletion", "insertion"}
        assert [m["higher_is_better"] for m in doc["metrics"]] == [False, True]
    elif fmt == "markdown":
        assert p.stdout.splitlines()[1].startswith("|---") and "| cat | gradcam |" in p.stdout
    else:
        assert "gradcam" in p.stdout and "deletion" in p.stdout and "|" not in p.stdout


def test_bad_image_is_one_line_and_the_rest_go_on(images):
    p = run("eval", images / "broken.png", images / "cat.png", "--steps", "3", "--format", "csv", "-q")
    assert p.returncode == 2
    (line,) = error_lines(p)
    assert "broken.png" in line and "Traceback" not in p.stderr
    rows = list(csv.DictReader(io.StringIO(p.stdout)))
    assert rows[0]["error"] and rows[1]["image"] == "cat" and rows[1]["deletion"]


@pytest.mark.parametrize("args, needle", [
    (["{img}", "--methods", "gradcamm"], "gradcam"),
    (["{img}", "--metrics", "delet"], "deletion"),
    (["{img}", "--metrics", "pointing-game"], "ground-truth mask"),
    (["{img}", "--format", "xml"], "format"),
    (["{missing}"], "missing.png"),
    ([], "nothing to evaluate"),
    (["--suite", "imagenet"], "localisation"),
    (["{img}", "--suite", "localisation"], "not both"),
])
def test_bad_inputs_one_line(images, args, needle):
    args = [a.format(img=images / "cat.png", missing=images / "missing.png") for a in args]
    assert_one_line_error(run("eval", *args), needle)


def test_suite_leaderboard(tmp_path):
    p = run("eval", "--suite", "localisation", "--methods", "gradcam,saliency", "--limit", "2", "--steps", "3",
            "--cache-dir", tmp_path / "cache", "--out", tmp_path / "out", "--format", "json", "-q")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["settings"]["items"] == 2 and doc["settings"]["suite"] == "localisation-v1"
    assert {s["method"] for s in doc["scores"]} == {"gradcam", "saliency"}
    for s in doc["scores"]:
        assert set(s["means"]) == {"pointing-game", "energy-pointing-game", "deletion", "insertion"}
        assert s["n"] == 2 and s["seconds"] > 0
    assert (tmp_path / "out" / "curves" / "suite_deletion.png").exists()
    assert (tmp_path / "cache" / "localisation-v1" / "seed0-effnet-lite0" / "manifest.json").exists()
