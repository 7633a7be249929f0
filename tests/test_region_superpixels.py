"""Superpixel regions: skimage's SLIC and Felzenszwalb called as documented on the shrunk copy, the
options users pass, and the selection rule (fewest superpixels by mass, 8-connected parts) written again."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.image import from_array
from vlx.types import AttributionMap, ClassTarget

# -- superpixels: skimage called as documented, and the selection rule written again ---------------

def test_superpixel_labels_are_skimage_on_a_copy_at_most_320_px():
    from skimage.segmentation import felzenszwalb, slic
    from skimage.transform import resize

    from vlx.regions.superpixels import MAX_SIDE, superpixel_labels

    assert MAX_SIDE == 320
    rng = np.random.default_rng(4)
    small = (np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((8, 8, 1))) + rng.integers(0, 20, (48, 64, 3)))
    small = small.clip(0, 255).astype(np.uint8)
    got = superpixel_labels(small, "slic", 12)
    assert got.dtype == np.int32 and got.shape == (48, 64)
    np.testing.assert_array_equal(got, slic(small, n_segments=12, compactness=10.0, start_label=0, channel_axis=-1))
    got = superpixel_labels(small, "felzenszwalb", 12)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, felzenszwalb(small, scale=48 * 64 / 48.0, sigma=0.8, min_size=64,
                                                    channel_axis=-1))
    # 330 × 660: shrunk to 160 × 320 (round(330 / 2.0625) = 160), labelled, resized back by nearest
    big = np.kron(small[:, :, :], np.ones((7, 11, 1)))[:330, :660].astype(np.uint8)
    big = np.concatenate([big, big[:, :1].repeat(660 - big.shape[1], 1)], 1) if big.shape[1] < 660 else big
    assert big.shape == (330, 660, 3)
    shrunk = resize(big, (160, 320), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    want = resize(slic(shrunk, n_segments=20, compactness=10.0, start_label=0, channel_axis=-1), (330, 660),
                  order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    got = superpixel_labels(big, "slic", 20)
    assert got.dtype == np.int32 and got.shape == (330, 660)
    np.testing.assert_array_equal(got, want)
    fz = felzenszwalb(shrunk, scale=160 * 320 / 80.0, sigma=0.8, min_size=160 * 320 // 80, channel_axis=-1)
    want = resize(fz, (330, 660), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    np.testing.assert_array_equal(superpixel_labels(big, "felzenszwalb", 20), want)
    with pytest.raises(ValueError, match=r"^unknown superpixel algorithm 'quick'; use slic or felzenszwalb$"):
        superpixel_labels(small, "quick")


def test_superpixel_regions_options_are_checked():
    from vlx.regions.superpixels import FelzenszwalbRegions, SuperpixelRegions

    for bad in (0.0, -0.1, 1.01):
        with pytest.raises(ValueError, match=r"^coverage must be in \(0, 1\]$"):
            SuperpixelRegions(coverage=bad)
    with pytest.raises(ValueError, match=r"^unknown superpixel algorithm 'sam'; use slic or felzenszwalb$"):
        SuperpixelRegions(algorithm="sam")
    s = SuperpixelRegions()
    assert (s.n_segments, s.coverage, s.max_regions, s.min_area, s.algorithm) == (64, 0.5, 5, 0.005, "slic")
    f = FelzenszwalbRegions(n_segments=9, coverage=1.0, max_regions=2, min_area=0.1)
    assert (f.n_segments, f.coverage, f.max_regions, f.min_area, f.algorithm) == (9, 1.0, 2, 0.1, "felzenszwalb")
    assert SuperpixelRegions.name == "superpixels" and FelzenszwalbRegions.name == "felzenszwalb"


def _superpixel_reference(segs, values, coverage, max_regions, min_area):
    """The module docstring written again: the fewest superpixels by mass holding ``coverage`` of the
    positive attribution, split into 8-connected components (scipy), small ones dropped, by mass."""
    from scipy.ndimage import label

    pos = np.clip(values, 0, None).astype(float)
    total = pos.sum()
    if total <= 0:
        return []
    ids = np.unique(segs)
    mass = {int(s): pos[segs == s].sum() for s in ids}
    chosen, acc = [], 0.0
    for s in sorted(ids, key=lambda s: (-mass[int(s)], s)):
        if mass[int(s)] <= 0 or acc >= coverage * total - 1e-9:
            break
        chosen.append(s)
        acc += mass[int(s)]
    comps, n = label(np.isin(segs, chosen), structure=np.ones((3, 3)))
    out = []
    for c in range(1, n + 1):
        m = comps == c
        if m.mean() >= min_area:
            out.append((pos[m].sum() / total, m))
    out.sort(key=lambda t: -t[0])
    return out[:max_regions]


def test_superpixel_regions_match_the_reference(monkeypatch):
    import vlx.regions.superpixels as sp

    # planted labels: a 6 × 8 grid of 8 × 8 cells (ids in reading order), one cell split off diagonally
    segs = np.kron(np.arange(48).reshape(6, 8), np.ones((8, 8), int)).astype(np.int32)
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: segs)
    image = from_array(np.zeros((48, 64, 3), np.uint8))
    rng = np.random.default_rng(5)
    for trial in range(30):
        cell = rng.normal(size=(6, 8)) + (rng.random((6, 8)) < 0.3) * 2.0
        values = np.kron(cell, np.ones((8, 8))) + 0.01 * rng.normal(size=(48, 64))
        opts = dict(coverage=float(rng.choice([0.2, 0.5, 0.8, 1.0])), max_regions=int(rng.integers(1, 6)),
                    min_area=float(rng.choice([0.0, 1 / 48, 0.03])))
        got = sp.SuperpixelRegions(**opts).regions(image, AttributionMap(values, values, "t", ClassTarget(0)))
        want = _superpixel_reference(segs, values, **opts)
        assert len(got) == len(want), (trial, opts)
        for i, (r, (share, m)) in enumerate(zip(got, want)):
            np.testing.assert_array_equal(r.mask, m)
            assert r.id == i and r.source == "superpixel"
            assert r.attribution_mass == pytest.approx(share, rel=1e-9)
            assert r.area_fraction == pytest.approx(m.mean(), rel=1e-12)
            assert r.mean_attribution == pytest.approx(values[m].mean(), rel=1e-9)
            ys, xs = np.nonzero(m)
            assert tuple(r.bbox_xyxy) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


def test_superpixel_regions_boundaries(monkeypatch):
    import vlx.regions.superpixels as sp

    segs = np.kron(np.arange(16).reshape(4, 4), np.ones((4, 4), int)).astype(np.int32)   # 16 cells of 16 px
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: segs)
    image = from_array(np.zeros((16, 16, 3), np.uint8))

    def run(cells, **kw):
        v = np.kron(np.asarray(cells, float).reshape(4, 4), np.ones((4, 4)))
        return sp.SuperpixelRegions(**kw).regions(image, AttributionMap(v, v, "t", ClassTarget(0)))

    # masses 4, 3, 2, 1 in four corners (disconnected): coverage exactly 0.7 = (4 + 3) / 10 stops at two
    corners = [4, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1]
    assert [r.attribution_mass for r in run(corners, coverage=0.7)] == pytest.approx([0.4, 0.3])
    assert len(run(corners, coverage=0.71)) == 3
    assert len(run(corners, coverage=1.0)) == 4 and len(run(corners, coverage=1.0, max_regions=3)) == 3
    # zero-mass cells are never taken, even when coverage asks for all of it (ties keep label order)
    r = run(corners, coverage=1.0)
    assert sum(int(x.mask.sum()) for x in r) == 64 and [int(x.mask[0, 0]) for x in r] == [1, 0, 0, 0]
    # a region of exactly min_area (16 / 256) is kept, one just above is dropped
    assert len(run(corners, coverage=1.0, min_area=1 / 16)) == 4
    assert len(run(corners, coverage=1.0, min_area=1 / 16 + 1e-9)) == 0
    # diagonal neighbours join (8-connectivity); the order is by mass, not by position
    diag = [1, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    r = run(diag, coverage=1.0)
    assert len(r) == 1 and r[0].area_fraction == pytest.approx(2 / 16) and r[0].attribution_mass == pytest.approx(1.0)
    two = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]
    assert [x.attribution_mass for x in run(two, coverage=1.0)] == pytest.approx([0.75, 0.25])
    # a map with no positive part has no regions; a negative cell is never part of one
    assert run([-1] * 16) == [] and run([0] * 16) == []
    neg = [-1, 2, 0, 0] + [0] * 12
    r = run(neg, coverage=1.0)
    assert len(r) == 1 and not r[0].mask[:4, :4].any() and r[0].mean_attribution == pytest.approx(2.0)
    assert r[0].position and r[0].bbox_xyxy == (4, 0, 8, 4)


def test_felzenszwalb_min_size_is_at_least_4_px():
    """A 16 × 16 image with 64 segments asks for 1-px segments; the minimum size stays 4 px."""
    from skimage.segmentation import felzenszwalb

    from vlx.regions.superpixels import superpixel_labels

    px = np.random.default_rng(6).integers(0, 255, (16, 16, 3)).astype(np.uint8)
    want = felzenszwalb(px, scale=1.0, sigma=0.8, min_size=4, channel_axis=-1)
    np.testing.assert_array_equal(superpixel_labels(px, "felzenszwalb", 64), want)
    assert not np.array_equal(want, felzenszwalb(px, scale=1.0, sigma=0.8, min_size=5, channel_axis=-1))


# -- what regions() passes on, and the selection at its numeric edges ------------------------------

def _grid_segs(rows, cols, side):
    return np.kron(np.arange(rows * cols).reshape(rows, cols), np.ones((side, side), int)).astype(np.int32)


def test_superpixel_regions_segment_the_image_with_their_options(monkeypatch):
    import vlx.regions.superpixels as sp

    segs = _grid_segs(4, 4, 4)
    seen = []
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: seen.append((px, algorithm, n)) or segs)
    image = from_array(np.full((16, 16, 3), 7, np.uint8))
    v = np.kron(np.eye(4), np.ones((4, 4)))
    amap = AttributionMap(v, v, "t", ClassTarget(0))
    sp.SuperpixelRegions(n_segments=9, algorithm="felzenszwalb").regions(image, amap)
    sp.SuperpixelRegions().regions(image, amap)
    sp.FelzenszwalbRegions(n_segments=5).regions(image, amap)
    assert [(px is image.pixels, a, n) for px, a, n in seen] == [
        (True, "felzenszwalb", 9), (True, "slic", 64), (True, "felzenszwalb", 5)]
    f = sp.FelzenszwalbRegions()
    assert (f.n_segments, f.coverage, f.max_regions, f.min_area, f.algorithm) == (64, 0.5, 5, 0.005, "felzenszwalb")


def test_superpixel_regions_of_an_empty_map_segment_nothing(monkeypatch):
    import vlx.regions.superpixels as sp

    def boom(*a):
        raise AssertionError("an all-zero map needs no superpixels")

    monkeypatch.setattr(sp, "superpixel_labels", boom)
    image = from_array(np.zeros((8, 8, 3), np.uint8))
    for v in (np.zeros((8, 8)), -np.ones((8, 8))):
        assert sp.SuperpixelRegions().regions(image, AttributionMap(v, v, "t", ClassTarget(0))) == []


def test_superpixel_regions_small_and_float32_maps_match_the_reference(monkeypatch):
    """A map whose positive part sums to less than 1, and a float32 map: masses to 1e-9 of the
    float64 reference (float32 sums are off by ~1e-7)."""
    import vlx.regions.superpixels as sp

    segs = _grid_segs(6, 8, 8)
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: segs)
    image = from_array(np.zeros((48, 64, 3), np.uint8))
    rng = np.random.default_rng(7)
    for scale, dtype in [(1e-4, np.float64), (1.0, np.float32), (1e-4, np.float32)]:
        values = ((np.kron(rng.normal(size=(6, 8)), np.ones((8, 8))) + 0.3 * rng.normal(size=(48, 64)))
                  * scale).astype(dtype)
        assert 0 < np.clip(values, 0, None).astype(float).sum() <= 1 or scale == 1.0
        got = sp.SuperpixelRegions(coverage=0.6, max_regions=5, min_area=0.0).regions(
            image, AttributionMap(values, values, "t", ClassTarget(0)))
        want = _superpixel_reference(segs, values, 0.6, 5, 0.0)
        assert len(got) == len(want) >= 2
        for r, (share, m) in zip(got, want):
            np.testing.assert_array_equal(r.mask, m)
            assert r.attribution_mass == pytest.approx(share, rel=1e-9, abs=0)


def test_superpixel_regions_equal_masses_are_taken_in_label_order(monkeypatch):
    """48 cells, masses 2 and 1 in alternate columns; coverage 0.75 takes every 2 and the first six 1s
    by label (NumPy's default sort does not keep the order of equal keys)."""
    import vlx.regions.superpixels as sp

    segs = _grid_segs(6, 8, 4)
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: segs)
    image = from_array(np.zeros((24, 32, 3), np.uint8))
    cells = np.where(np.arange(48) % 2 == 0, 2.0, 1.0).reshape(6, 8)
    v = np.kron(cells, np.ones((4, 4)))
    got = sp.SuperpixelRegions(coverage=0.75, max_regions=5, min_area=0.0).regions(
        image, AttributionMap(v, v, "t", ClassTarget(0)))
    taken = np.isin(segs, [k for k in range(48) if k % 2 == 0] + [1, 3, 5, 7, 9, 11])
    assert len(got) == 1
    np.testing.assert_array_equal(got[0].mask, taken)
    assert got[0].attribution_mass == pytest.approx(54 / 72)


