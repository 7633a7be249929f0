"""The one curves module (vlx.evaluate.curves) against independent oracles: a hand-written
Gaussian convolution for the blur baseline, closed forms for step schedules and areas, plain
loops for ranks, masks and batching; and the image / MLLM / few-shot curves built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlx.evaluate.curves import (
    BASELINES, auc, baseline_image, baseline_tensor, blur_image, blur_sigma, gaussian_blur, moved_masks, pixel_ranks,
    score_batches, step_counts,
)


def ref_gaussian(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian, edge ('nearest') padding, radius round(4 sigma), float64 loops."""
    r = int(4 * sigma + 0.5)
    x = np.arange(-r, r + 1)
    k = np.exp(-x ** 2 / (2 * sigma ** 2))
    k /= k.sum()
    out = np.asarray(a, np.float64)
    for axis in (0, 1):
        pad = [(r, r) if i == axis else (0, 0) for i in range(out.ndim)]
        p = np.pad(out, pad, mode="edge")
        acc = np.zeros_like(out)
        for i, w in enumerate(k):
            sl = [slice(None)] * out.ndim
            sl[axis] = slice(i, i + out.shape[axis])
            acc += w * p[tuple(sl)]
        out = acc
    return out


@pytest.fixture(scope="module")
def checker() -> np.ndarray:
    rng = np.random.default_rng(0)
    a = np.zeros((30, 40, 3), np.uint8)
    a[::2, ::2] = 255                                         # high frequency: blur must flatten it
    a[..., 1] = rng.integers(0, 256, (30, 40))
    return a


def test_blur_matches_a_hand_written_gaussian(checker):
    s = blur_sigma(checker.shape[:2])
    assert s == 2.0
    want = np.clip(ref_gaussian(checker.astype(np.float64) / 255, s), 0, 1) * 255
    got = blur_image(checker)
    assert np.abs(got.astype(np.float64) - want).max() <= 0.5 + 1e-6
    # the blur really blurs: the checkerboard's contrast is gone
    assert checker[..., 0].std() > 100 and got[8:-8, 8:-8, 0].std() < 0.05 * checker[..., 0].std()
    np.testing.assert_allclose(gaussian_blur(checker.astype(np.float64), 1.5), ref_gaussian(checker, 1.5), atol=1e-9)
    x = torch.from_numpy(checker.astype(np.float32)).permute(2, 0, 1)[None]
    bt = baseline_tensor(torch.cat([x, x.flip(-1)]), "blur")
    np.testing.assert_allclose(bt[0].permute(1, 2, 0).numpy(), ref_gaussian(checker, s), atol=1e-3)
    np.testing.assert_allclose(bt[1].permute(1, 2, 0).numpy(), ref_gaussian(checker[:, ::-1], s), atol=1e-3)
    small = torch.rand(1, 5, 3, 3, generator=torch.Generator().manual_seed(0))   # sigma from (H, W) only
    want = ref_gaussian(small[0].permute(1, 2, 0).double().numpy(), 3 / 20)
    np.testing.assert_allclose(baseline_tensor(small, "blur")[0].permute(1, 2, 0).numpy(), want, atol=1e-5)
    with pytest.raises(ValueError):
        gaussian_blur(checker, 0.0)


def test_mean_and_zero_baselines(checker):
    m = baseline_image(checker, "mean")
    assert m.shape == checker.shape and m.dtype == np.uint8
    np.testing.assert_array_equal(m[7, 3], np.round(checker.reshape(-1, 3).mean(0)))
    assert (m == m[0, 0]).all() and not baseline_image(checker, "zero").any()
    np.testing.assert_array_equal(baseline_image(checker, "blur"), blur_image(checker))
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    mt = baseline_tensor(x, "mean")
    for b in range(2):
        for c in range(3):
            assert torch.all(mt[b, c] == x[b, c].mean())
    assert not baseline_tensor(x, "zero").any() and baseline_tensor(x, "zero").shape == x.shape
    for bad in ("gray", "Blur"):
        with pytest.raises(ValueError, match="blur, mean, zero"):
            baseline_image(checker, bad)
        with pytest.raises(ValueError, match="blur, mean, zero"):
            baseline_tensor(x, bad)
    assert BASELINES == ("blur", "mean", "zero")


def test_ranks_order_values_and_break_ties_at_random():
    v = np.array([[0.5, 2.0, -1.0], [3.0, 0.5, 0.5]])
    r = pixel_ranks(v, seed=3)
    assert r[1, 0] == 0 and r[0, 1] == 1 and r[0, 2] == 5 and sorted(r.ravel()) == list(range(6))
    assert set(r[v == 0.5]) == {2, 3, 4}
    flat = np.zeros((40, 40))
    ranks = pixel_ranks(flat, seed=0)
    top = ranks < 400                                            # the first quarter removed
    assert 0.4 < top[:20].mean() / top.mean() / 2 < 0.6           # spread, not the first ten rows
    assert not np.array_equal(ranks, pixel_ranks(flat, seed=1))
    np.testing.assert_array_equal(ranks, pixel_ranks(flat, seed=0))
    with pytest.raises(ValueError):
        pixel_ranks(np.array([1.0, np.nan]))


