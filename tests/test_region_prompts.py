"""SAM prompts from a map: smoothing, peaks, negative points and the box, against scipy / skimage
called as documented and farthest-point sampling written out in the test."""

from __future__ import annotations

import numpy as np
import pytest


def test_smooth_positive():
    from scipy.ndimage import gaussian_filter

    from vlx.regions.prompts import smooth_positive

    rng = np.random.default_rng(0)
    v = rng.normal(size=(10, 14))
    got = smooth_positive(v)                                         # sigma 0.3 px: not smoothed
    np.testing.assert_allclose(got, np.clip(v, 0, None) / np.clip(v, 0, None).max(), rtol=1e-12)
    v = rng.normal(size=(11, 14))                                    # sigma 0.33 px: smoothed
    want = gaussian_filter(np.clip(v, 0, None), 0.03 * 11)
    np.testing.assert_allclose(smooth_positive(v), want / want.max(), rtol=1e-12)
    want = gaussian_filter(np.clip(v, 0, None), 0.1 * 11)
    np.testing.assert_allclose(smooth_positive(v, 0.1), want / want.max(), rtol=1e-12)
    z = smooth_positive(-np.abs(v))
    assert z.shape == (11, 14) and not z.any()
    assert smooth_positive(np.ones((4, 4), np.float32)).dtype == np.float64


def test_peak_points():
    from skimage.feature import peak_local_max

    from vlx.regions.prompts import peak_points

    v = np.zeros((40, 50))
    v[10, 10], v[12, 13], v[30, 40], v[20, 25], v[35, 5] = 1.0, 0.9, 0.8, 0.6, 0.4
    got = peak_points(v)                                             # d = 4: (12, 13) is too close to (10, 10)
    np.testing.assert_array_equal(got, [[10, 10], [40, 30], [25, 20]])
    assert got.dtype == np.float64
    np.testing.assert_array_equal(peak_points(v, n=2), [[10, 10], [40, 30]])
    np.testing.assert_array_equal(peak_points(v, threshold_rel=0.7), [[10, 10], [40, 30]])
    np.testing.assert_array_equal(peak_points(v, min_distance_frac=0.05, n=5), [[10, 10], [13, 12], [40, 30],
                                                                               [25, 20]])
    rc = peak_local_max(v, min_distance=4, threshold_rel=0.5, num_peaks=3, exclude_border=False)
    np.testing.assert_array_equal(got, rc[:, ::-1])
    np.testing.assert_array_equal(peak_points(np.ones((5, 6))), [[0, 0]])   # no local maximum: the argmax
    # a plateau: skimage's peaks include one within d of the first argmax, so it is not added again
    p = np.zeros((20, 20))
    p[5, 5:8] = 1.0
    rc = peak_local_max(p, min_distance=2, threshold_rel=0.5, num_peaks=3, exclude_border=False)
    np.testing.assert_array_equal(peak_points(p), rc[:, ::-1])
    tiny = np.zeros((3, 3))
    tiny[0, 0], tiny[2, 2] = 1.0, 0.9                                # d = max(1, 0): both peaks
    np.testing.assert_array_equal(peak_points(tiny), [[0, 0], [2, 2]])


def _fps(cand, avoid, n):
    dist = np.array([min(np.hypot(*(c - a)) for a in avoid) if len(avoid) else np.inf for c in cand])
    out = []
    for _ in range(min(n, len(cand))):
        i = int(np.argmax(dist))
        out.append(cand[i])
        dist = np.minimum(dist, np.hypot(*(cand - cand[i]).T))
    return np.array(out)


