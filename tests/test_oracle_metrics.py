"""Every metric against an oracle written here, independently of vlx's code: a closed form on
hand-made arrays, a brute-force definition (pairwise Gini, dense linear solve for ROAD's
imputation, hand-built composites for region deletion, a re-implemented randomisation cascade),
or the reference formula of Quantus where it shares vlx's definition (Gini: Quantus
``Sparseness.evaluate_instance``; entropy: Quantus ``Complexity``)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from scipy.stats import rankdata

from vlx.attribute import AttributionMethod, attribute
from vlx.evaluate import (
    Complexity, EnergyPointingGame, ModelRandomisation, PointingGame, Road, RoadLeRF, RoadMoRF, Sparseness, box_mask,
    entropy, gini, impute, region_deletion, region_deletion_curve, road_curve, spearman,
)
from vlx.evaluate.sanity import parameterised_layers, randomise_
from vlx.image import from_array
from vlx.models.classifier import ImageClassifier
from vlx.testing import planted_classifier
from vlx.types import AttributionMap, ClassTarget, Target
from vlx.verbalize.format import pct, percentages

SIZE = 16


def amap_of(values: np.ndarray, target: Target = ClassTarget(0), method: str = "test") -> AttributionMap:
    v = np.asarray(values, dtype=np.float32)
    return AttributionMap(values=v, raw=v, method=method, target=target)


def blank(h: int, w: int):
    return from_array(np.zeros((h, w, 3), np.uint8))


# ---- oracles written from the definitions -------------------------------------------------------

def gini_pairwise(a: np.ndarray) -> float:
    """Gini index from its definition: mean absolute difference over all ordered pairs divided by
    twice the mean (Chalasani et al. 2020 use the sorted form of the same quantity)."""
    x = np.abs(np.ravel(a)).astype(np.float64)
    if x.sum() == 0:
        return 0.0
    return float(np.abs(x[:, None] - x[None, :]).sum() / (2 * x.size ** 2 * x.mean()))


def gini_quantus(a: np.ndarray) -> float:
    """Quantus ``Sparseness.evaluate_instance`` on ``|a|`` (abs=True), with its 1e-7 offset."""
    x = np.sort(np.abs(np.ravel(a)).astype(np.float64) + 1e-7)
    n = x.size
    return float(np.sum((2 * np.arange(1, n + 1) - n - 1) * x) / (n * np.sum(x)))


def entropy_oracle(a: np.ndarray) -> float:
    from scipy.stats import entropy as sp_entropy

    x = np.abs(np.ravel(a)).astype(np.float64)
    return float(sp_entropy(x / x.sum()))


def nearest_distance(mask: np.ndarray, y: int, x: int) -> float:
    ys, xs = np.nonzero(mask)
    return float(np.sqrt((ys - y) ** 2 + (xs - x) ** 2).min())


def impute_dense(img: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD's noisy-linear imputation without noise, as a dense system solved by numpy: every
    removed pixel equals the weighted mean of its in-image 8-neighbours (1/6 edge, 1/12 corner)."""
    c, h, w = img.shape
    idx = {p: k for k, p in enumerate(zip(*np.nonzero(removed)))}
    n = len(idx)
    a, b = np.zeros((n, n)), np.zeros((n, c))
    for (y, x), k in idx.items():
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if (dy, dx) == (0, 0) or not (0 <= y + dy < h and 0 <= x + dx < w):
                    continue
                wt = 1 / 12 if dy and dx else 1 / 6
                a[k, k] += wt
                if (y + dy, x + dx) in idx:
                    a[k, idx[(y + dy, x + dx)]] -= wt
                else:
                    b[k] += wt * img[:, y + dy, x + dx]
    sol = np.linalg.solve(a, b)
    out = img.astype(np.float64).copy()
    for (y, x), k in idx.items():
        out[:, y, x] = sol[k]
    return out


def probs_of(model: ImageClassifier, batch: torch.Tensor, target: int) -> np.ndarray:
    with torch.no_grad():
        return model.module(batch.float()).softmax(-1)[:, target].double().numpy()


# ---- pointing game and energy -------------------------------------------------------------------

def test_box_mask_closed_form_and_clipping() -> None:
    m = box_mask((2, 1, 5, 3), (4, 6))                 # XYXY, exclusive end
    want = np.zeros((4, 6), bool)
    want[1:3, 2:5] = True
    np.testing.assert_array_equal(m, want)
    np.testing.assert_array_equal(box_mask((-3, -2, 2.9, 9), (4, 6)), np.pad(np.ones((4, 2), bool), ((0, 0), (0, 4))))
    assert box_mask((5, 0, 9, 9), (4, 6)).sum() == 4 and box_mask((7, 0, 9, 9), (4, 6)).sum() == 0
    assert m.dtype == bool and m.shape == (4, 6)


@pytest.mark.parametrize("metric", [PointingGame(), EnergyPointingGame()])
def test_localisation_metrics_need_a_fitting_mask(metric) -> None:
    img = blank(6, 7)
    with pytest.raises(ValueError, match=f"metric '{metric.name}' needs a ground-truth mask"):
        metric(None, img, amap_of(np.ones((6, 7))), 0)
    with pytest.raises(ValueError, match="gt_mask has shape"):
        metric(None, img, amap_of(np.ones((6, 7))), 0, gt_mask=np.ones((7, 6), bool))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tol", [0.0, 3.0, 7.5])
