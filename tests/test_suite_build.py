"""The localisation suite's parts without the real classifier (vlx/evaluate/suite.py): the
composite re-implemented in the test from the steps the module docstring states, footprints by
hand, and the build/cache loop driven by a scripted 1000-class model that recognises exactly the
candidates it is told to (composites replaced by tiny numbered pictures), with every manifest
record, file and message written out by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

import vlx.evaluate.suite as S
from vlx.errors import UsageError
from vlx.evaluate.suite import BACKGROUNDS, CANVAS, OBJECTS, SuiteObject, build_suite, compose, footprint, source_image


# ---- compose, re-implemented ----------------------------------------------------------------

def ref_background(bg: str, rng: np.random.Generator) -> np.ndarray:
    """Step 2 of the module docstring: a random square crop, resized, tinted in float32, maybe mirrored."""
    src, crop, tint = BACKGROUNDS[bg]
    a = source_image(src)
    if crop is not None:
        a = a[crop[1]:crop[3], crop[0]:crop[2]]
    h, w = a.shape[:2]
    side = int(rng.uniform(0.5, 1.0) * min(h, w))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    back = np.asarray(Image.fromarray(a[y:y + side, x:x + side]).resize((320, 320), Image.Resampling.LANCZOS))
    back = np.clip(back.astype(np.float32) * np.array(tint, np.float32), 0, 255).astype(np.uint8)
    if rng.random() < 0.5:
        back = back[:, ::-1]
    return back


def ref_compose(k: int, seed: int):
    """Steps 1-4 of the module docstring, written out again with numpy and PIL."""
    obj = OBJECTS[k % 6]
    rng = np.random.default_rng([seed, k])
    names = sorted(BACKGROUNDS)
    bg = names[int(rng.integers(8))]
    canvas = ref_background(bg, rng).copy()
    cx0, cy0, cx1, cy1 = obj.crop_xyxy
    patch = source_image(obj.source)[cy0:cy1, cx0:cx1]
    ph, pw = patch.shape[:2]
    area = rng.uniform(0.08, 0.35) * 320 * 320
    scale = min(np.sqrt(area / (ph * pw)), 0.9 * 320 / max(ph, pw))
    w, h = max(8, round(pw * scale)), max(8, round(ph * scale))
    resized = np.asarray(Image.fromarray(patch).resize((w, h), Image.Resampling.LANCZOS))
    fp_im = Image.new("L", (w, h), 0)
    if obj.shape == "ellipse":
        ImageDraw.Draw(fp_im).ellipse((0, 0, w - 1, h - 1), fill=1)
        fp = np.asarray(fp_im) > 0
    elif obj.shape == "rect":
        fp = np.ones((h, w), bool)
    else:
        ImageDraw.Draw(fp_im).polygon([((px - cx0) * w / (cx1 - cx0), (py - cy0) * h / (cy1 - cy0))
                                       for px, py in obj.shape], fill=1)
        fp = np.asarray(fp_im) > 0
    if rng.random() < 0.5:
        resized, fp = resized[:, ::-1], fp[:, ::-1]
    ox, oy = int(rng.integers(0, 320 - w + 1)), int(rng.integers(0, 320 - h + 1))
    mask = np.zeros((320, 320), bool)
    mask[oy:oy + h, ox:ox + w] = fp
    canvas[mask] = resized[fp]
    ys, xs = np.nonzero(mask)
    return obj, bg, canvas, mask, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)


@pytest.mark.parametrize("k, seed", [(0, 0), (3, 0), (4, 0), (4, 11), (7, 2), (11, 5), (14, 3)])
def test_compose_matches_the_steps_written_out(k, seed):
    obj, bg, pixels, mask, box = ref_compose(k, seed)
    c = compose(k, seed)
    assert c.candidate == k and c.obj == obj and c.background == bg
    assert np.array_equal(c.mask, mask) and c.box_xyxy == box
    assert all(type(v) is int for v in c.box_xyxy)
    assert c.pixels.dtype == np.uint8 and c.pixels.flags.c_contiguous
    assert np.array_equal(c.pixels, pixels)


@pytest.mark.parametrize("bg", sorted(BACKGROUNDS))
def test_backgrounds_are_tinted_in_float32(bg):
    """Every background for two seeds; brick's 0.58 tint truncates differently in float64 (e.g. 50 * 0.58)."""
    for seed in (0, 1):
        want = ref_background(bg, np.random.default_rng(seed))
        assert np.array_equal(S._background(bg, np.random.default_rng(seed)), want)


