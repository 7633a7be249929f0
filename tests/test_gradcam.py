"""Grad-CAM on planted-signal models and on a ViT without reshape code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlx.attribute import attribute
from vlx.models import load_classifier
from vlx.testing import planted_box, planted_classifier
from vlx.types import ClassTarget, ImageInput

CAT_MASK = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea_mask.png"


@pytest.mark.parametrize("quadrant", ["top-left", "top-right", "bottom-left", "bottom-right"])
def test_gradcam_mass_lands_in_planted_quadrant(quadrant, rng):
    model = planted_classifier(quadrant, size=32)
    img = ImageInput(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    amap = attribute(model, img, ClassTarget(0), "gradcam")
    x0, y0, x1, y1 = (2 * v for v in planted_box(quadrant, 32))   # image is 2× the model input
    pos = np.clip(amap.values, 0, None)
    assert pos.sum() > 0
    assert pos[y0:y1, x0:x1].sum() / pos.sum() > 0.85
    assert amap.values.shape == (64, 64) and amap.raw.shape == (16, 16)
    assert not model.module.features._forward_hooks              # hooks removed


def test_hooks_removed_even_when_forward_fails(rng):
    model = planted_classifier()
    bad = ImageInput(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError):
        attribute(model, bad, ClassTarget((0, 1)), "gradcam")      # 2 targets for a batch of 1
    assert all(not m._forward_hooks for m in model.module.modules())


@pytest.mark.parametrize("fixture", ["tiny_vit_dir", "tiny_deit_dir"])
def test_vit_maps_at_input_resolution_without_reshape(fixture, request, rng):
    model = load_classifier(f"hf:{request.getfixturevalue(fixture)}", "cpu")
    img = ImageInput(rng.integers(0, 256, (48, 80, 3), dtype=np.uint8))
    amap = attribute(model, img, ClassTarget(1), "gradcam")
    assert amap.values.shape == (48, 80)
    assert amap.raw.shape == (4, 4)                              # 32/8 patch grid, prefix tokens dropped
    assert np.isfinite(amap.values).all() and amap.values.min() >= 0


def test_real_model_gradcam_peaks_on_the_cat(effnet, chelsea):
    amap = attribute(effnet, chelsea, ClassTarget(285), "gradcam")
    y, x = np.unravel_index(np.argmax(amap.values), amap.values.shape)
    cat = np.asarray(Image.open(CAT_MASK)) > 127       # hand-drawn mask; (0, 0), an all-zero map's argmax, is outside
    assert cat[y, x] and not cat[0, 0] and amap.values.max() > 0
    assert amap.layer == "_bn1"


def test_gradcam_on_a_frozen_model_matches_the_trainable_one(rng):
    img = ImageInput(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    model = planted_classifier("top-right", size=32)
    trainable = attribute(model, img, ClassTarget(0), "gradcam").values
    for p in model.module.parameters():
        p.requires_grad_(False)
    frozen = attribute(model, img, ClassTarget(0), "gradcam").values
    assert np.allclose(frozen, trainable, atol=1e-6) and frozen.max() > 0