def test_pointing_game_matches_brute_force(seed: int, tol: float) -> None:
    rng = np.random.default_rng(seed)
    h, w = 24, 30
    v = rng.normal(size=(h, w))
    gt = np.zeros((h, w), bool)
    y0, x0 = rng.integers(0, h - 6), rng.integers(0, w - 6)
    gt[y0:y0 + rng.integers(2, 6), x0:x0 + rng.integers(2, 6)] = True
    y, x = divmod(int(np.flatnonzero(v == v.max())[0]), w)
    want = 1.0 if nearest_distance(gt, y, x) <= tol else 0.0
    r = PointingGame(tolerance_px=tol)(None, blank(h, w), amap_of(v), 0, gt_mask=gt)  # type: ignore[arg-type]
    assert r.value == want and r.details["point_yx"] == [y, x] and r.details["n_maxima"] == 1


def test_pointing_game_tolerance_boundary_and_ties() -> None:
    gt = np.zeros((20, 20), bool)
    gt[5:10, 5:10] = True
    v = np.zeros((20, 20))
    v[9, 14] = 1.0                                      # exactly 5 px right of the mask's edge (x=9)
    img = blank(20, 20)
    assert PointingGame(tolerance_px=5)(None, img, amap_of(v), 0, gt_mask=gt).value == 1.0  # type: ignore[arg-type]
    assert PointingGame(tolerance_px=4.99)(None, img, amap_of(v), 0, gt_mask=gt).value == 0.0  # type: ignore[arg-type]
    v[13, 13] = 1.0                                     # diagonal: sqrt(4² + 4²) = 5.66 from (9, 9)
    v[9, 14] = 0.0
    assert PointingGame(tolerance_px=5.6)(None, img, amap_of(v), 0, gt_mask=gt).value == 0.0  # type: ignore[arg-type]
    assert PointingGame(tolerance_px=5.7)(None, img, amap_of(v), 0, gt_mask=gt).value == 1.0  # type: ignore[arg-type]
    flat = np.ones((20, 20))                            # a flat map: first maximum in raster order
    r = PointingGame(tolerance_px=0)(None, img, amap_of(flat), 0, gt_mask=gt)  # type: ignore[arg-type]
    assert r.value == 0.0 and r.details["point_yx"] == [0, 0] and r.details["n_maxima"] == 400
    gt[0, 0] = True
    assert PointingGame(tolerance_px=0)(None, img, amap_of(flat), 0, gt_mask=gt).value == 1.0  # type: ignore[arg-type]


def test_pointing_game_default_tolerance_and_one_pixel() -> None:
    gt = np.zeros((40, 40), bool)
    gt[10:12, 10:12] = True
    img = blank(40, 40)

    def at(y: int, x: int) -> AttributionMap:
        v = np.zeros((40, 40))
        v[y, x] = 1.0
        return amap_of(v)

    game = PointingGame()
    assert game.tolerance_px == 15.0
    r = game(None, img, at(11, 26), 0, gt_mask=gt)  # type: ignore[arg-type]      # 15 px right of (11, 11)
    assert r.value == 1.0 and r.details["tolerance_px"] == 15.0
    assert game(None, img, at(15, 26), 0, gt_mask=gt).value == 0.0  # type: ignore[arg-type]   # sqrt(15² + 4²)
    one = PointingGame(tolerance_px=1)
    assert one(None, img, at(12, 12), 0, gt_mask=gt).value == 0.0  # type: ignore[arg-type]    # diagonal: 1.41
    assert one(None, img, at(12, 11), 0, gt_mask=gt).value == 1.0  # type: ignore[arg-type]    # 1 px below
    assert one(None, img, at(12, 11), 0, gt_mask=np.zeros((40, 40), bool)).value == 0.0  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(5))
def test_energy_pointing_game_matches_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(12, 17))
    gt = rng.random((12, 17)) < 0.3
    inside = sum(max(float(v[i, j]), 0.0) for i in range(12) for j in range(17) if gt[i, j])
    total = sum(max(float(t), 0.0) for t in v.ravel())
    r = EnergyPointingGame()(None, blank(12, 17), amap_of(v), 0, gt_mask=gt)  # type: ignore[arg-type]
    assert r.value == pytest.approx(inside / total, rel=1e-6)
    assert r.details["total_positive"] == pytest.approx(total, rel=1e-6)
    assert r.details["mask_area_fraction"] == pytest.approx(gt.mean())
    neg = -np.abs(v)
    assert EnergyPointingGame()(None, blank(12, 17), amap_of(neg), 0, gt_mask=gt).value == 0.0  # type: ignore[arg-type]
    tiny = EnergyPointingGame()(None, blank(12, 17), amap_of(v * 1e-4), 0, gt_mask=gt)  # type: ignore[arg-type]
    assert tiny.value == pytest.approx(inside / total, rel=1e-5)             # scale-free: small maps too


# ---- sparseness (Gini) and complexity (entropy) -------------------------------------------------