def test_compose_objects_cycle_and_bad_candidate():
    assert [compose(k, 9).obj.name for k in (0, 5, 6, 13)] == ["cat", "pagoda", "cat", "espresso"]
    with pytest.raises(ValueError, match=r"^candidate must be >= 0, got -1$"):
        compose(-1)
    assert np.array_equal(compose(2).pixels, compose(2, seed=0).pixels)            # the default seed is 0


def test_compose_caps_the_long_side_and_floors_the_short_one(monkeypatch):
    """A sliver 512 x 4 px: its patch is scaled so the long side is 0.9 of the canvas (288 px),
    and the short side is kept at least 8 px."""
    sliver = SuiteObject("sliver", "astronaut", (0, 100, 512, 104), (1,))
    monkeypatch.setattr(S, "OBJECTS", (sliver,) * 6)
    for k in range(3):
        c = compose(k, 0)
        x0, y0, x1, y1 = c.box_xyxy
        assert (x1 - x0, y1 - y0) == (288, 8) and c.mask.sum() == 288 * 8
    upright = SuiteObject("upright", "astronaut", (100, 0, 104, 512), (1,))
    monkeypatch.setattr(S, "OBJECTS", (upright,) * 6)
    x0, y0, x1, y1 = compose(0, 0).box_xyxy
    assert (x1 - x0, y1 - y0) == (8, 288)


def test_compose_leaves_the_cached_source_untouched():
    before = source_image("brick").copy()
    for k in range(8):
        compose(k, 1)
    assert np.array_equal(source_image("brick"), before)


# ---- footprints and sources -----------------------------------------------------------------

def test_footprints_by_hand():
    rect = SuiteObject("r", "x", (0, 0, 10, 10), ())
    assert footprint(rect, (7, 5)).shape == (5, 7) and footprint(rect, (7, 5)).all()
    # a polygon in source pixels, the crop at (10, 20): x scales by 2, y by 4
    poly = SuiteObject("p", "x", (10, 20, 20, 30), (), ((12, 22), (18, 22), (18, 25), (12, 25)))
    fp = footprint(poly, (20, 40))
    want = np.zeros((40, 20), bool)
    want[8:21, 4:17] = True                     # (4, 8) to (16, 20), edges included
    assert fp.dtype == bool and np.array_equal(fp, want)
    ell = SuiteObject("e", "x", (0, 0, 10, 10), (), "ellipse")
    fp = footprint(ell, (21, 11))
    assert fp.shape == (11, 21) and fp[5, 0] and fp[5, 20] and fp[0, 10] and fp[10, 10]   # touches each side
    assert not fp[0, 0] and not fp[10, 20] and not fp[0, 20] and not fp[10, 0]            # not the corners
    assert np.array_equal(fp, fp[:, ::-1]) and np.array_equal(fp, fp[::-1])                # centred in the patch


