"""The deletion and insertion metrics (vlx.evaluate.deletion) against a hand-written loop: pixels
ranked by the map in numpy with a seeded tie-break, composites built one step at a time, the
planted model called directly, and the trapezoid area computed by hand on the uneven schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlx.evaluate import Deletion, Insertion
from vlx.evaluate.curves import blur_image
from vlx.evaluate.deletion import pixel_curve
from vlx.image import from_array
from vlx.testing import planted_classifier
from vlx.types import AttributionMap, ClassTarget

SIZE = 16


@pytest.fixture(scope="module")
def planted():
    return planted_classifier("top-left", size=SIZE)


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    px = np.random.default_rng(0).integers(0, 40, (SIZE, SIZE, 3)).astype(np.uint8)
    px[:SIZE // 2, :SIZE // 2] = np.random.default_rng(1).integers(0, 90, (SIZE // 2, SIZE // 2, 3))
    return px


@pytest.fixture(scope="module")
def tied() -> np.ndarray:
    """A map with many exact ties (three levels), so the seed decides the order within a level."""
    return np.random.default_rng(2).integers(0, 3, (SIZE, SIZE)).astype(np.float32)


def amap(values: np.ndarray) -> AttributionMap:
    return AttributionMap(values=values, raw=values, method="test", target=ClassTarget(0))


def as_input(px: np.ndarray) -> torch.Tensor:
    """The planted model's preprocessing by hand: [0, 1] scaling, mean 0, std 1, no resize."""
    return torch.from_numpy(px.astype(np.float32) / 255).permute(2, 0, 1)[None]


def hand_curve(model, px, values, target, mode, steps, seed, base_px=None):
    x = as_input(px)
    base = torch.zeros_like(x) if base_px is None else as_input(base_px)
    n = values.size
    tie = np.random.default_rng(seed).permutation(n)
    order = np.lexsort((tie, -values.ravel().astype(np.float64)))
    counts = [int(round(k * n / steps)) for k in range(steps + 1)]
    probs = []
    for c in counts:
        moved = np.zeros(n, bool)
        moved[order[:c]] = True
        moved = torch.from_numpy(moved.reshape(values.shape))
        take_base = moved if mode == "deletion" else ~moved
        comp = torch.where(take_base, base, x)
        with torch.no_grad():
            probs.append(float(model.module(comp).softmax(-1)[0, target]))
    fractions = np.array(counts, np.float64) / n
    probs = np.array(probs)
    area = sum((probs[i] + probs[i + 1]) * (fractions[i + 1] - fractions[i]) / 2 for i in range(steps))
    return fractions, probs, area


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
@pytest.mark.parametrize("seed", [0, 5])
def test_metric_equals_the_hand_loop_on_an_uneven_schedule(planted, pixels, tied, mode, seed) -> None:
    """256 pixels in 7 steps: the schedule is uneven, so the AUC must use the real fractions."""
    metric = (Deletion if mode == "deletion" else Insertion)(steps=7, baseline="zero", seed=seed)
    r = metric(planted, from_array(pixels), amap(tied), 1)
    fr, probs, area = hand_curve(planted, pixels, tied, 1, mode, 7, seed)
    assert r.value == pytest.approx(area, abs=1e-6)
    assert r.value != pytest.approx(float(np.trapezoid(probs, np.linspace(0, 1, 8))), abs=1e-7)
    np.testing.assert_allclose(r.details["curve"], probs, atol=1e-6)
    np.testing.assert_allclose(r.details["fractions"], fr, atol=0)
    assert r.details["baseline"] == "zero" and r.details["steps"] == 7
    assert r.higher_is_better is (mode == "insertion")


def test_the_seed_orders_ties_and_defaults_to_zero(planted, pixels, tied) -> None:
    img = from_array(pixels)
    _, p0, _ = hand_curve(planted, pixels, tied, 1, "deletion", 50, 0)
    _, p3, _ = hand_curve(planted, pixels, tied, 1, "deletion", 50, 3)
    assert np.abs(p0 - p3).max() > 1e-3                       # the seed matters on this map
    fr, got = pixel_curve(planted, img, amap(tied), 1, baseline="zero")   # mode, steps, seed by default
    assert fr.shape == (51,)
    np.testing.assert_allclose(got, p0, atol=1e-6)
    np.testing.assert_allclose(pixel_curve(planted, img, amap(tied), 1, baseline="zero", seed=3)[1], p3, atol=1e-6)
    r = Deletion(baseline="zero")(planted, img, amap(tied), 1)
    np.testing.assert_allclose(r.details["curve"], p0, atol=1e-6)
    r3 = Deletion(baseline="zero", seed=3)(planted, img, amap(tied), 1)
    np.testing.assert_allclose(r3.details["curve"], p3, atol=1e-6)


def test_default_metric_blurs_and_takes_fifty_steps(planted, pixels, tied) -> None:
    r = Deletion()(planted, from_array(pixels), amap(tied), 1)
    _, probs, area = hand_curve(planted, pixels, tied, 1, "deletion", 50, 0, base_px=blur_image(pixels))
    assert r.details["steps"] == 50 and r.details["baseline"] == "blur" and len(r.details["curve"]) == 51
    np.testing.assert_allclose(r.details["curve"], probs, atol=1e-5)
    assert r.value == pytest.approx(area, abs=1e-5)


def test_batch_size_is_the_number_of_composites_per_call(planted, pixels, tied) -> None:
    img = from_array(pixels)
    calls: list[int] = []
    handle = planted.module.register_forward_hook(lambda _m, inp, _o: calls.append(inp[0].shape[0]))
    try:
        Insertion(steps=4, baseline="zero", batch_size=2)(planted, img, amap(tied), 0)
        first = list(calls)
        calls.clear()
        pixel_curve(planted, img, amap(tied), 0, "deletion", steps=4, baseline="zero", batch_size=3)
    finally:
        handle.remove()
    assert first == [2, 2, 1] and calls == [3, 2]


def test_bad_mode_is_a_one_line_error(planted, pixels, tied) -> None:
    with pytest.raises(ValueError, match=r"^mode must be 'deletion' or 'insertion', got 'both'$"):
        pixel_curve(planted, from_array(pixels), amap(tied), 0, "both")
