"""When torchvision cannot load beside the installed torch (the usual state of a CPU torch with a
pip torchvision), ``vlx env`` and every extra that needs it say which torch/torchvision pair to
install, in one line. The failure is faked: a ``torchvision`` package whose import raises the
error a mismatched build raises, and ``timm``/``segment_anything``/``open_clip`` packages that
import it first, as the real ones do."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from vlx.models.extras import TORCH_PAIR

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "images" / "chelsea.png"


@pytest.fixture(scope="module")
def fake_site(tmp_path_factory):
    d = tmp_path_factory.mktemp("fake-site")
    (d / "torchvision").mkdir()
    (d / "torchvision" / "__init__.py").write_text(
        'raise RuntimeError("operator torchvision::nms does not exist")\n')
    (d / "torchvision-0.29.1.dist-info").mkdir()
    (d / "torchvision-0.29.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\n"
                                                                  "Version: 0.29.1\n")
    for pkg in ("timm", "segment_anything", "open_clip"):
        (d / pkg).mkdir()
        (d / pkg / "__init__.py").write_text("import torchvision  # noqa: F401\n")
    return d


def vlx(fake_site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake_site), os.environ.get("PYTHONPATH", "")]),
           "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", "import sys; from vlx.cli import main; sys.exit(main())", *args],
                          capture_output=True, text=True, env=env, timeout=300)


def test_pair_is_the_one_the_makefile_installs():
    make = (ROOT / "Makefile").read_text()
    m = re.search(r"^BENCH_TORCH \?= (.+)$", make, re.M)
    assert m and m.group(1).strip() == TORCH_PAIR


def test_env_names_the_pair(fake_site):
    p = vlx(fake_site, "env")
    assert p.returncode == 0, p.stderr
    row = next(l for l in p.stdout.splitlines() if l.startswith("torchvision"))
    assert "BROKEN" in row and "torchvision::nms" in row and TORCH_PAIR in " ".join(p.stdout.split()), p.stdout


@pytest.mark.parametrize("args", [
    ("--model", "torchvision:resnet18=/nowhere/w.pth"),
    ("--model", "timm:resnet18=/nowhere/w.pth"),
    ("--model", "open_clip:ViT-B-32=/nowhere/w.pt", "--labels", "cat,dog"),
    ("--segmenter", "sam:vit_b=/nowhere/sam.pth"),
])
def test_each_extra_names_the_pair_in_one_line(fake_site, tmp_path, args):
    p = vlx(fake_site, "explain", str(EXAMPLE), "--out", str(tmp_path), "--describer", "none", *args)
    assert p.returncode != 0
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("vlx: error:"), p.stderr
    assert TORCH_PAIR in lines[0] and "RuntimeError" in lines[0], lines[0]