def test_superpixel_regions_never_take_zero_mass_cells_when_rounding_falls_short(monkeypatch):
    """One pixel of 1e16 and sixteen cells of mass 1: the running sum of cell masses stays at 1e16
    (each +1 is rounded away) while the pixel sum is 1e16 + 16, so coverage 1 is never reached in
    float64; the loop still stops at the first cell with no mass."""
    import vlx.regions.superpixels as sp

    segs = _grid_segs(6, 6, 4)                      # 36 cells of 16 px
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: segs)
    image = from_array(np.zeros((24, 24, 3), np.uint8))
    v = np.zeros((24, 24))
    v[0, 0] = 1e16
    ones = [k for k in range(36) if k % 2 == 1 and k < 33]        # 16 cells, 1 / 16 per pixel
    for k in ones:
        v[segs == k] = 1 / 16
    assert float(np.clip(v, 0, None).sum()) == 1e16 + 16
    got = sp.SuperpixelRegions(coverage=1.0, max_regions=50, min_area=0.0).regions(
        image, AttributionMap(v, v, "t", ClassTarget(0)))
    union = np.zeros((24, 24), bool)
    for r in got:
        union |= r.mask
    np.testing.assert_array_equal(union, np.isin(segs, [0] + ones))


def test_superpixel_functions_default_to_64_segments_and_compactness_10():
    from skimage.segmentation import felzenszwalb, slic

    from vlx.regions.superpixels import felzenszwalb_segments, slic_segments, superpixel_labels

    rng = np.random.default_rng(0)
    px = np.kron(rng.integers(0, 255, (15, 15, 3)), np.ones((4, 4, 1))).astype(np.uint8)     # 60 × 60
    want = slic(px, n_segments=64, compactness=10.0, start_label=0, channel_axis=-1)
    np.testing.assert_array_equal(superpixel_labels(px), want)
    np.testing.assert_array_equal(slic_segments(px), want)
    assert not np.array_equal(want, slic(px, n_segments=65, compactness=10.0, start_label=0, channel_axis=-1))
    fz = felzenszwalb(px, scale=60 * 60 / 256.0, sigma=0.8, min_size=14, channel_axis=-1)
    np.testing.assert_array_equal(felzenszwalb_segments(px), fz)