@pytest.mark.parametrize("values, want", [
    ([1, 2, 3, 4], 0.25),                     # pairwise |differences| 20 / (2 · 4 · 10)
    ([0, 0, 1, 1], 0.5),                      # k of n equal non-zeros: 1 - k/n
    ([0, 0, 0, 0, 0, 0, 0, 3], 7 / 8),
    ([-1, 2, -3, 4], 0.25),                   # |map|
    ([5, 5, 5], 0.0),
    ([0, 0, 0], 0.0),
])
def test_gini_closed_forms(values: list, want: float) -> None:
    assert gini(np.array(values, float)) == pytest.approx(want, abs=1e-12)
    assert gini(np.array([])) == 0.0 and gini(np.array([7.0])) == 0.0   # empty; one pixel is flat
    v = np.array(values, float).reshape(1, -1)
    r = Sparseness()(None, blank(*v.shape), amap_of(v), 0)  # type: ignore[arg-type]
    assert r.value == pytest.approx(want, abs=1e-6) and r.higher_is_better and r.category == "complexity"


def test_gini_is_scale_free_and_exact_on_float32_input() -> None:
    v = np.array([1, 2, 3, 4], float)
    for scale in (1e-4, 0.05, 3.0, 1e6):
        assert gini(v * scale) == pytest.approx(0.25, abs=1e-12)
    w = np.ones(16, np.float32)                          # float32 loses the 1s beside 1e8; float64 does not
    w[0] = 1e8
    assert gini(w) == pytest.approx(gini_pairwise(w.astype(np.float64)), rel=1e-13)
    assert gini(np.array([3.0])) == 0.0 and gini(np.zeros(0)) == 0.0


