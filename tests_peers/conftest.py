"""Parity tests against peer libraries (pytorch-grad-cam, captum, shap, Quantus) and the optional
extras (segment-anything, open_clip, timm, torchvision). They need torchvision beside a matching
torch, which breaks the light CPU torch of ``.venv``, so they run in the second environment:
``make test-peers`` (``.bench-venv``, built by ``make bench-env``). ``make test`` never collects
this folder (``testpaths = ["tests"]``).

Each parity test records its figures (max abs difference, correlation) with ``record``; the run
ends with a table of them."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

FIGURES: list[tuple[str, str, str, dict[str, float]]] = []


@pytest.fixture
def record():
    """``record(peer, method, model, max_abs=..., corr=...)`` adds a row to the final table."""

    def add(peer: str, method: str, model: str, **figures: float) -> None:
        FIGURES.append((peer, method, model, {k: float(v) for k, v in figures.items()}))

    return add


def pytest_terminal_summary(terminalreporter):
    if not FIGURES:
        return
    tr = terminalreporter
    tr.section("parity figures (vlx vs peer)")
    for peer, method, model, figs in sorted(FIGURES):
        vals = "  ".join(f"{k}={v:.3g}" for k, v in figs.items())
        tr.write_line(f"{peer:<16} {method:<22} {model:<14} {vals}")


def pearson(a, b) -> float:
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0 else float("nan")


@pytest.fixture(scope="session")
def effnet():
    from vlx.models import load_classifier

    return load_classifier("effnet-lite0", "cpu")


@pytest.fixture(scope="session")
def chelsea_input(effnet):
    """The cat photo as EfficientNet-Lite0's model input ``(1, 3, 224, 224)``."""
    from skimage import data

    return effnet.to_input(data.chelsea())


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    from vlx.models import load_classifier
    from vlx.testing import tiny_vit_folder

    return load_classifier(f"hf:{tiny_vit_folder(tmp_path_factory.mktemp('vit'))}", "cpu")


def smooth_input(seed: int = 0, size: int = 32, batch: int = 1) -> torch.Tensor:
    """A smooth random model input ``(batch, 3, size, size)`` in about ``[-1, 1]``."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((batch, 3, 4, 4), generator=g)
    x = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)
    return (x + 0.1 * torch.rand((batch, 3, size, size), generator=g) - 0.55) / 0.5