def test_felzenszwalb_min_size_is_rounded_down():
    """48 × 64 px with 10 segments: the minimum size is 3072 // 40 = 76 px, not 76.8."""
    from skimage.segmentation import felzenszwalb

    from vlx.regions.superpixels import superpixel_labels

    rng = np.random.default_rng(9)
    px = rng.integers(0, 255, (48, 64, 3)).astype(np.uint8)
    want = felzenszwalb(px, scale=3072 / 40.0, sigma=0.8, min_size=76, channel_axis=-1)
    np.testing.assert_array_equal(superpixel_labels(px, "felzenszwalb", 10), want)


def test_superpixels_of_a_thin_image_keep_one_row():
    """2 × 700 px shrinks to 1 × 320 (round(2 * 320 / 700) = 1): labelled there, then stretched back."""
    from skimage.segmentation import felzenszwalb, slic
    from skimage.transform import resize

    from vlx.regions.superpixels import superpixel_labels

    rng = np.random.default_rng(10)
    px = np.kron(rng.integers(0, 255, (2, 35, 3)), np.ones((1, 20, 1))).astype(np.uint8)
    px[1] = 255 - px[1]
    small = resize(px, (1, 320), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    back = lambda lab: resize(lab, (2, 700), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)  # noqa: E731
    want = back(slic(small, n_segments=8, compactness=10.0, start_label=0, channel_axis=-1))
    np.testing.assert_array_equal(superpixel_labels(px, "slic", 8), want)
    want = back(felzenszwalb(small, scale=320 / 32.0, sigma=0.8, min_size=10, channel_axis=-1))
    np.testing.assert_array_equal(superpixel_labels(px, "felzenszwalb", 8), want)
    # and standing up: 700 × 2 shrinks to 320 × 1
    tall = np.ascontiguousarray(px.transpose(1, 0, 2))
    small = resize(tall, (320, 1), anti_aliasing=True, preserve_range=True).astype(np.uint8)
    back = lambda lab: resize(lab, (700, 2), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)  # noqa: E731
    want = back(slic(small, n_segments=8, compactness=10.0, start_label=0, channel_axis=-1))
    np.testing.assert_array_equal(superpixel_labels(tall, "slic", 8), want)
    want = back(felzenszwalb(small, scale=320 / 32.0, sigma=0.8, min_size=10, channel_axis=-1))
    np.testing.assert_array_equal(superpixel_labels(tall, "felzenszwalb", 8), want)


def test_superpixel_coverage_reached_exactly_at_the_slack():
    """Cell masses 1 - 1e-9, then two of (1 + 1e-9) / 2: total 2.0 exactly, and coverage 0.5 asks for
    1 - 1e-9 after the slack, which the first cell holds exactly: one cell, not two."""
    import vlx.regions.superpixels as sp

    segs = _grid_segs(2, 2, 1)
    m1 = 1.0 - 1e-9
    m2 = (2.0 - m1) / 2
    v = np.array([[m1, 0.0], [m2, m2]])
    assert float(v.sum()) == 2.0 and 0.5 * 2.0 - 1e-9 == m1
    orig = sp.superpixel_labels
    try:
        sp.superpixel_labels = lambda px, algorithm, n: segs
        got = sp.SuperpixelRegions(coverage=0.5, min_area=0.0).regions(
            from_array(np.zeros((2, 2, 3), np.uint8)), AttributionMap(v, v, "t", ClassTarget(0)))
    finally:
        sp.superpixel_labels = orig
    assert len(got) == 1 and got[0].mask.tolist() == [[True, False], [False, False]]


def test_slic_segments_pass_the_compactness():
    from skimage.segmentation import slic

    from vlx.regions.superpixels import slic_segments

    rng = np.random.default_rng(1)
    px = np.kron(rng.integers(0, 255, (15, 15, 3)), np.ones((4, 4, 1))).astype(np.uint8)     # 60 × 60
    want = slic(px, n_segments=64, compactness=40.0, start_label=0, channel_axis=-1)
    np.testing.assert_array_equal(slic_segments(px, compactness=40.0), want)
    assert not np.array_equal(want, slic(px, n_segments=64, compactness=10.0, start_label=0, channel_axis=-1))


def test_superpixel_region_position_is_the_centroid_of_its_positive_mass(monkeypatch):
    """Segment 1 covers columns 4..15; its positive mass sits in the bottom-right corner, so the region
    is placed there (its unweighted centre would read "centre")."""
    import vlx.regions.superpixels as sp

    segs = np.zeros((16, 16), np.int32)
    segs[:, 4:] = 1
    monkeypatch.setattr(sp, "superpixel_labels", lambda px, algorithm, n: segs)
    v = np.zeros((16, 16))
    v[:, 4:] = 1e-3
    v[13:, 13:] = 50.0
    image = from_array(np.full((16, 16, 3), 7, np.uint8))
    (r,) = sp.SuperpixelRegions(coverage=0.5).regions(image, AttributionMap(v, v, "t", ClassTarget(0)))
    assert r.mask[:, 4:].all() and not r.mask[:, :4].any()
    assert r.position == "bottom-right" and r.source == "superpixel"