@pytest.mark.parametrize("seed", range(4))
def test_gini_matches_pairwise_definition_and_quantus(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.normal(size=(9, 11)) * rng.random((9, 11)) ** 3
    assert gini(v) == pytest.approx(gini_pairwise(v), abs=1e-12)
    assert gini(v) == pytest.approx(gini_quantus(v), abs=1e-5)       # Quantus adds 1e-7 to every value
    r = Sparseness()(None, blank(9, 11), amap_of(v), 0)  # type: ignore[arg-type]
    assert r.value == pytest.approx(gini_pairwise(v.astype(np.float32)), abs=1e-9)


@pytest.mark.parametrize("k", [1, 2, 5, 13, 40])
def test_entropy_closed_form_k_equal_values(k: int) -> None:
    v = np.zeros((5, 8))
    v.ravel()[:k] = -2.0                      # signs do not matter: |map|
    assert entropy(v) == pytest.approx(np.log(k), abs=1e-12)
    r = Complexity()(None, blank(5, 8), amap_of(v), 0)  # type: ignore[arg-type]
    assert r.value == pytest.approx(np.log(k) / np.log(40), abs=1e-9) and not r.higher_is_better
    assert r.details["entropy_nats"] == pytest.approx(np.log(k), abs=1e-9)


def test_entropy_small_maps_tiny_values_and_float32() -> None:
    v = np.array([[1e-4, 1e-4, 0.0, 1e-4]])
    assert entropy(v) == pytest.approx(np.log(3), abs=1e-12)
    assert Complexity()(None, blank(1, 1), amap_of(np.array([[2.0]])), 0).value == 0.0  # type: ignore[arg-type]
    assert Complexity()(None, blank(1, 2), amap_of(np.array([[1.0, 1.0]])), 0).value == pytest.approx(1.0)  # type: ignore[arg-type]
    w = np.ones(16, np.float32)                          # float32 loses the 1s beside 1e8; float64 does not
    w[0] = 1e8
    assert entropy(w) == pytest.approx(entropy_oracle(w.astype(np.float64)), rel=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_entropy_matches_scipy(seed: int) -> None:
    v = np.random.default_rng(seed).normal(size=(7, 9)) ** 3
    assert entropy(v) == pytest.approx(entropy_oracle(v), abs=1e-12)
    assert entropy(np.zeros((3, 3))) == pytest.approx(np.log(9))     # all-zero map: treated as uniform
    r = Complexity()(None, blank(7, 9), amap_of(v), 0)  # type: ignore[arg-type]
    assert r.value == pytest.approx(entropy_oracle(v.astype(np.float32)) / np.log(63), abs=1e-9)


# ---- ROAD ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_impute_matches_dense_solve(seed: int) -> None:
    rng = np.random.default_rng(seed)
    img = rng.normal(size=(3, 7, 9))
    removed = rng.random((7, 9)) < 0.45
    removed[0, 0] = removed[6, 8] = True                 # corners: 3 neighbours only
    removed[3, 4] = False
    np.testing.assert_allclose(impute(img, removed), impute_dense(img, removed), atol=1e-10)
    np.testing.assert_array_equal(impute(img, removed)[:, ~removed], img[:, ~removed])
    single = impute(img.astype(np.float32), removed.astype(np.uint8))          # any dtypes in, float64 out
    assert single.dtype == np.float64
    np.testing.assert_allclose(single, impute_dense(img.astype(np.float32).astype(np.float64), removed), atol=1e-10)


def test_impute_single_pixel_closed_form() -> None:
    img = np.zeros((1, 3, 3))
    img[0] = [[1, 2, 3], [4, 0, 6], [7, 8, 9]]
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    want = (2 + 4 + 6 + 8) / 6 + (1 + 3 + 7 + 9) / 12     # weights sum to 1 in the interior
    assert impute(img, removed)[0, 1, 1] == pytest.approx(want)
    removed[:] = False
    removed[0, 0] = True
    assert impute(img, removed)[0, 0, 0] == pytest.approx((2 / 6 + 4 / 6 + 0 / 12) / (2 / 6 + 1 / 12))


@pytest.fixture(scope="module")
def planted() -> ImageClassifier:
    return planted_classifier("top-left", size=SIZE)


@pytest.fixture(scope="module")
def dim_image():
    """Dark noise everywhere, a little brighter in the planted quadrant: p(class 0) ~ 0.9, so
    removing or imputing pixels moves every class's probability."""
    px = np.random.default_rng(0).integers(0, 3, (SIZE, SIZE, 3)).astype(np.uint8)
    px[:SIZE // 2, :SIZE // 2] = np.random.default_rng(1).integers(0, 5, (SIZE // 2, SIZE // 2, 3))
    return from_array(px)


def road_oracle(model: ImageClassifier, image, values: np.ndarray, order: str, percentages, noise: float,
                seed: int, target: int) -> np.ndarray:
    """ROAD from the paper's recipe on a map with distinct values: remove the round(p% · n) most
    (MoRF) or least (LeRF) relevant pixels, impute them (dense solve), add N(0, noise²) noise in
    [0, 1] pixel units (drawn per percentage, removed pixels in raster order, as vlx documents),
    and read the target's softmax probability."""
    x = torch.from_numpy(image.pixels.astype(np.float64) / 255.0).permute(2, 0, 1)    # mean 0, std 1
    flat = values.ravel()
    rank_desc = np.argsort(-flat)
    rng = np.random.default_rng(seed)
    out = []
    for p in percentages:
        k = int(round(p / 100 * flat.size))
        chosen = rank_desc[:k] if order == "morf" else rank_desc[::-1][:k]
        removed = np.zeros(flat.size, bool)
        removed[chosen] = True
        removed = removed.reshape(values.shape)
        imp = impute_dense(x.numpy(), removed)
        imp[:, removed] += rng.standard_normal((3, int(removed.sum()))) * noise
        out.append(probs_of(model, torch.from_numpy(imp)[None], target)[0])
    return np.array(out)


@pytest.mark.parametrize("order", ["morf", "lerf"])
@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_road_curve_matches_oracle(planted: ImageClassifier, dim_image, order: str, noise: float) -> None:
    values = np.random.default_rng(3).random((SIZE, SIZE))
    pcts = (10, 35, 50, 90)
    got = road_curve(planted, dim_image, amap_of(values), 0, order, pcts, noise=noise, seed=4)
    want = road_oracle(planted, dim_image, values.astype(np.float32), order, pcts, noise, 4, 0)
    np.testing.assert_allclose(got, want, atol=2e-6)
    assert np.ptp(want) > 1e-3                             # the curve moves: the comparison means something


def test_road_metrics_combine_the_curves(planted: ImageClassifier, dim_image) -> None:
    values = np.random.default_rng(5).random((SIZE, SIZE))
    pcts = (20, 60)
    morf = road_oracle(planted, dim_image, values.astype(np.float32), "morf", pcts, 0.01, 2, 1)
    lerf = road_oracle(planted, dim_image, values.astype(np.float32), "lerf", pcts, 0.01, 2, 1)
    a = amap_of(values, ClassTarget(1))
    for cls, want in ((RoadMoRF, morf), (RoadLeRF, lerf)):
        one = cls(pcts, seed=2)(planted, dim_image, a, 1)
        assert one.value == pytest.approx(want.mean(), abs=2e-6) and one.details["percentages"] == [20.0, 60.0]
        np.testing.assert_allclose(one.details["curve"], want, atol=2e-6)
        assert one.higher_is_better == (cls is RoadLeRF)
    r = Road(pcts, seed=2)(planted, dim_image, a, 1)
    assert r.value == pytest.approx(lerf.mean() - morf.mean(), abs=4e-6) and r.details["percentages"] == [20.0, 60.0]
    np.testing.assert_allclose(r.details["morf"], morf, atol=2e-6)
    np.testing.assert_allclose(r.details["lerf"], lerf, atol=2e-6)
    default = RoadMoRF(pcts)(planted, dim_image, a, 1)                   # noise seed 0 unless told
    want0 = road_oracle(planted, dim_image, values.astype(np.float32), "morf", pcts, 0.01, 0, 1)
    np.testing.assert_allclose(default.details["curve"], want0, atol=2e-6)
    assert np.abs(want0 - morf).max() > 1e-6
    calls = []
    handle = planted.module.register_forward_hook(lambda _m, inp, _o: calls.append(inp[0].shape[0]))
    try:
        RoadMoRF(pcts, batch_size=1)(planted, dim_image, a, 1)
    finally:
        handle.remove()
    assert calls == [1, 1]                                                 # one composite per model call
    with pytest.raises(ValueError, match="percentages"):
        road_curve(planted, dim_image, a, 1, "morf", (0, 50))
    with pytest.raises(ValueError, match="percentages"):
        road_curve(planted, dim_image, a, 1, "morf", (50, 100))
    with pytest.raises(ValueError, match="order"):
        road_curve(planted, dim_image, a, 1, "random", (50,))


# ---- region deletion ----------------------------------------------------------------------------

@pytest.mark.parametrize("target", [0, 2])
def test_region_deletion_matches_hand_built_composites(planted: ImageClassifier, dim_image, target: int) -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 4, (SIZE, SIZE))
    regions = [labels == k for k in (2, 0, 3)]              # pixels of label 1 are never removed
    x = torch.from_numpy(dim_image.pixels.astype(np.float64) / 255.0).permute(2, 0, 1)
    removed = np.zeros((SIZE, SIZE), bool)
    want, areas = [], []
    for m in [np.zeros((SIZE, SIZE), bool)] + regions:
        removed = removed | m
        comp = x * torch.from_numpy(~removed)                 # zero baseline: removed pixels become 0
        want.append(probs_of(planted, comp[None], target)[0])
        areas.append(removed.mean())
    got_areas, got = region_deletion_curve(planted, dim_image, regions, target, baseline="zero")
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(got_areas, areas)
    r = region_deletion(planted, dim_image, regions, target, baseline="zero")
    xs = np.linspace(0, 1, len(want))
    assert r.value == pytest.approx(float(np.sum((np.array(want)[1:] + want[:-1]) / 2 * np.diff(xs))), abs=1e-6)
    assert r.details["first_drop"] == pytest.approx(want[0] - want[1], abs=1e-6)
    assert not r.higher_is_better and r.category == "faithfulness"
    assert np.ptp(want) > 1e-3


def test_region_deletion_default_baseline_is_the_blurred_image(planted: ImageClassifier, dim_image) -> None:
    """The default "removed" content is the image blurred with sigma = 1/20 of its longer side
    (scipy's Gaussian with repeated edges here, on [0, 1] pixels rounded to uint8)."""
    from scipy.ndimage import gaussian_filter

    q = np.zeros((SIZE, SIZE), bool)
    q[:9, :8] = True
    px = dim_image.pixels.astype(np.float64) / 255.0
    blur = gaussian_filter(px, sigma=(SIZE / 20, SIZE / 20, 0), mode="nearest", truncate=4.0)
    blur = np.round(np.clip(blur, 0, 1) * 255) / 255.0
    comp = torch.from_numpy(np.where(q[..., None], blur, px)).permute(2, 0, 1)
    want = probs_of(planted, comp[None], 0)[0]
    r = region_deletion(planted, dim_image, [q], 0)
    assert r.details["curve"][1] == pytest.approx(want, abs=1e-6) and r.details["baseline"] == "blur"
    assert r.name == "region-deletion" and r.higher_is_better is False


def test_region_deletion_takes_region_objects_and_checks_sizes(planted: ImageClassifier, dim_image) -> None:
    from vlx.types import Region

    a = np.zeros((SIZE, SIZE), bool)
    a[:5, :5] = True
    b = np.zeros((SIZE, SIZE), bool)
    b[5:9, 2:7] = True
    regions = [Region(i, m, (0, 0, 1, 1), float(m.mean()), 0.5, 0.1, "centre") for i, m in enumerate([a, b])]
    _, from_masks = region_deletion_curve(planted, dim_image, [a, b], 0, baseline="zero")
    _, from_regions = region_deletion_curve(planted, dim_image, regions, 0, baseline="zero")
    np.testing.assert_array_equal(from_masks, from_regions)
    with pytest.raises(ValueError, match=rf"region mask has shape \(3, 3\) but the image is \({SIZE}, {SIZE}\)"):
        region_deletion_curve(planted, dim_image, [np.ones((3, 3), bool)], 0)
    with pytest.raises(ValueError, match=r"^region_deletion_curve needs at least one region mask\.$"):
        region_deletion_curve(planted, dim_image, [], 0)
    _, default = region_deletion_curve(planted, dim_image, [a, b], 0)
    _, blur = region_deletion_curve(planted, dim_image, [a, b], 0, baseline="blur")
    np.testing.assert_array_equal(default, blur)
    assert np.abs(default - from_masks).max() > 1e-4              # blur is not the zero baseline here


def test_region_deletion_mean_baseline(planted: ImageClassifier, dim_image) -> None:
    q = np.zeros((SIZE, SIZE), bool)
    q[2:7, 1:8] = True
    x = torch.from_numpy(dim_image.pixels.astype(np.float64) / 255.0).permute(2, 0, 1)
    mean = x.mean(dim=(1, 2), keepdim=True).expand_as(x)
    comp = torch.where(torch.from_numpy(q), mean, x)
    want = probs_of(planted, comp[None], 0)[0]
    _, got = region_deletion_curve(planted, dim_image, [q], 0, baseline="mean")
    assert got[1] == pytest.approx(want, abs=1e-6)


# ---- sanity (cascading randomisation) -----------------------------------------------------------

def spearman_oracle(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@pytest.mark.parametrize("seed", range(3))
def test_spearman_matches_rank_pearson(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(6, 7))
    b = a + rng.normal(size=(6, 7)) * (seed + 1) * 0.5
    b[0, :3] = b[0, 3]                                      # ties
    assert spearman(a, b) == pytest.approx(spearman_oracle(a, b), abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.ones_like(a)) == 0.0 and spearman(np.zeros_like(a), a) == 0.0


def test_randomise_draws_zero_mean_gaussian_at_the_original_scale() -> None:
    layer = torch.nn.Linear(200, 300)
    with torch.no_grad():
        layer.weight.mul_(7.0)
    s = float(layer.weight.detach().std())
    randomise_(layer, torch.Generator().manual_seed(0))
    w = layer.weight.detach().double()
    assert float(w.std()) == pytest.approx(s, rel=0.02) and abs(float(w.mean())) < 0.02 * s
    single = torch.nn.Linear(1, 1, bias=False)
    randomise_(single, torch.Generator().manual_seed(1))
    big = torch.nn.Linear(1, 5000, bias=False)
    with torch.no_grad():
        big.weight.fill_(3.0)                               # constant tensor: std 0 → 0.1
    randomise_(big, torch.Generator().manual_seed(1))
    assert float(big.weight.detach().std()) == pytest.approx(0.1, rel=0.05)


class Weighted(AttributionMethod):
    """A test "method" whose map is a known function of the model's weights: each pixel's value
    is ``sum(first conv weights) · x + sum(head weights) · y`` (position-dependent). Randomising
    the head or the first conv changes the map in a way the oracle below predicts."""

    name = "test-weighted"
    needs_gradients = False

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        m = model.module
        h, w = x.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        a = m.features[0].weight.sum() * xx + m.head.weight.sum() * yy + m.features[2].weight.sum() * (xx * yy)
        return a[None]


def cascade_oracle(planted: ImageClassifier, image, method, original: np.ndarray, seed: int, prep=np.asarray):
    names = parameterised_layers(planted.module)
    module = copy.deepcopy(planted.module)
    mods = dict(module.named_modules())
    g = torch.Generator().manual_seed(seed)
    want = []
    for name in reversed(names):
        for p in mods[name].parameters(recurse=False):
            s = float(p.detach().std()) if p.numel() > 1 else 0.0
            with torch.no_grad():
                p.copy_(torch.randn(p.shape, generator=g) * (s if s > 0 else 0.1))
        clone = ImageClassifier(module, "c", "c", planted.labels, planted.preprocess, planted.device)
        new = attribute(clone, image, ClassTarget(0), method)
        want.append(spearman_oracle(prep(original), prep(new.values)))
    return want


def test_sanity_details_absolute_and_named_methods(planted: ImageClassifier, dim_image) -> None:
    method = Weighted()
    amap = attribute(planted, dim_image, ClassTarget(0), method)
    r = ModelRandomisation(method=method, absolute=True, threshold=0.3, repeats=2)(planted, dim_image, amap, 0)
    want = np.mean([cascade_oracle(planted, dim_image, method, amap.values, s, np.abs) for s in (0, 1)], axis=0)
    np.testing.assert_allclose(r.details["spearman"], want, atol=1e-9)
    assert r.details["method"] == "test-weighted" and r.details["threshold"] == 0.3 and r.details["repeats"] == 2
    assert r.details["absolute"] is True and r.details["passed"] == (want[-1] < 0.3)
    at = ModelRandomisation(method=method, threshold=float(r.value), absolute=True, repeats=2)(planted, dim_image, amap, 0)
    assert at.details["passed"] is False                                # final == threshold: not below it
    seeded = ModelRandomisation(method=method)(planted, dim_image, amap, 0).details["spearman"]
    np.testing.assert_allclose(seeded, cascade_oracle(planted, dim_image, method, amap.values, 0), atol=1e-9)

    class Unnamed(Weighted):
        name = ""

    assert ModelRandomisation(method=Unnamed())(planted, dim_image, amap, 0).details["method"] == "Unnamed"
    grad = attribute(planted, dim_image, ClassTarget(0), "gradcam")
    assert ModelRandomisation(method="gradcam")(planted, dim_image, grad, 0).details["method"] == "gradcam"
    with pytest.raises(ValueError, match="every and repeats must be >= 1, got every=0, repeats=1"):
        ModelRandomisation(every=0)
    bare = ImageClassifier(torch.nn.Sequential(torch.nn.Flatten()), "bare", "bare", planted.labels,
                           planted.preprocess, planted.device)
    with pytest.raises(ValueError, match="^Sequential has no parameterised layers to randomise"):
        ModelRandomisation(method=method)(bare, dim_image, amap, 0)


def test_sanity_cascade_matches_reimplementation(planted: ImageClassifier, dim_image) -> None:
    """Stage k's map comes from a copy with layers 0..k (top-down) all randomised with the same
    generator stream; the correlations must equal an independent re-run of that recipe."""
    method = Weighted()
    amap = attribute(planted, dim_image, ClassTarget(0), method)
    names = parameterised_layers(planted.module)
    assert names == ["features.0", "features.2", "head"]
    for seed in (0, 3):
        module = copy.deepcopy(planted.module)
        mods = dict(module.named_modules())
        g = torch.Generator().manual_seed(seed)
        want = []
        for name in reversed(names):
            for p in mods[name].parameters(recurse=False):
                s = float(p.detach().std()) if p.numel() > 1 else 0.0
                with torch.no_grad():
                    p.copy_(torch.randn(p.shape, generator=g) * (s if s > 0 else 0.1))
            clone = ImageClassifier(module, "c", "c", planted.labels, planted.preprocess, planted.device)
            new = attribute(clone, dim_image, ClassTarget(0), method)
            want.append(spearman_oracle(amap.values, new.values))
        r = ModelRandomisation(method=method, seed=seed)(planted, dim_image, amap, 0)
        assert r.details["layers"] == ["head", "features.2", "features.0"]
        np.testing.assert_allclose(r.details["spearman"], want, atol=1e-9)
        assert r.value == pytest.approx(want[-1], abs=1e-9) and r.details["passed"] == (want[-1] < 0.5)
        assert len(set(np.round(want, 6))) == 3             # each stage changes the map differently


def test_sanity_every_and_repeats_average_runs(planted: ImageClassifier, dim_image) -> None:
    method = Weighted()
    amap = attribute(planted, dim_image, ClassTarget(0), method)
    one = [ModelRandomisation(method=method, seed=s)(planted, dim_image, amap, 0).details["spearman"]
           for s in (5, 6, 7)]
    r = ModelRandomisation(method=method, seed=5, repeats=3)(planted, dim_image, amap, 0)
    np.testing.assert_allclose(r.details["spearman_runs"], one, atol=1e-12)
    np.testing.assert_allclose(r.details["spearman"], np.mean(one, axis=0), atol=1e-12)
    e = ModelRandomisation(method=method, seed=5, every=2)(planted, dim_image, amap, 0)
    assert e.details["layers"] == ["features.2", "features.0"]          # after the 2nd and after the last
    np.testing.assert_allclose(e.details["spearman"], [one[0][1], one[0][2]], atol=1e-12)
    e3 = ModelRandomisation(method=method, seed=5, every=3)(planted, dim_image, amap, 0)
    assert e3.details["layers"] == ["features.0"]                        # only after the 3rd (the last)
    np.testing.assert_allclose(e3.details["spearman"], [one[0][2]], atol=1e-12)
    absolute = ModelRandomisation(method=method, seed=5, absolute=True)(planted, dim_image, amap, 0)
    assert absolute.details["absolute"] is True
    with pytest.raises(ValueError):
        ModelRandomisation(every=0)
    with pytest.raises(ValueError):
        ModelRandomisation(repeats=0)


# ---- percentages in text ------------------------------------------------------------------------

@pytest.mark.parametrize("value, text", [
    (0.468, "47%"), (0.464, "46%"), (0.999, "100%"), (0.994, "99%"), (0.0, "0%"), (1.0, "100%"),
    (0.004, "<1%"), (0.0049, "<1%"), (0.006, "1%"), (0.005, "1%"), (0.125, "13%"), (0.285, "29%"),
    (0.015, "2%"), (0.675, "68%"),
])
def test_pct_rounds_half_up(value: float, text: str) -> None:
    assert pct(value) == text


def test_percentages_finds_every_written_share() -> None:
    assert percentages("46% of it, < 1% there, 100% and 7 % and 5%.") == ["46%", "<1%", "100%", "5%"]


# ---- a real photo with a hand-drawn mask --------------------------------------------------------

CAT_MASK = __import__("pathlib").Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea_mask.png"


@pytest.fixture(scope="module")
def cat_mask() -> np.ndarray:
    """The cat in chelsea.png, drawn by hand as a polygon (docs/testing-metrics.md gives its
    points): boolean (300, 451), about 76% of the photo (the head fills most of it)."""
    from PIL import Image

    m = np.asarray(Image.open(CAT_MASK)) > 127
    assert m.shape == (300, 451) and 0.7 < m.mean() < 0.8
    return m


@pytest.mark.slow
def test_gradcam_on_the_cat_photo_lands_on_the_cat(effnet, chelsea, cat_mask) -> None:
    """Grad-CAM for "Egyptian cat" puts its maximum on the cat and >95% of its energy inside the
    mask, well above what smooth random maps of the same blob scale get (their energy follows
    the mask's area, ~0.74-0.80); an all-zero or a flat map fails both checks."""
    from scipy.ndimage import gaussian_filter

    cam = attribute(effnet, chelsea, ClassTarget(285), "gradcam")
    epg = EnergyPointingGame()
    e = epg(effnet, chelsea, cam, 285, gt_mask=cat_mask).value
    assert PointingGame(tolerance_px=0)(effnet, chelsea, cam, 285, gt_mask=cat_mask).value == 1.0
    rand = []
    for s in range(5):
        v = gaussian_filter(np.random.default_rng(s).random(cat_mask.shape), 20.0)
        rand.append(epg(effnet, chelsea, amap_of(v - v.min()), 285, gt_mask=cat_mask).value)
    assert e > 0.95 and e > max(rand) + 0.1, (e, rand)
    zero = amap_of(np.zeros(cat_mask.shape))
    assert epg(effnet, chelsea, zero, 285, gt_mask=cat_mask).value == 0.0
    assert PointingGame(tolerance_px=0)(effnet, chelsea, zero, 285, gt_mask=cat_mask).value == 0.0


# ---- the runner ---------------------------------------------------------------------------------

def test_runner_defaults_and_option_checks(planted: ImageClassifier, dim_image) -> None:
    from vlx.errors import UsageError
    from vlx.evaluate import default_metrics, evaluate

    base = ["deletion", "insertion", "road", "sparseness", "complexity"]
    assert default_metrics(False) == base and default_metrics(True) == base + ["pointing-game", "energy-pointing-game"]
    values = np.random.default_rng(0).random((SIZE, SIZE))
    gt = values > 0.5
    quick = {"deletion": {"steps": 2}, "insertion": {"steps": 2}, "road": {"percentages": [50]}}
    res = evaluate(planted, dim_image, amap_of(values), 0, gt_mask=gt, options=quick)
    assert [r.name for r in res] == base + ["pointing-game", "energy-pointing-game"]
    assert res[-1].value == pytest.approx(values[gt].sum() / values.sum(), rel=1e-5)
    assert len(res[0].details["curve"]) == 3 and res[2].details["percentages"] == [50.0]
    with pytest.raises(UsageError, match=r"^options given for metrics that are not run: deletion, road\.$"):
        evaluate(planted, dim_image, amap_of(values), 0, ["sparseness"], options={"road": {}, "deletion": {}})


def test_dilate_grows_by_euclidean_distance_and_never_shrinks():
    """``dilate``: pixels within ``tolerance_px`` (Euclidean) of the mask; zero or negative
    tolerance (and an empty mask) leave the mask as it is."""
    from vlx.evaluate.pointing import dilate

    mask = np.zeros((9, 9), bool)
    mask[4, 4] = True
    yy, xx = np.mgrid[:9, :9]
    for tol in (1.0, 1.5, 2.0, 3.2):
        assert np.array_equal(dilate(mask, tol), (yy - 4) ** 2 + (xx - 4) ** 2 <= tol ** 2), tol
    for tol in (0.0, -1.0, -5.0):
        assert np.array_equal(dilate(mask, tol), mask), tol
    assert not dilate(np.zeros((5, 5), bool), 3.0).any()


def test_region_deletion_reads_masks_as_boolean_reports_areas_and_batches(planted: ImageClassifier,
                                                                          dim_image) -> None:
    """A non-boolean mask (uint8 0/255, float 0/0.5) means "removed where non-zero"; the details
    give the removed area per step; ``batch_size`` is the number of composites per model call."""
    a = np.zeros((SIZE, SIZE), bool)
    a[:6, :7] = True
    b = np.zeros((SIZE, SIZE), bool)
    b[10:20, 3:9] = True
    want_areas, want = region_deletion_curve(planted, dim_image, [a, b], 1, baseline="zero")
    for odd in ([a.astype(np.uint8) * 255, b.astype(np.uint8) * 255], [a * 0.5, b * 0.5]):
        areas, got = region_deletion_curve(planted, dim_image, odd, 1, baseline="zero")
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(areas, want_areas)
    r = region_deletion(planted, dim_image, [a, b], 1, baseline="zero")
    assert r.details["area_fractions"] == pytest.approx([0.0, a.mean(), (a | b).mean()])
    calls = []
    handle = planted.module.register_forward_hook(lambda _m, inp, _o: calls.append(inp[0].shape[0]))
    try:
        region_deletion(planted, dim_image, [a, b], 1, baseline="zero", batch_size=1)
    finally:
        handle.remove()
    assert calls == [1, 1, 1]


def test_sanity_recomputes_each_map_at_the_maps_own_layer(planted: ImageClassifier, dim_image) -> None:
    """The randomised model's maps are taken at the layer of the map under test, not the model's
    default layer."""
    seen: list[str | None] = []

    class Spy(Weighted):
        name = "test-spy"
        needs_layer = True

        def attribute(self, model, x, target, layer=None):
            seen.append(layer)
            return super().attribute(model, x, target, layer)

    default = planted.layer("auto")[0]
    other = next(n for n in ("features.0", "features.2") if n != default)
    amap = attribute(planted, dim_image, ClassTarget(0), Spy(), layer=other)
    seen.clear()
    ModelRandomisation(method=Spy(), seed=1)(planted, dim_image, amap, 0)
    assert len(seen) == 3 and set(seen) == {other}


def test_map_to_input_is_pils_bilinear_resize() -> None:
    """Maps reach the model input size as PIL resizes images (bilinear, antialiased when
    shrinking, half-pixel centres): PIL is the oracle, down, up and mixed; same size is a copy."""
    from PIL import Image

    from vlx.evaluate.base import map_to_input

    v = np.random.default_rng(0).random((12, 10)).astype(np.float32)
    for hw in ((6, 5), (4, 7), (24, 20), (7, 13)):
        pil = np.asarray(Image.fromarray(v, mode="F").resize((hw[1], hw[0]), Image.BILINEAR), dtype=np.float64)
        got = map_to_input(v, hw)
        assert got.dtype == np.float64 and got.shape == hw
        np.testing.assert_allclose(got, pil, atol=1e-6)
    same = map_to_input(v, (12, 10))
    assert same.dtype == np.float64 and np.array_equal(same, v)


def test_checks_of_map_and_target_say_what_is_wrong(planted: ImageClassifier, dim_image) -> None:
    from vlx.evaluate.base import check_map, check_target

    ok = amap_of(np.ones(dim_image.size_hw, np.float32))
    assert check_map(ok, dim_image).dtype == np.float64
    with pytest.raises(ValueError, match=r"^attribution map has shape \(3, 4\) but the image is .*; compute the map "
                                         r"on this image \(vlx\.attribute\.attribute\)\.$"):
        check_map(amap_of(np.ones((3, 4))), dim_image)
    bad = np.ones(dim_image.size_hw)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match=r"^attribution map holds NaN or infinite values; check the attribution "
                                         r"method\.$"):
        check_map(amap_of(bad), dim_image)
    n = len(planted.labels)
    assert check_target(planted, n - 1) == n - 1 and check_target(planted, np.int64(0)) == 0
    for i in (n, -1):
        with pytest.raises(ValueError, match=rf"^target index {i} is out of range; the model has classes "
                                             rf"0\.\.{n - 1}\.$"):
            check_target(planted, i)