def test_negative_points_farthest_first():
    from vlx.regions.prompts import negative_points

    v = np.ones((8, 10))
    v[0:3, 0:2] = 0.05
    v[7, 9] = 0.1                                                    # exactly low_rel: a candidate
    v[7, 0] = 0.11
    ys, xs = np.nonzero(v <= 0.1)
    cand = np.stack([xs, ys], 1).astype(float)
    avoid = np.array([[9.0, 0.0]])
    got = negative_points(v, avoid, n=3)
    np.testing.assert_array_equal(got, _fps(cand, avoid, 3))
    np.testing.assert_array_equal(got[0], [0, 2])                     # farthest from (9, 0)
    np.testing.assert_array_equal(got[1], [9, 7])
    assert len(negative_points(v, avoid, n=10)) == 7                  # fewer: only 7 low pixels
    assert negative_points(v, avoid, n=0).shape == (0, 2)
    assert negative_points(v, avoid, n=-1).shape == (0, 2)
    assert negative_points(np.ones((4, 4)), avoid).shape == (0, 2)
    np.testing.assert_array_equal(negative_points(v, np.zeros((0, 2)), n=2), _fps(cand, np.zeros((0, 2)), 2))
    np.testing.assert_array_equal(negative_points(v, avoid, n=2, low_rel=0.06), _fps(cand[:6], avoid, 2))
    # more than 4096 low pixels: a seeded subsample of 4096 candidates
    big = np.zeros((70, 70))
    ys, xs = np.nonzero(big <= 0.1)
    cand = np.stack([xs, ys], 1).astype(float)
    sub = cand[np.random.default_rng(3).choice(len(cand), 4096, replace=False)]
    avoid = np.array([[35.0, 35.0]])
    got = negative_points(big, avoid, n=3, seed=3)
    np.testing.assert_array_equal(got, _fps(sub, avoid, 3))
    assert not np.array_equal(got, _fps(cand[np.random.default_rng(0).choice(len(cand), 4096, replace=False)],
                                        avoid, 3))
    np.testing.assert_array_equal(negative_points(np.zeros((64, 64)), avoid, n=3), _fps(
        np.stack(np.nonzero(np.zeros((64, 64)) <= 0.1)[::-1], 1).astype(float), avoid, 3))   # 4096: all kept


def test_box_from_map():
    from vlx.regions.prompts import box_from_map

    assert box_from_map(np.zeros((5, 5))) is None
    v = np.zeros((10, 12))
    v[1:3, 1:4] = 0.6                                                # 6 px × 0.6 = 3.6
    v[6:9, 8:11] = 0.5                                               # 9 px × 0.5 = 4.5 (exactly at the threshold)
    v[0, 11] = 1.0                                                   # the maximum alone: 1.0
    assert box_from_map(v) == (8, 6, 11, 9)
    assert box_from_map(v, 0.55) == (1, 1, 4, 3)
    v[3, 4] = 0.6                                                    # joins the first blob diagonally: 4.2
    v[4, 5] = 0.6                                                    # 4.8 > 4.5
    assert box_from_map(v) == (1, 1, 6, 5)
    assert all(type(c) is int for c in box_from_map(v))


def test_map_prompts_passes_its_options():
    from vlx.regions.prompts import MapPrompts, box_from_map, map_prompts, negative_points, peak_points, smooth_positive

    empty = map_prompts(-np.ones((6, 6)))
    assert empty.positive.shape == (0, 2) and empty.negative.shape == (0, 2) and empty.box is None
    rng = np.random.default_rng(1)
    v = rng.random((30, 40)) ** 4
    opts = dict(n_positive=2, n_negative=5, min_distance_frac=0.2, peak_rel=0.3, low_rel=0.05, box_rel=0.4)
    got = map_prompts(v, **opts)
    s = smooth_positive(v)
    pos = peak_points(s, 2, 0.2, 0.3)
    np.testing.assert_array_equal(got.positive, pos)
    np.testing.assert_array_equal(got.negative, negative_points(s, pos, 5, 0.05))
    assert got.box == box_from_map(s, 0.4) and isinstance(got, MapPrompts)
    d = map_prompts(v)
    pos = peak_points(s, 3, 0.1, 0.5)
    np.testing.assert_array_equal(d.positive, pos)
    np.testing.assert_array_equal(d.negative, negative_points(s, pos, 3, 0.1))
    assert d.box == box_from_map(s, 0.5)
    with pytest.raises(Exception):
        MapPrompts(pos, pos, None).box = (0, 0, 1, 1)                # frozen
