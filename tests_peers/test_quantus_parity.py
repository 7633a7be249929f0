"""vlx's metrics against Quantus, where the definitions match (Quantus is configured to the
shared definition; the options say how):

- pointing game: Quantus ``PointingGame`` (a hit when a maximum lies in the mask) = vlx's with
  ``tolerance_px=0`` (vlx grows the mask by 15 px by default, as the paper does);
- energy / relevance mass: Quantus ``RelevanceMassAccuracy`` (share of the map's sum inside the
  mask) = vlx's ``energy-pointing-game`` on non-negative maps (vlx counts the positive part);
- sparseness: Quantus ``Sparseness`` (Gini of ``|a|``; it adds 1e-7 to every value) = vlx's;
- complexity: Quantus ``Complexity`` (entropy of ``|a|`` normalised to sum 1, nats) = vlx's
  ``entropy_nats`` (vlx's score divides it by ``log(H*W)``);
- deletion curve: Quantus ``PixelFlipping`` (features replaced by a baseline in order of
  decreasing attribution, the target's softmax probability after each step) = vlx's deletion
  curve with the ``zero`` baseline, without its first point (nothing removed), on a map without
  ties and an image already at the model's input size (no resizing on either side).

Quantus normalises maps by their maximum before scoring by default; every metric here is
scale-invariant, so ``normalise=False`` changes nothing and keeps both sides on the same values.
"""

from __future__ import annotations

import numpy as np
import pytest
import quantus
import torch

from vlx.evaluate.complexity import Complexity, Sparseness
from vlx.evaluate.deletion import pixel_curve
from vlx.evaluate.pointing import EnergyPointingGame, PointingGame
from vlx.image import from_array
from vlx.models.classifier import unwrap_logits
from vlx.types import AttributionMap, ClassTarget

SIZE = 32


class Logits(torch.nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.inner = model.module

    def forward(self, x):
        return unwrap_logits(self.inner(x))


@pytest.fixture(scope="module")
def data(tiny_vit):
    rng = np.random.default_rng(0)
    image = from_array(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8), id="noise")
    maps = []
    for seed in range(6):
        g = np.random.default_rng(100 + seed)
        coarse = g.random((4, 4))
        v = np.kron(coarse, np.ones((8, 8))) + 0.05 * g.random((SIZE, SIZE))    # smooth, no ties
        y, x = (10, 12) if seed % 2 else (28, 27)                                # a peak inside / outside
        v[y, x] += 2.0
        maps.append(v.astype(np.float32))
    mask = np.zeros((SIZE, SIZE), bool)
    mask[4:20, 6:22] = True
    return tiny_vit, image, maps, mask


def vlx_metric(metric, model, image, v, mask, t=0):
    amap = AttributionMap(v, v, "test", ClassTarget(t))
    return metric(model, image, amap, t, mask)


def quantus_args(model, image, maps, mask):
    x = model.to_input(image).numpy()
    n = len(maps)
    return dict(model=Logits(model).eval(), x_batch=np.repeat(x, n, 0), y_batch=np.zeros(n, dtype=int),
                a_batch=np.stack(maps)[:, None], s_batch=np.repeat(mask[None, None], n, 0).astype(np.float32),
                device="cpu")


def test_localisation_metrics(data, record):
    model, image, maps, mask = data
    args = quantus_args(model, image, maps, mask)
    q_pg = quantus.PointingGame(normalise=False, abs=False, disable_warnings=True)(**args)
    q_rm = quantus.RelevanceMassAccuracy(normalise=False, abs=False, disable_warnings=True)(**args)
    v_pg = [vlx_metric(PointingGame(tolerance_px=0), model, image, v, mask).value for v in maps]
    v_rm = [vlx_metric(EnergyPointingGame(), model, image, v, mask).value for v in maps]
    assert len(set(v_pg)) == 2, "the maps should both hit and miss"
    record("quantus", "pointing-game", "6 maps", mismatches=sum(a != b for a, b in zip(v_pg, q_pg)))
    record("quantus", "energy-pointing-game", "6 maps", max_abs=float(np.abs(np.subtract(v_rm, q_rm)).max()))
    assert [float(b) for b in q_pg] == v_pg
    assert np.allclose(v_rm, q_rm, atol=1e-6)


def test_complexity_metrics(data, record):
    model, image, maps, mask = data
    signed = [v - 0.6 for v in maps]                 # signed maps: both read |map|
    args = quantus_args(model, image, signed, mask)
    q_sp = quantus.Sparseness(normalise=False, abs=True, disable_warnings=True)(**args)
    q_cx = quantus.Complexity(normalise=False, abs=True, disable_warnings=True)(**args)
    v_sp = [vlx_metric(Sparseness(), model, image, v, mask).value for v in signed]
    v_cx = [vlx_metric(Complexity(), model, image, v, mask).details["entropy_nats"] for v in signed]
    record("quantus", "sparseness(gini)", "6 maps", max_abs=float(np.abs(np.subtract(v_sp, q_sp)).max()))
    record("quantus", "complexity(entropy)", "6 maps", max_abs=float(np.abs(np.subtract(v_cx, q_cx)).max()))
    assert np.ptp(v_sp) > 0.05 and np.ptp(v_cx) > 0.05, "maps too alike to tell a wrong metric"
    assert np.allclose(v_sp, q_sp, atol=1e-4)        # Quantus's +1e-7 shifts the Gini by ~1e-7/mean
    assert np.allclose(v_cx, q_cx, atol=1e-6)


def test_deletion_curve_equals_pixel_flipping(tmp_path, record):
    """Quantus flips ``features_in_step`` entries of the flattened ``(3, H, W)`` input per step, and
    that step must divide ``H*W``; whole pixels go together only when it is a multiple of 3 too,
    so this test uses a tiny ViT with a 48 × 48 input (``H*W = 2304``, 144 entries = 48 pixels a step)."""
    from vlx.models import load_classifier
    from vlx.testing import tiny_vit_folder

    size, steps = 48, 48
    model = load_classifier(f"hf:{tiny_vit_folder(tmp_path, image_size=size)}", "cpu")
    rng = np.random.default_rng(1)
    image = from_array(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), id="noise48")
    maps = []
    for seed in range(2):
        g = np.random.default_rng(200 + seed)
        maps.append((np.kron(g.random((6, 6)), np.ones((8, 8))) + 0.05 * g.random((size, size))).astype(np.float32))
    args = quantus_args(model, image, maps, np.ones((size, size), bool))
    args["a_batch"] = np.repeat(args["a_batch"], 3, 1)     # one value per (channel, pixel), as Quantus ranks
    q = quantus.PixelFlipping(features_in_step=3 * size * size // steps, perturb_baseline=0.0, normalise=False,
                              abs=False, disable_warnings=True)(**args, softmax=True)
    for v, theirs in zip(maps, q):
        _, ours = pixel_curve(model, image, AttributionMap(v, v, "test", ClassTarget(0)), 0, "deletion",
                              steps=steps, baseline="zero")
        theirs = np.asarray(theirs, dtype=np.float64)
        assert theirs.shape == ours[1:].shape
        diff = float(np.abs(ours[1:] - theirs).max())
        record("quantus", "deletion-curve(pixel flipping)", "tiny-vit-48", max_abs=diff)
        assert np.ptp(theirs) > 1e-3, "flat curve: the comparison would be vacuous"
        assert diff < 1e-5, (ours, theirs)
