"""Region-refined maps and the segmenter / refiner factories: segment means and partitions on
hand-made labels and masks, the options users type, and their one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.image import from_array
from vlx.types import AttributionMap, ClassTarget


def test_segment_mean_by_hand():
    from vlx.regions.refine import segment_mean

    labels = np.array([[0, 0, 3], [3, 5, 5]])                    # labels 1, 2, 4 unused
    v = np.array([[1.0, 3.0, -2.0], [4.0, 0.5, 1.5]], np.float32)
    got = segment_mean(v, labels)
    assert got.dtype == np.float32 and got.shape == (2, 3)
    np.testing.assert_array_equal(got, np.array([[2.0, 2.0, 1.0], [1.0, 1.0, 1.0]], np.float32))
    big = np.array([[1e8, 1.0, 1.0, 1.0]], np.float32)           # float64 sums: 1e8 + 3 then / 4
    assert segment_mean(big, np.zeros((1, 4), int))[0, 0] == np.float32((1e8 + 3) / 4)


def test_mask_partition_smallest_mask_wins_and_uncovered_parts_split():
    from vlx.regions.refine import mask_partition

    m = np.zeros((3, 6, 6), bool)
    m[0, :3, :3] = True                                          # 9 px
    m[1, :, :4] = True                                           # 24 px: the largest, label 0
    m[2, 0, 0] = True                                            # 1 px: wins over both
    part = mask_partition(m, (6, 6))
    want = np.full((6, 6), -1)
    want[:, :4] = 0
    want[:3, :3] = 1
    want[0, 0] = 2
    want[:, 4:] = 3                                              # one uncovered component: label M + 0
    np.testing.assert_array_equal(part, want)
    assert part.dtype == np.int32
    # uncovered pixels touching only diagonally are separate segments (4-connectivity)
    d = np.ones((1, 3, 3), bool)
    d[0, 0, 0] = d[0, 1, 1] = False
    part = mask_partition(d, (3, 3))
    assert part[0, 0] != part[1, 1] and {int(part[0, 0]), int(part[1, 1])} == {1, 2}
    assert (part[d[0]] == 0).all()
    # equal sizes keep the given order: the later mask overwrites the earlier one
    e = np.zeros((2, 2, 2), bool)
    e[0, 0] = True
    e[1, :, 0] = True
    np.testing.assert_array_equal(mask_partition(e, (2, 2)), [[1, 0], [1, 2]])
    np.testing.assert_array_equal(mask_partition(np.zeros((0, 2, 3), bool), (2, 3)), np.zeros((2, 3)))


def test_refine_map_and_refiner():
    from vlx.regions.refine import Refiner, refine_map
    from vlx.regions.superpixels import superpixel_labels

    v = np.arange(12, dtype=np.float32).reshape(3, 4)
    amap = AttributionMap(v, v * 2, "m", ClassTarget(1))
    with pytest.raises(ValueError, match=r"^labels \(2, 4\) and map \(3, 4\) differ in shape$"):
        refine_map(amap, np.zeros((2, 4), int))
    out = refine_map(amap, np.zeros((3, 4), int))
    assert (out.values == 5.5).all() and out.raw is amap.raw and out.method == "m" and out.target == amap.target
    with pytest.raises(ValueError, match=r"^unknown refinement 'slic'; use none, superpixels, felzenszwalb or sam$"):
        Refiner("slic")
    with pytest.raises(ValueError, match=r"^refine 'sam' needs a SAM segmenter \(e\.g\. --segmenter hf:<SAM id or "
                                         r"folder>\)$"):
        Refiner("sam")
    assert Refiner().kind == "superpixels" and Refiner().n_segments == 96 and Refiner().sam is None
    rng = np.random.default_rng(0)
    px = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    image = from_array(px)
    np.testing.assert_array_equal(Refiner("superpixels", n_segments=7).labels(image), superpixel_labels(px, "slic", 7))
    np.testing.assert_array_equal(Refiner("felzenszwalb", n_segments=7).labels(image),
                                  superpixel_labels(px, "felzenszwalb", 7))
    assert not np.array_equal(superpixel_labels(px, "slic", 7), superpixel_labels(px, "felzenszwalb", 7))

    class Masks:
        def automatic(self, img):
            assert img is image                                      # the image being refined
            m = np.zeros((1, 24, 32), bool)
            m[0, :12] = True
            return m, np.ones(1)

    sam = Refiner("sam", sam=Masks())
    lab = sam.labels(image)
    np.testing.assert_array_equal(lab, np.repeat([0, 1], 12)[:, None].repeat(32, 1))
    vv = rng.random((24, 32)).astype(np.float32)
    big = AttributionMap(vv, vv, "m", ClassTarget(0))
    r = sam.refine(image, big)
    assert r.values[0, 0] == pytest.approx(vv[:12].mean(), rel=1e-6) and r.values[-1, -1] == pytest.approx(vv[12:].mean(), rel=1e-6)
    assert Refiner("none").refine(image, big) is big


def test_make_segmenter_and_make_refiner():
    import vlx.regions.sam as sam_mod
    from vlx.errors import UsageError
    from vlx.regions.factory import SEGMENTER_SPECS, make_refiner, make_segmenter
    from vlx.regions.refine import Refiner
    from vlx.regions.superpixels import FelzenszwalbRegions, SuperpixelRegions

    s = make_segmenter("superpixels", coverage=0.3, n_segments=10, max_regions=2)
    assert type(s) is SuperpixelRegions and (s.coverage, s.n_segments, s.max_regions) == (0.3, 10, 2)
    assert make_segmenter("superpixels").coverage == 0.5
    f = make_segmenter("felzenszwalb", coverage=0.7)
    assert type(f) is FelzenszwalbRegions and f.coverage == 0.7
    with pytest.raises(UsageError, match=r"^segmenter 'sam' needs a model: use --segmenter hf:<SAM id or folder> "
                                         r"or sam:vit_b=/path/to/checkpoint\.pth\.$"):
        make_segmenter("sam")
    seen = []
    fake = object()
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(sam_mod, "load_segmenter", lambda model, device: seen.append((model, device)) or fake)
        for spec in ("hf:some/sam", "sam:vit_b=/x.pth"):
            r = make_segmenter(spec, coverage=0.4, device="meta", max_regions=3)
            assert isinstance(r, sam_mod.SamRegions) and r.segmenter is fake
            assert (r.coverage, r.max_regions) == (0.4, 3)
        assert seen == [("hf:some/sam", "meta"), ("sam:vit_b=/x.pth", "meta")]
        make_segmenter("hf:other")
        assert seen[-1] == ("hf:other", "cpu")                       # the default device
    finally:
        mp.undo()
    r = make_segmenter("sam", model=fake, coverage=0.6, device="cpu")
    assert isinstance(r, sam_mod.SamRegions) and r.segmenter is fake and r.coverage == 0.6
    assert set(SEGMENTER_SPECS) == {"superpixels", "felzenszwalb", "hf:<SAM id or folder>",
                                    "sam:<vit_b|vit_l|vit_h>=<ckpt.pth>"}
    for kind in ("none", "superpixels", "felzenszwalb"):
        ref = make_refiner(kind)
        assert isinstance(ref, Refiner) and ref.kind == kind and ref.sam is None
    assert make_refiner("superpixels", r).sam is None
    ref = make_refiner("sam", r)
    assert ref.kind == "sam" and ref.sam is r
    with pytest.raises(UsageError, match=r"^unknown refinement 'slic'; choose none, superpixels, felzenszwalb or sam\.$"):
        make_refiner("slic")
    with pytest.raises(UsageError, match=r"^--refine sam needs a SAM segmenter: add --segmenter hf:<SAM id or folder> "
                                         r"or sam:vit_b=/path/to/checkpoint\.pth\.$"):
        make_refiner("sam", make_segmenter("superpixels"))
    with pytest.raises(UsageError, match="needs a SAM segmenter"):
        make_refiner("sam")


def test_registered_sam_with_a_model_gets_the_device_and_options(monkeypatch):
    """``make_segmenter("sam", model=...)`` builds the registered SAM class with the coverage, the
    device and the options as given (a recording stand-in replaces the class)."""
    from vlx.regions.factory import SEGMENTERS, make_segmenter

    seen: dict = {}

    class Recorder:
        def __init__(self, **kw):
            seen.update(kw)

    real_get = SEGMENTERS.get
    monkeypatch.setattr(SEGMENTERS, "get", lambda name: Recorder if name == "sam" else real_get(name))
    assert isinstance(make_segmenter("sam", coverage=0.3, device="cuda:1", model="m", points=4), Recorder)
    assert seen == {"coverage": 0.3, "device": "cuda:1", "model": "m", "points": 4}


def test_segment_mean_of_a_one_pixel_segment_is_its_value():
    from vlx.regions.refine import segment_mean

    values = np.array([[2.0, 4.0, 7.0]], np.float32)
    labels = np.array([[0, 0, 1]])                         # segment 1 is a single pixel
    np.testing.assert_array_equal(segment_mean(values, labels), [[3.0, 3.0, 7.0]])


def test_mask_partition_breaks_size_ties_by_mask_order():
    """40 masks of two sizes (3 and 2 pixels, alternating), all covering pixel (0, 0), each with
    pixels of its own: the largest are painted first, and among equal sizes the earlier mask first
    (a stable order; numpy's default sort is not stable on these keys). A pixel's label is its
    mask's place in that order."""
    from vlx.regions.refine import mask_partition

    shape = (4, 30)
    masks = np.zeros((40, *shape), bool)
    free = iter(range(1, shape[0] * shape[1]))
    for i in range(40):
        masks[i, 0, 0] = True
        for _ in range(2 if i % 2 == 0 else 1):
            masks[i].flat[next(free)] = True
    order = sorted(range(40), key=lambda i: (-int(masks[i].sum()), i))   # largest first, stable
    want = np.full(shape, -1)
    for k, i in enumerate(order):
        want[masks[i]] = k
    out = mask_partition(masks, shape)
    np.testing.assert_array_equal(out[want >= 0], want[want >= 0])
    assert out[0, 0] == 39