def test_step_schedules_closed_form():
    np.testing.assert_array_equal(step_counts(10, 4), [0, 2, 5, 8, 10])           # round(k·10/4), half to even
    np.testing.assert_array_equal(step_counts(10, 4, "floor"), [0, 2, 5, 7, 10])  # k·10 // 4
    np.testing.assert_array_equal(step_counts(128, 75, "floor"), [k * 128 // 75 for k in range(76)])
    np.testing.assert_array_equal(step_counts(7, 1), [0, 7])
    for bad in (0, -2):
        with pytest.raises(ValueError):
            step_counts(10, bad)
    with pytest.raises(ValueError):
        step_counts(10, 3, "ceil")  # type: ignore[arg-type]


def test_moved_masks_loop():
    ranks = torch.tensor([[3, 0], [1, 2]])
    got = moved_masks(ranks, torch.tensor([0, 1, 3, 4]))
    for s, c in enumerate([0, 1, 3, 4]):
        for i in range(2):
            for j in range(2):
                assert bool(got[s, i, j]) == (int(ranks[i, j]) < c)


def test_score_batches_any_batch_size():
    calls = []

    def score(i0, i1):
        calls.append((i0, i1))
        return torch.arange(i0, i1, dtype=torch.float32) ** 2

    for bs in (1, 3, 7, 20):
        calls.clear()
        np.testing.assert_array_equal(score_batches(score, 7, bs), np.arange(7) ** 2)
        assert calls[0][0] == 0 and calls[-1][1] == 7 and all(b - a <= bs for a, b in calls)
    assert score_batches(lambda a, b: np.ones(b - a), 5, 2).dtype == np.float64
    with pytest.raises(ValueError):
        score_batches(score, 3, 0)


def test_auc_closed_forms():
    x = np.linspace(0, 1, 11)
    assert auc(1 - x, x) == pytest.approx(0.5)
    assert auc(x ** 2, x) == pytest.approx(sum((x[i] ** 2 + x[i + 1] ** 2) / 2 * 0.1 for i in range(10)))
    assert auc(np.array([0.2, 0.6])) == pytest.approx(0.4)                  # default grid [0, 1]
    assert auc(np.array([1.0, 1.0, 0.0]), np.array([0.0, 0.8, 1.0])) == pytest.approx(0.9)   # uneven grid
    with pytest.raises(ValueError):
        auc(np.array([1.0]))
    with pytest.raises(ValueError):
        auc(np.ones(3), np.linspace(0, 1, 4))


# ------------------------------------------------------------------ the curves built on it
def test_image_deletion_default_blurs(tmp_path):
    """`vlx eval`'s default: deletion into the blurred image (planted top-left classifier)."""
    from vlx.evaluate import Deletion, pixel_curve
    from vlx.image import from_array
    from vlx.testing import planted_classifier
    from vlx.types import AttributionMap, ClassTarget

    assert Deletion().baseline == "blur"
    model = planted_classifier("top-left", size=32)
    px = np.full((32, 32, 3), 255, np.uint8)
    px[:16, :16] = 0                                           # black planted quadrant: blur lights its rim
    img = from_array(px)
    v = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    _, probs = pixel_curve(model, img, AttributionMap(v, v, "t", ClassTarget(0)), 0, "deletion", steps=4)
    want_blur = np.clip(ref_gaussian(px.astype(np.float64) / 255, 1.6), 0, 1) * 255
    p_blur = float(model.probabilities(model.to_input(from_array(want_blur.round().astype(np.uint8))))[0, 0])
    p_full = float(model.probabilities(model.to_input(img))[0, 0])
    assert probs[-1] == pytest.approx(p_blur, abs=1e-4) and abs(p_full - p_blur) > 0.05


def test_mllm_deletion_matches_a_loop_and_ties_are_random():
    from vlx.mllm.context import AnswerContext, AnswerMap
    from vlx.mllm.methods import perturbed_probabilities
    from vlx.mllm.metrics import deletion_insertion
    from vlx.testing.tiny_mllm import PlantedMLLM, planted_image

    ctx = AnswerContext(PlantedMLLM(), planted_image(64), "what colour has it?")
    flat = np.zeros((64, 64), np.float32)                      # a map of exact zeros: all ties
    flat[40:, :] = 1.0                                         # the bottom: first, in any order
    amap = AnswerMap((0,), "red", "test", flat, flat.ravel())
    dele, ins = deletion_insertion(ctx, amap, steps=4, baseline="mean", seed=5)
    img = ctx.inputs.image.pixels
    mean = img.reshape(-1, 3).mean(0).round().astype(np.uint8)
    order = np.lexsort((np.random.default_rng(5).permutation(flat.size), -flat.ravel()))
    views = []
    for k in range(5):
        a = img.copy().reshape(-1, 3)
        a[order[:round(k * flat.size / 4)]] = mean
        views.append(a.reshape(img.shape))
    want = perturbed_probabilities(ctx, views, [0])[:, 0]
    np.testing.assert_allclose(dele.details["curve"], want, atol=1e-6)
    assert dele.value == pytest.approx(float(np.trapezoid(want, dx=0.25)), abs=1e-6)
    assert ins.details["curve"][-1] == pytest.approx(want[0], abs=1e-6)
    # the order among tied pixels follows the seed (a raster order would ignore it)
    other, _ = deletion_insertion(ctx, amap, steps=4, baseline="mean", seed=6)
    assert max(abs(a - b) for a, b in zip(other.details["curve"], dele.details["curve"])) > 1e-3


def test_dtypes_edges_and_messages():
    """What each helper returns (dtype, empty cases) and says when misused."""
    rng = np.random.default_rng(3)
    f32 = rng.random((9, 11, 3)).astype(np.float32)
    assert gaussian_blur(f32, 1.5).dtype == np.float32                       # the input's float precision
    ints = (f32 * 100).astype(np.int32)
    got = gaussian_blur(ints, 1.5)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref_gaussian(ints, 1.5), atol=1e-9)
    for bad in (0, -1.0):
        with pytest.raises(ValueError, match=rf"^blur sigma must be > 0, got {bad}$"):
            gaussian_blur(f32, bad)
    px = (f32 * 255).astype(np.uint8)
    assert blur_image(px).dtype == np.uint8
    t32 = torch.from_numpy(f32).permute(2, 0, 1)[None]
    for kind in BASELINES:
        assert baseline_tensor(t32, kind).dtype == torch.float32
        assert baseline_tensor(t32.double(), kind).dtype == torch.float64
    with pytest.raises(ValueError, match=r"^unknown baseline 'grey'; choose one of "):
        baseline_tensor(t32, "grey")
    with pytest.raises(ValueError, match=r"^unknown baseline 'grey'; choose one of "):
        baseline_image(px, "grey")
    v = rng.random((4, 5))
    v[0, :3] = 1.0                                                           # ties
    assert pixel_ranks(v).dtype == np.int64 and np.array_equal(pixel_ranks(v), pixel_ranks(v, seed=0))
    bad_map = v.copy()
    bad_map[1, 1] = np.inf
    with pytest.raises(ValueError, match=r"^the map holds NaN or infinite values; check the attribution method\.$"):
        pixel_ranks(bad_map)
    assert step_counts(10, 3).dtype == np.int64 and step_counts(10, 3, "floor").dtype == np.int64
    with pytest.raises(ValueError, match=r"^steps must be >= 1, got 0$"):
        step_counts(10, 0)
    with pytest.raises(ValueError, match=r"^rounding must be 'round' or 'floor', got 'ceil'$"):
        step_counts(10, 2, "ceil")  # type: ignore[arg-type]
    empty = score_batches(lambda i, j: np.zeros(j - i), 0, 4)
    assert empty.dtype == np.float64 and empty.shape == (0,)
    out = score_batches(lambda i, j: np.arange(i, j, dtype=np.float32) / 3, 5, 2)
    assert out.dtype == np.float64 and np.array_equal(out, (np.arange(5, dtype=np.float32) / 3).astype(np.float64))
    with pytest.raises(ValueError, match=r"^batch_size must be >= 1, got 0$"):
        score_batches(lambda i, j: np.zeros(j - i), 3, 0)
    with pytest.raises(ValueError, match=r"^a curve needs at least two points$"):
        auc(np.array([0.5]))
    with pytest.raises(ValueError, match=r"^curve has 3 points but fractions has 2$"):
        auc(np.array([0.5, 0.4, 0.1]), np.array([0.0, 1.0]))


def test_blur_and_baseline_edge_cases(checker):
    """An explicit sigma is used as given; the zero baseline is black uint8; scores that still
    carry a graph are detached."""
    want = np.round(ref_gaussian(checker.astype(np.float64) / 255.0, 0.7) * 255)
    np.testing.assert_allclose(blur_image(checker, sigma=0.7).astype(np.float64), want, atol=1.0)
    assert np.abs(blur_image(checker, sigma=0.7).astype(int) - blur_image(checker).astype(int)).max() > 10
    zero = baseline_image(checker, "zero")
    assert zero.dtype == np.uint8 and zero.shape == checker.shape and not zero.any()
    w = torch.ones(3, requires_grad=True)
    out = score_batches(lambda i, j: w[i:j] * 2, 3, 2)
    assert out.dtype == np.float64 and np.array_equal(out, [2.0, 2.0, 2.0])