def test_source_images():
    """Read afresh (the cache cleared), so the sources table itself is what is checked."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    source_image.cache_clear()

    moon = source_image("moon")
    assert moon.shape == (512, 512, 3) and moon.dtype == np.uint8
    assert np.array_equal(moon[..., 0], data.moon()) and np.array_equal(moon[..., 2], data.moon())
    assert np.array_equal(source_image("chelsea"), data.chelsea())
    assert np.array_equal(source_image("motorcycle"), data.stereo_motorcycle()[0])
    china = source_image("china")
    assert china.shape == (427, 640, 3) and china.flags.c_contiguous
    assert np.array_equal(china, load_sample_images().images[0])          # china.jpg, not flower.jpg


def test_cache_dir_and_slug(monkeypatch, tmp_path):
    monkeypatch.setenv("VLX_CACHE", str(tmp_path))
    assert S.cache_dir() == tmp_path / "suites"
    assert S._slug("hf:org/model x.v2-a_b") == "hf_org_model_x.v2-a_b"


# ---- build_suite with a scripted model ------------------------------------------------------

class Scripted:
    """1000 labels; recognises candidate ``k`` (read from its tiny numbered picture) when
    ``k in accept``: logit 5 on the object's first accepted class, else on class 0."""

    def __init__(self, accept, name="scripted/m 1"):
        self.labels = [f"c{i}" for i in range(1000)]
        self.name, self.accept, self.seen = name, set(accept), []

    def to_input(self, pixels):
        return torch.from_numpy(np.asarray(pixels).copy())

    def logits(self, x):
        k = int(x[0, 0, 0]) + 256 * int(x[0, 0, 1])
        self.seen.append(k)
        out = torch.zeros(1, 1000, dtype=torch.float16)     # a half-precision model
        out[0, OBJECTS[k % 6].accepted[0] if k in self.accept else 0] = 5.0
        return out

    def label(self, i):
        return self.labels[i]


P5 = float(np.exp(5) / (np.exp(5) + 999))      # the softmax of one logit 5 among 999 zeros (0.1293...)


def tiny_compose(k, seed=0):
    px = np.zeros((6, 5, 3), np.uint8)
    px[..., 0], px[..., 1], px[..., 2] = k % 256, k // 256, seed
    mask = np.zeros((6, 5), bool)
    mask[1:4, 2:4] = True
    return S.Composite(k, OBJECTS[k % 6], f"bg{k}", px, mask, (2, 1, 4, 4))


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(S, "compose", tiny_compose)


def test_build_records_files_and_items(tiny, tmp_path):
    model = Scripted({1, 2, 4})
    suite = build_suite(model, 2, seed=3, folder=tmp_path)
    where = tmp_path / "localisation-v1" / "seed3-scripted_m_1"
    assert suite.folder == where and model.seen == [0, 1, 2]
    assert (suite.name, suite.version, suite.seed, suite.model, suite.attempts) == (
        "localisation", "localisation-v1", 3, "scripted/m 1", 3)
    m = json.loads((where / "manifest.json").read_text())
    rec = lambda k, top: {"candidate": k, "object": OBJECTS[k % 6].name, "background": f"bg{k}", "predicted": top,  # noqa: E731
                          "label": f"c{top}", "probability": pytest.approx(P5, rel=1e-6)}  # in float32, not half
    assert m == {"suite": "localisation", "version": "localisation-v1", "seed": 3, "model": "scripted/m 1",
                 "canvas": 320, "next_candidate": 3,
                 "items": [{**rec(1, 967), "id": "item_0000", "box_xyxy": [2, 1, 4, 4], "accepted": [967, 968, 504]},
                           {**rec(2, 812), "id": "item_0001", "box_xyxy": [2, 1, 4, 4], "accepted": [812]}],
                 "rejected": [rec(0, 0)]}
    assert sorted(p.name for p in where.iterdir()) == ["item_0000.png", "item_0000_mask.png", "item_0001.png",
                                                       "item_0001_mask.png", "manifest.json"]
    assert np.unique(np.asarray(Image.open(where / "item_0001_mask.png"))).tolist() == [0, 255]
    a, b = suite.items
    assert (a.id, a.object, a.background, a.target, a.label, a.accepted, a.box_xyxy) == (
        "item_0000", "espresso", "bg1", 967, "c967", (967, 968, 504), (2, 1, 4, 4))
    assert a.probability == pytest.approx(P5, rel=1e-6) and type(a.probability) is float   # half: off by ~1e-4 and type(a.target) is int
    assert np.array_equal(b.image.pixels, tiny_compose(2, 3).pixels) and b.image.pixels.dtype == np.uint8
    assert np.array_equal(b.mask, tiny_compose(2).mask) and b.mask.dtype == bool
    assert (b.image.path, b.image.id) == (str(where / "item_0001.png"), "item_0001")


