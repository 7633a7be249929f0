"""Region scores (vlx/regions/scoring.py) against oracles built from ``removal_scores`` (itself
checked against scipy's blur in tests/test_regions.py): Shapley values enumerated by brute force at
the exact/sampled boundary, the antithetic permutation estimator written out, overlapping regions
removed once, batch sizes passed through, and the position word of a region from its positive mass."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from torch import nn

from vlx.image import from_array
from vlx.models.classifier import ImageClassifier, Preprocess
from vlx.regions.causal import blurred, removal_scores
from vlx.regions.scoring import (EXACT_SHAPLEY_MAX, causal_scores, region_from_mask, score_regions,
                                 shapley_values)
from vlx.testing import planted_classifier


@pytest.fixture(scope="module")
def model():
    return planted_classifier("top-left", size=32)


@pytest.fixture(scope="module")
def image():
    return from_array(np.random.default_rng(4).integers(0, 3, (32, 32, 3), dtype=np.uint8))


class _Interacting(nn.Module):
    """Two logits; the first mixes the mean squares of the cells of a 3 × 3 grid with products
    (players interact, so permutation estimates depend on the permutations drawn)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = [4 * x[:, :, 11 * (i // 3):11 * (i // 3 + 1), 11 * (i % 3):11 * (i % 3 + 1)].square().mean((1, 2, 3))
             for i in range(9)]
        z = 6 * c[0] * c[4] - 5 * c[4] * c[8] + 4 * c[2] * c[6] * c[0] + 3 * c[1] - 2
        return torch.stack([z, torch.zeros_like(z)], 1)


@pytest.fixture(scope="module")
def interacting():
    pre = Preprocess(size=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    model = ImageClassifier(_Interacting(), "test:interacting", "interacting", ["a", "b"], pre, torch.device("cpu"))
    px = np.zeros((32, 32, 3), np.uint8)
    px[::2, ::2] = 255                       # a fine checkerboard: the blur halves every cell
    px[:, 16:] //= 2
    return model, from_array(px)


def _value(model, image, masks, target, coalitions) -> dict:
    """v(S): the target probability with every mask outside S removed (one removal_scores call)."""
    unions = [np.logical_or.reduce([m for m, keep in zip(masks, s) if not keep] or [np.zeros((32, 32), bool)])
              for s in coalitions]
    return dict(zip(coalitions, removal_scores(model, image, unions, target)))


def _stripes(n: int) -> list[np.ndarray]:
    out = []
    for i in range(n):
        m = np.zeros((32, 32), bool)
        m[:, i * 32 // n:(i + 1) * 32 // n] = True
        out.append(m)
    return out


def test_exact_shapley_at_the_boundary_is_enumerated(model, image):
    """Eight players (the largest exact case): every coalition, the subset formula by hand."""
    n = EXACT_SHAPLEY_MAX
    assert n == 8
    masks = _stripes(n)
    coalitions = list(itertools.product((0, 1), repeat=n))
    v = _value(model, image, masks, 0, coalitions)
    want = np.zeros(n)
    for s in coalitions:
        k = sum(s)
        for i in range(n):
            if not s[i]:
                w = math.factorial(k) * math.factorial(n - k - 1) / math.factorial(n)
                want[i] += w * (v[s[:i] + (1,) + s[i + 1:]] - v[s])
    got = shapley_values(model, image, masks, 0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert np.abs(want).max() > 1e-3


def test_sampled_shapley_is_the_antithetic_permutation_estimator(interacting):
    """Nine players: 32 seeded permutations plus their reverses, marginal contributions averaged;
    defaults are 32 permutations and seed 0, and the result is reproducible."""
    model, image = interacting
    n = 9
    masks = [np.zeros((32, 32), bool) for _ in range(n)]
    for i in range(n):
        masks[i][(i // 3) * 11:(i // 3 + 1) * 11, (i % 3) * 11:(i % 3 + 1) * 11] = True
    rng = np.random.default_rng(0)
    perms = [rng.permutation(n) for _ in range(32)]
    perms = perms + [p[::-1] for p in perms]

    def prefix(p, k):
        return tuple(int(i in set(p[:k].tolist())) for i in range(n))

    coalitions = sorted({prefix(p, k) for p in perms for k in range(n + 1)})
    v = _value(model, image, masks, 0, coalitions)
    want = np.zeros(n)
    for p in perms:
        for k, i in enumerate(p):
            want[i] += v[prefix(p, k + 1)] - v[prefix(p, k)]
    want /= len(perms)
    got = shapley_values(model, image, masks, 0)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(shapley_values(model, image, masks, 0, n_permutations=32, seed=0), got, atol=0)
    np.testing.assert_allclose(shapley_values(model, image, masks, 0), got, atol=0)
    assert np.abs(shapley_values(model, image, masks, 0, seed=1) - got).max() > 1e-6
    assert np.abs(shapley_values(model, image, masks, 0, n_permutations=33) - got).max() > 1e-6


def test_overlapping_regions_are_removed_once(model, image):
    a = np.zeros((32, 32), bool)
    a[:16, :16] = True                       # over the planted top-left box
    phi = shapley_values(model, image, [a, a], 0)
    p_image = removal_scores(model, image, [np.zeros((32, 32), bool)], 0)[0]
    p_a = removal_scores(model, image, [a], 0)[0]
    assert phi.sum() == pytest.approx(p_image - p_a, abs=1e-6)
    assert abs(p_image - p_a) > 1e-3


def test_given_input_and_baseline_are_used(model, image):
    other = from_array(np.random.default_rng(6).integers(100, 255, (32, 32, 3), dtype=np.uint8))
    masks = _stripes(3)
    want = shapley_values(model, other, masks, 0)
    got = shapley_values(model, image, masks, 0, x=model.to_input(other),
                         baseline=model.to_input(blurred(other.pixels)))
    np.testing.assert_allclose(got, want, atol=1e-7)
    assert np.abs(shapley_values(model, image, masks, 0) - want).max() > 1e-4


def test_no_regions():
    m = planted_classifier("top-left", size=32)
    img = from_array(np.zeros((32, 32, 3), np.uint8))
    assert shapley_values(m, img, [], 0).shape == (0,)
    assert causal_scores(m, img, [], 0) == ([], [])


def test_batch_size_reaches_every_model_call(model, image):
    sizes: list[int] = []
    handle = model.module.register_forward_hook(lambda mod, inp, out: sizes.append(inp[0].shape[0]))
    masks = _stripes(3)
    regions = [region_from_mask(i, m, np.ones((32, 32)), "test") for i, m in enumerate(masks)]
    try:
        causal_scores(model, image, masks, 0, batch_size=2)
        assert sizes == [2, 2, 2]
        sizes.clear()
        shapley_values(model, image, masks, 0, batch_size=3)
        assert sizes == [3, 3, 2]
        sizes.clear()
        score_regions(model, image, regions, 0, shapley=True, batch_size=5)
        assert sizes == [5, 1, 5, 3]
        sizes.clear()
        score_regions(model, image, regions, 0, shapley=True)
        assert sizes == [4, 2, 4, 4]           # the model's own batch size
    finally:
        handle.remove()
    assert model.batch_size == 4


def test_region_position_is_the_centroid_of_its_positive_mass():
    """A mask over the whole image whose positive mass sits in the bottom-right corner is placed
    there, not at the mask's centre; negative values do not pull it."""
    values = np.full((30, 30), 0.01)
    values[24:, 24:] = 100.0
    values[:6, :6] = -1000.0
    whole = np.ones((30, 30), bool)
    assert region_from_mask(0, whole, values, "test").position == "bottom-right"
    ring = np.zeros((30, 30), bool)
    ring[:, :10] = True
    values2 = np.zeros((30, 30))
    values2[:10, :10] = 1.0
    values2[20:, :10] = 0.001
    assert region_from_mask(0, ring, values2, "test").position == "top-left"