def test_build_extends_and_reads_back_the_cache(tiny, tmp_path):
    first = Scripted({1, 2, 4, 5})
    build_suite(first, 1, seed=0, folder=tmp_path)
    assert first.seen == [0, 1]
    more = Scripted({1, 2, 4, 5})
    suite = build_suite(more, 3, seed=0, folder=tmp_path)
    assert more.seen == [2, 3, 4] and [it.id for it in suite.items] == ["item_0000", "item_0001", "item_0002"]
    assert [it.target for it in suite.items] == [967, 812, 665] and suite.attempts == 5
    again = Scripted(set())                                 # the cache answers: no model call
    short = build_suite(again, 2, seed=0, folder=tmp_path)
    assert again.seen == [] and short.attempts == 3 and len(short.items) == 2
    assert np.array_equal(short.items[1].image.pixels, suite.items[1].image.pixels)
    assert not (tmp_path / "localisation-v1" / "seed0-scripted_m_1" / "manifest.json.tmp").exists()


def test_build_limits_and_messages(tiny, tmp_path):
    never = Scripted(set())
    with pytest.raises(UsageError, match=r"^only 0 of 2 suite items were recognised by 'scripted/m 1' in 90 tries; "
                                         r"use a smaller --limit\.$"):
        build_suite(never, 2, folder=tmp_path)            # 20 * 2 + 50 candidates by default
    assert never.seen == list(range(90))
    some = Scripted({0, 7})
    with pytest.raises(UsageError, match=r"^only 1 of 2 suite items .* in 5 tries"):
        build_suite(some, 2, seed=1, folder=tmp_path, max_attempts=5)
    assert some.seen == [0, 1, 2, 3, 4]
    assert build_suite(Scripted({0, 7}), 1, seed=1, folder=tmp_path, max_attempts=0).attempts == 1   # cached
    with pytest.raises(UsageError, match=r"^the suite needs at least one item, got 0\.$"):
        build_suite(some, 0, folder=tmp_path)
    small = Scripted(set())
    small.labels = ["a"] * 10
    with pytest.raises(UsageError, match=r"^the localisation suite needs an ImageNet-1k classifier; 'scripted/m 1' "
                                         r"has 10 classes\.$"):
        build_suite(small, 1, folder=tmp_path)


def test_build_default_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("VLX_CACHE", str(tmp_path / "c"))
    suite = build_suite(Scripted({0}), 1, seed=2)
    assert suite.folder == tmp_path / "c" / "suites" / "localisation-v1" / "seed2-scripted_m_1"
    assert (suite.folder / "manifest.json").exists()


@pytest.mark.parametrize("key, value", [("version", "localisation-v0"), ("seed", 9), ("model", "other"),
                                        ("canvas", 224)])
def test_cache_built_differently(tiny, tmp_path, key, value):
    build_suite(Scripted({0}), 1, seed=4, folder=tmp_path)
    where = tmp_path / "localisation-v1" / "seed4-scripted_m_1"
    m = json.loads((where / "manifest.json").read_text())
    m[key] = value
    (where / "manifest.json").write_text(json.dumps(m))
    v, s, mo = (m["version"], m["seed"], m["model"])
    with pytest.raises(UsageError) as e:
        build_suite(Scripted({0}), 1, seed=4, folder=tmp_path)
    assert str(e.value) == (f"the suite cache {where} was built differently ({v}, seed {s}, {mo}); delete that "
                            "folder or pass another --cache-dir.")
