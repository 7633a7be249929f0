"""Regions: SAM prompted by the map (tiny random SamModel from a config, loaded from a folder),
prompts from a planted map, superpixel regions on a real image and map, causal scores,
Shapley values, refined maps, and the CLI's --segmenter / --refine."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vlx.image import from_array
from vlx.types import AttributionMap, ClassTarget

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.png"


@pytest.fixture(scope="module")
def tiny_sam_dir(tmp_path_factory):
    from vlx.testing.tiny_sam import tiny_sam_folder

    return tiny_sam_folder(tmp_path_factory.mktemp("tiny-sam"))


@pytest.fixture(scope="module")
def gradcam_map(effnet, chelsea):
    from vlx.attribute.base import attribute, get_method

    target = ClassTarget(int(effnet.logits(effnet.to_input(chelsea)).argmax()))
    return attribute(effnet, chelsea, target, get_method("gradcam"), effnet.layer(None)[0])


def planted_map(h: int = 120, w: int = 160, box=(40, 30, 100, 80)) -> tuple[AttributionMap, tuple]:
    v = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = box
    v[y0:y1, x0:x1] = 1.0
    v[y0 + 10:y0 + 20, x0 + 10:x0 + 20] = 2.0          # two stronger, separated bumps inside
    v[y1 - 20:y1 - 10, x1 - 20:x1 - 10] = 2.0
    return AttributionMap(v, v, "planted", ClassTarget(0)), box


def test_planted_map_prompts_inside_and_outside():
    from vlx.regions.prompts import map_prompts

    amap, (x0, y0, x1, y1) = planted_map()
    p = map_prompts(amap.values, n_positive=3, n_negative=4)
    assert len(p.positive) == 2 and len(p.negative) == 4
    for x, y in p.positive:
        assert x0 <= x < x1 and y0 <= y < y1
    for x, y in p.negative:
        assert not (x0 - 5 <= x < x1 + 5 and y0 - 5 <= y < y1 + 5)
    bx = p.box
    assert bx is not None and abs(bx[0] - x0) <= 6 and abs(bx[1] - y0) <= 6
    assert abs(bx[2] - x1) <= 6 and abs(bx[3] - y1) <= 6


def test_prompt_batches_layout():
    from vlx.regions.prompts import MapPrompts
    from vlx.regions.sam import prompt_batches

    p = MapPrompts(np.array([[1.0, 2.0], [5.0, 6.0]]), np.array([[9.0, 9.0]]), (0, 0, 8, 8))
    (pts, lab), (bp, bl, box) = prompt_batches(p)
    assert pts.shape == (3, 3, 2) and lab.shape == (3, 3)       # each peak alone, then both
    assert lab.tolist() == [[1, 0, -1], [1, 0, -1], [1, 1, 0]]
    assert bp.shape == (1, 3, 2) and bl.tolist() == [[1, 1, 0]] and box.tolist() == [[0, 0, 8, 8]]


def test_tiny_sam_whole_path_encodes_once(tiny_sam_dir):
    from vlx.regions import make_segmenter
    from vlx.regions.sam import SamRegions

    amap, _ = planted_map()
    rng = np.random.default_rng(0)
    image = from_array(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    seg = make_segmenter(f"hf:{tiny_sam_dir}", coverage=0.9, pred_iou_thresh=0.0, stability_thresh=0.0,
                         points_per_side=4)
    assert isinstance(seg, SamRegions)
    calls = []
    seg.segmenter.model.vision_encoder.register_forward_hook(lambda *a: calls.append(1))
    masks, q = seg.candidates(image, amap)
    assert masks.dtype == bool and masks.shape[1:] == (120, 160) and q.shape == (len(masks),)
    assert len(masks) == 4                                     # 2 peaks alone, both peaks, box
    regions = seg.regions(image, amap)
    auto, auto_q = seg.automatic(image)
    assert auto.shape[1:] == (120, 160) and len(auto) == len(auto_q) >= 1
    from vlx.regions.refine import Refiner

    refined = Refiner("sam", sam=seg).refine(image, amap)
    assert refined.values.sum() == pytest.approx(amap.values.sum(), rel=1e-4)
    assert len(calls) == 1 and seg.segmenter.encoder_calls == 1    # one encoding, however many prompts
    assert regions and all(r.source == "sam" and r.mask.shape == (120, 160) for r in regions)
    union = np.zeros((120, 160), int)
    for r in regions:
        union += r.mask
    assert union.max() <= 1                                     # disjoint
    assert sum(r.attribution_mass for r in regions) <= 1 + 1e-9
    assert [r.id for r in regions] == list(range(len(regions)))
    seg.segmenter.set_image(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    assert seg.segmenter.encoder_calls == 2


def test_sam_preprocessing_matches_transformers_processor(tiny_sam_dir, chelsea):
    import torch
    from transformers import SamProcessor

    from vlx.models.segmenter import load_segmenter

    seg = load_segmenter(f"hf:{tiny_sam_dir}")
    ours, _ = seg.preprocess(chelsea.pixels)
    theirs = SamProcessor.from_pretrained(str(tiny_sam_dir))(images=chelsea.pixels, return_tensors="pt")
    assert ours.shape == theirs["pixel_values"].shape
    assert float((ours - theirs["pixel_values"].to(torch.float32)).abs().mean()) < 0.02


def test_bad_segmenter_specs_are_one_line_errors(tmp_path):
    from vlx.errors import UsageError, VlxError
    from vlx.regions import make_refiner, make_segmenter

    with pytest.raises(VlxError, match="no such local folder"):
        make_segmenter(f"hf:{tmp_path / 'missing'}")
    with pytest.raises(UsageError, match="segment.anything|unknown SAM type|checkpoint"):
        make_segmenter("sam:vit_b=/nonexistent.pth")
    with pytest.raises(UsageError, match="needs a SAM segmenter"):
        make_refiner("sam", make_segmenter("superpixels"))
    with pytest.raises(UsageError, match="unknown segmenter"):
        make_segmenter("slick")


def test_select_masks_prefers_the_planted_region_and_dedupes():
    from vlx.regions.select import select_masks

    amap, (x0, y0, x1, y1) = planted_map()
    whole = np.ones((120, 160), bool)
    planted = np.zeros((120, 160), bool)
    planted[y0:y1, x0:x1] = True
    near = planted.copy()
    near[y0:y0 + 2] = False
    other = np.zeros((120, 160), bool)
    other[:20, :20] = True
    chosen = select_masks(np.stack([whole, near, planted, other]), amap.values, np.array([1.0, 0.9, 0.9, 1.0]),
                          coverage=1.0)
    assert len(chosen) == 1 and ((chosen[0] == planted).all() or (chosen[0] == near).all())


@pytest.mark.parametrize("name", ["superpixels", "felzenszwalb"])
def test_superpixel_regions_hold_the_stated_mass(name, chelsea, gradcam_map):
    from vlx.regions import make_segmenter

    regions = make_segmenter(name, coverage=0.5).regions(chelsea, gradcam_map)
    assert regions
    pos = np.clip(gradcam_map.values, 0, None).astype(np.float64)
    for r in regions:
        assert r.attribution_mass == pytest.approx(pos[r.mask].sum() / pos.sum(), rel=1e-6)
        assert r.area_fraction == pytest.approx(r.mask.mean())
    assert [r.attribution_mass for r in regions] == sorted((r.attribution_mass for r in regions), reverse=True)
    # the regions concentrate attribution: more mass than area
    assert sum(r.attribution_mass for r in regions) > 1.5 * sum(r.area_fraction for r in regions)


def test_causal_scores_and_shapley_on_planted_model():
    from vlx.regions.causal import removal_scores
    from vlx.regions.scoring import causal_scores, shapley_values
    from vlx.testing import planted_box, planted_classifier

    model = planted_classifier("top-left", size=32)
    rng = np.random.default_rng(1)
    image = from_array(rng.integers(0, 3, (64, 64, 3), dtype=np.uint8))    # dark: p(class 0) ~ 0.9, not saturated
    x0, y0, x1, y1 = (2 * c for c in planted_box("top-left", 32))
    inside = np.zeros((64, 64), bool)
    inside[y0:y1, x0:x1] = True
    outside = ~inside
    p0 = removal_scores(model, image, [np.zeros((64, 64), bool)], 0)[0]
    removed, kept = causal_scores(model, image, [inside, outside], 0)
    assert removed == pytest.approx(removal_scores(model, image, [inside, outside], 0), abs=1e-6)
    assert kept == pytest.approx(removal_scores(model, image, [inside, outside], 0, keep_only=True), abs=1e-6)
    assert removed[1] == pytest.approx(p0, abs=1e-5)           # the model never looks outside
    assert kept[0] == pytest.approx(p0, abs=1e-5)
    assert abs(removed[0] - p0) > 1e-3
    quads = [np.zeros((64, 64), bool) for _ in range(4)]
    for i, (r, c) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        quads[i][32 * r:32 * (r + 1), 32 * c:32 * (c + 1)] = True
    phi = shapley_values(model, image, quads, 0)
    p_none = removal_scores(model, image, [np.ones((64, 64), bool)], 0)[0]
    assert phi.sum() == pytest.approx(p0 - p_none, abs=1e-5)   # efficiency
    assert np.abs(phi[1:]).max() < 1e-5 < abs(phi[0])          # only the planted quadrant matters
    nine = [np.zeros((64, 64), bool) for _ in range(9)]
    for i in range(9):
        nine[i][(i // 3) * 21:(i // 3 + 1) * 21, (i % 3) * 21:(i % 3 + 1) * 21] = True
    phi9 = shapley_values(model, image, nine, 0, n_permutations=4)    # sampled; efficiency still exact
    v_all_removed = removal_scores(model, image, [np.logical_or.reduce(nine)], 0)[0]
    assert phi9.sum() == pytest.approx(p0 - v_all_removed, abs=1e-5)


def test_refined_map_keeps_mass_and_is_piecewise_constant(chelsea, gradcam_map):
    from vlx.regions.refine import Refiner, mask_partition, segment_mean

    refiner = Refiner("superpixels")
    labels = refiner.labels(chelsea)
    refined = refiner.refine(chelsea, gradcam_map)
    assert refined.values.shape == gradcam_map.values.shape and refined.values.dtype == np.float32
    assert refined.values.sum() == pytest.approx(gradcam_map.values.sum(), rel=1e-4)
    for s in np.unique(labels)[:10]:
        assert np.ptp(refined.values[labels == s]) < 1e-6
    assert refined.method == gradcam_map.method and refined.raw is gradcam_map.raw
    masks = np.zeros((2, 10, 10), bool)
    masks[0, :5] = True
    masks[1, :2, :2] = True
    part = mask_partition(masks, (10, 10))
    assert len(np.unique(part)) == 3 and (part[:2, :2] == part[0, 0]).all() and part[0, 0] != part[0, 5]
    v = np.arange(100, dtype=np.float32).reshape(10, 10)
    assert segment_mean(v, part).sum() == pytest.approx(v.sum())


def test_cli_segmenter_and_refine_end_to_end(tiny_sam_dir, tmp_path):
    assert VLX, "the vlx console script is not installed"
    p = subprocess.run([VLX, "explain", str(EXAMPLE), "--out", str(tmp_path), "--segmenter", f"hf:{tiny_sam_dir}",
                        "--refine", "sam", "--shapley", "--json", "--quiet"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert "refine" in out["timing_s"]
    for r in out["regions"]:
        assert r["source"] == "sam" and 0 <= r["score_when_kept"] <= 1 and r["shapley_value"] is not None
    assert (tmp_path / "chelsea" / "report.html").exists()


# ---- oracles: masses on signed maps, scores for the explained class, SAM's padding crop ---------

def _stripes() -> tuple:
    """64×64 image of four vertical colour stripes, 16 px each; a signed map: stripe 0 strongly
    negative, stripe 1 +1, stripe 2 +0.5, stripe 3 zero."""
    px = np.zeros((64, 64, 3), np.uint8)
    for k, c in enumerate([(220, 30, 30), (30, 200, 40), (40, 50, 220), (240, 240, 240)]):
        px[:, 16 * k:16 * (k + 1)] = c
    v = np.zeros((64, 64), np.float32)
    v[:, :16], v[:, 16:32], v[:, 32:48] = -5.0, 1.0, 0.5
    return from_array(px), AttributionMap(v, v, "planted", ClassTarget(0))


@pytest.mark.parametrize("name", ["superpixels", "felzenszwalb"])
def test_superpixel_mass_is_the_positive_part_not_the_magnitude(name):
    from vlx.regions import make_segmenter

    image, amap = _stripes()
    regions = make_segmenter(name, coverage=0.5).regions(image, amap)
    assert regions
    pos_total = 1.0 * 16 * 64 + 0.5 * 16 * 64
    for r in regions:
        assert not r.mask[:, :16].any()                         # the negative stripe holds no mass
        want = (r.mask[:, 16:32].sum() * 1.0 + r.mask[:, 32:48].sum() * 0.5) / pos_total
        assert r.attribution_mass == pytest.approx(want, rel=1e-6)
        assert r.mean_attribution == pytest.approx(float(amap.values[r.mask].mean()), rel=1e-6)
    assert sum(r.attribution_mass for r in regions) >= 0.5 - 1e-6
    assert regions[0].mask[:, 16:32].any()


def test_region_from_mask_and_gain_on_a_signed_map():
    from vlx.regions.scoring import region_from_mask
    from vlx.regions.select import gain, mass_and_area

    _, amap = _stripes()
    v = amap.values
    m = np.zeros((64, 64), bool)
    m[:32, 8:24] = True                                         # half negative, half +1
    r = region_from_mask(3, m, v, "sam")
    assert r.attribution_mass == pytest.approx(8 * 32 / (1.5 * 1024))
    assert r.mean_attribution == pytest.approx((-5 * 8 * 32 + 8 * 32) / (16 * 32))
    assert r.area_fraction == pytest.approx(512 / 4096) and r.bbox_xyxy == (8, 0, 24, 32) and r.id == 3
    small = region_from_mask(0, m, v * 1e-4, "sam")                      # scale-free
    assert small.attribution_mass == pytest.approx(r.attribution_mass, rel=1e-6)
    none = region_from_mask(0, m, -np.abs(v), "sam")                    # no positive attribution at all
    assert none.attribution_mass == 0.0 and none.mean_attribution < 0
    empty = region_from_mask(0, np.zeros((64, 64), bool), v, "sam")
    assert empty.attribution_mass == 0.0 and empty.mean_attribution == 0.0 and empty.area_fraction == 0.0
    neg = np.zeros((64, 64), bool)
    neg[:, :16] = True
    mass, area = mass_and_area(np.stack([m, neg]), v)
    np.testing.assert_allclose(mass, [8 * 32 / 1536, 0.0])
    np.testing.assert_allclose(area, [0.125, 0.25])
    np.testing.assert_allclose(gain(np.stack([m, neg]), v, np.array([0.5, 2.0])), [0.5 * (256 / 1536 - 0.125), -0.25])


def _blur_oracle(pixels: np.ndarray) -> np.ndarray:
    """The documented "removed" content, from scipy directly: Gaussian blur with sigma = 1/20
    of the longer side (edges repeated), on [0, 1] pixels, back to uint8."""
    from scipy.ndimage import gaussian_filter

    s = max(pixels.shape[:2]) / 20.0
    out = gaussian_filter(pixels.astype(np.float64) / 255.0, sigma=(s, s, 0), mode="nearest", truncate=4.0)
    return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)


def test_region_scores_are_for_the_explained_class_not_the_top_one():
    import torch

    from vlx.pipeline import Explainer
    from vlx.testing import planted_classifier

    model = planted_classifier("top-left", size=32)
    rng = np.random.default_rng(2)
    px = rng.integers(0, 4, (32, 32, 3), dtype=np.uint8)
    image = from_array(px)
    e = Explainer(model, "gradcam", describer=None).explain(image, target=2)
    assert e.prediction.indices[0] == 0 and e.target.primary == 2 and e.regions
    blur = _blur_oracle(px)
    x = torch.from_numpy(px / 255.0).permute(2, 0, 1)
    b = torch.from_numpy(blur / 255.0).permute(2, 0, 1)

    def p(m: np.ndarray, k: int = 2) -> float:
        mt = torch.from_numpy(m.astype(np.float64))
        with torch.no_grad():
            return float(model.module((x * (1 - mt) + b * mt)[None].float()).softmax(-1)[0, k])

    for r in e.regions:
        assert r.score_after_removal == pytest.approx(p(r.mask), abs=1e-5)
        assert r.score_when_kept == pytest.approx(p(~r.mask), abs=1e-5)
        assert abs(p(r.mask, 0) - p(r.mask)) > 0.1 and abs(p(~r.mask, 0) - p(~r.mask)) > 0.1


def test_sam_masks_crop_the_padding_like_transformers(tiny_sam_dir):
    """A wide image fills only the top third of SAM's square input; the low-resolution logits
    must be cropped to that part before resizing to the image (transformers'
    ``SamProcessor.post_process_masks`` is the oracle). Without the crop the masks come out
    squashed to a third of their height."""
    import torch
    from transformers import SamProcessor

    from vlx.models.segmenter import load_segmenter

    seg = load_segmenter(f"hf:{tiny_sam_dir}")
    pixels = np.random.default_rng(3).integers(0, 255, (40, 120, 3), dtype=np.uint8)
    proc = SamProcessor.from_pretrained(str(tiny_sam_dir))
    enc = proc(images=pixels, return_tensors="pt")
    assert enc["reshaped_input_sizes"].tolist() == [[21, 64]]
    seg.set_image(pixels)
    seen = []
    handle = seg.model.register_forward_hook(lambda mod, args, out: seen.append(out.pred_masks.detach()))
    try:
        pred = seg.predict(np.array([[[30.0, 20.0]], [[100.0, 10.0]]]), np.ones((2, 1), dtype=np.int64))
    finally:
        handle.remove()
    low = seen[0]                                                   # (1, P, K, h, w)
    theirs = proc.post_process_masks(low, enc["original_sizes"], enc["reshaped_input_sizes"], binarize=False)[0]
    ours = seg._logits_to_image(low[0].reshape(-1, 1, *low.shape[-2:]).float())[:, 0]
    torch.testing.assert_close(ours, theirs.reshape(ours.shape).float(), atol=1e-4, rtol=1e-4)
    want = (theirs > 0).numpy()
    assert pred.masks.shape == want.shape == (2, 3, 40, 120)
    assert (pred.masks == want).mean() > 0.999
    assert 0.05 < want.mean() < 0.95                                # masks with edges: the crop matters


# -- region selection against a plain re-implementation and exact boundaries --------------------

def _iou_numpy(a: np.ndarray, b: np.ndarray, block: int = 1) -> np.ndarray:
    """Exact IoU of bool stacks after ``block × block`` averaging thresholded at 0.5."""
    def small(m):
        n, h, w = m.shape
        return (m.reshape(n, h // block, block, w // block, block).mean((2, 4)) >= 0.5).reshape(n, -1)
    fa, fb = small(a).astype(float), small(b).astype(float)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None] - inter
    return inter / np.maximum(union, 1)


def test_mask_iou_is_exact_and_shrinks_large_masks_by_area():
    from vlx.regions.select import mask_iou

    rng = np.random.default_rng(0)
    a, b = rng.random((4, 40, 56)) < 0.4, rng.random((3, 40, 56)) < 0.6
    b[0] = False                                                           # empty: IoU 0, not NaN
    np.testing.assert_allclose(mask_iou(a, b), _iou_numpy(a, b), atol=1e-6)
    big_a = np.kron(rng.random((3, 64, 32)) < 0.5, np.ones((4, 4), bool))    # 256 × 128: shrunk 2× to 128 × 64
    big_b = np.kron(rng.random((2, 64, 32)) < 0.5, np.ones((4, 4), bool))
    big_a[:, ::2, ::2] ^= True                                             # detail the 2× shrink averages away
    np.testing.assert_allclose(mask_iou(big_a, big_b), _iou_numpy(big_a, big_b, 2), atol=1e-6)
    assert not np.allclose(_iou_numpy(big_a, big_b, 2), _iou_numpy(big_a, big_b))
    np.testing.assert_allclose(mask_iou(big_a, big_b, side=256), _iou_numpy(big_a, big_b), atol=1e-6)


def test_mask_iou_keeps_at_least_one_pixel_on_a_thin_side():
    """A 2 × 1000 stack shrinks to 1 × 128 (the short side rounds to 0 and is kept at 1 px), so two
    stripes that split the rows merge into one; the transposed stack likewise."""
    from vlx.regions.select import mask_iou

    rows = np.zeros((2, 2, 1000), bool)
    rows[0, 0], rows[1, 1] = True, True
    assert mask_iou(rows, rows).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    cols = rows.transpose(0, 2, 1).copy()
    assert mask_iou(cols, cols).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert mask_iou(rows, rows, side=1000).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_mass_area_and_gain_edge_cases():
    from vlx.regions.select import gain, mass_and_area

    m = np.zeros((2, 4, 5), bool)
    m[0, :2] = True
    m[1, :, :1] = True
    v = np.zeros((4, 5))
    v[0, 0], v[3, 0] = 0.05, 0.15                                          # positive mass below 1
    mass, area = mass_and_area(m, v)
    np.testing.assert_allclose(mass, [0.25, 1.0])
    np.testing.assert_allclose(area, [0.5, 0.2])
    zero_mass, _ = mass_and_area(m, np.zeros((4, 5)))
    assert zero_mass.shape == (2,) and not zero_mass.any()
    np.testing.assert_allclose(gain(m, v), [-0.25, 0.8])
    np.testing.assert_allclose(gain(m, v, np.array([-0.5, 1.5])), [0.0, 0.8])   # quality clipped to [0, 1]


def _select_reference(masks, values, quality, coverage, max_regions, min_area, dedupe_iou):
    """The docstring of ``select_masks``, written again (exact IoU; masks here are small)."""
    pos = np.clip(values, 0, None).astype(float)
    total, n = pos.sum(), values.size
    share = (lambda r: (pos[r].sum() / total if total > 0 else 0.0, r.sum() / n))
    q = np.ones(len(masks)) if quality is None else np.clip(quality, 0, 1)
    g = np.array([q[i] * (share(masks[i])[0] - share(masks[i])[1]) for i in range(len(masks))])
    order = [i for i in sorted(range(len(masks)), key=lambda i: -g[i]) if g[i] > 0]
    chosen, taken, union, held = [], [], np.zeros(values.shape, bool), 0.0
    for i in order:
        if len(chosen) >= max_regions or held >= coverage - 1e-9:
            break
        if any(_iou_numpy(masks[i][None], masks[t][None])[0, 0] >= dedupe_iou for t in taken):
            continue
        rest = masks[i] & ~union
        if rest.mean() < min_area:
            continue
        mass, area = share(rest)
        if mass - area <= 0:
            continue
        chosen.append(rest)
        taken.append(i)
        union |= rest
        held += mass
    return chosen


def test_select_masks_matches_the_reference_on_random_candidates():
    from vlx.regions.select import select_masks

    rng = np.random.default_rng(1)
    for trial in range(40):
        h, w = 12, 16
        values = rng.normal(size=(h, w)) + 1.5 * (rng.random((h, w)) < 0.2)
        masks = np.zeros((8, h, w), bool)
        for k in range(8):
            y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
            masks[k, y:y + rng.integers(2, 7), x:x + rng.integers(2, 9)] = True
        quality = rng.random(8) if trial % 2 else None
        opts = dict(coverage=float(rng.choice([0.3, 0.5, 0.9])), max_regions=int(rng.integers(1, 6)),
                    min_area=float(rng.choice([0.0, 0.01, 0.03])), dedupe_iou=float(rng.choice([0.3, 0.5, 0.7])))
        got = select_masks(masks, values, quality, **opts)
        want = _select_reference(masks, values, quality, **opts)
        assert len(got) == len(want), (trial, opts)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)


def test_select_masks_boundaries():
    """Each stopping and skipping rule at its exact boundary, and the defaults."""
    from vlx.regions.select import select_masks

    def box(y0, y1, x0, x1, shape=(10, 10)):
        m = np.zeros(shape, bool)
        m[y0:y1, x0:x1] = True
        return m

    # dedupe at IoU exactly 0.5 (8 / 16): skipped at dedupe_iou 0.5, kept (its cut rest) above it
    v = np.zeros((10, 10))
    v[0:4, 0:4] = 1.0
    a, b = box(0, 3, 0, 4), box(1, 4, 0, 4)
    assert len(select_masks(np.stack([a, b]), v, coverage=1.0, dedupe_iou=0.5)) == 1
    assert len(select_masks(np.stack([a, b]), v, coverage=1.0, dedupe_iou=0.51)) == 2
    # a rest covering exactly min_area is kept
    one = box(0, 1, 0, 1)
    assert len(select_masks(one[None], v, coverage=1.0, min_area=0.01)) == 1
    assert len(select_masks(one[None], v, coverage=1.0, min_area=0.011)) == 0
    # a rest with gain exactly 0 (its mass share equals its area share) is dropped
    v2 = np.zeros((10, 10))
    v2[0, :] = 4.0                                                          # A: 10 px, 40 of 100
    v2[1:3, :] = 1.0                                                        # R: 20 px, 20 of 100
    v2[3:7, :] = 1.0                                                        # elsewhere: 40 of 100
    A, R = box(0, 1, 0, 10), box(0, 3, 0, 10)
    assert [int(m.sum()) for m in select_masks(np.stack([A, R]), v2, coverage=0.9)] == [10]
    # coverage reached exactly stops; held adds up over regions; later masks are cut by earlier ones
    v3 = np.zeros((10, 10))
    v3[:, :6] = 1.0                                                         # 60 px of mass
    c1, c2 = box(0, 10, 0, 2), box(0, 10, 2, 4)                             # gains 1/3 - 0.2 each
    c3 = box(0, 10, 0, 1) | box(0, 10, 4, 7)                                # gain 0.5 - 0.4; overlaps c1
    assert len(select_masks(np.stack([c1, c2, c3]), v3, coverage=2 / 3)) == 2
    three = select_masks(np.stack([c1, c2, c3]), v3, coverage=1.0)
    assert [int(m.sum()) for m in three] == [20, 20, 30] and not (three[0] & three[2]).any()
    assert len(select_masks(np.stack([c1, c2, c3]), v3, coverage=1.0, max_regions=2)) == 2
    # defaults: coverage 0.5, max_regions 5, dedupe_iou 0.7
    strips = np.stack([box(0, 10, k, k + 1) for k in range(6)])             # six disjoint 1/6 shares
    assert len(select_masks(strips, v3)) == 3                               # 3/6 reaches coverage 0.5
    thin = np.zeros((10, 10))
    thin[:, :8] = 1.0
    strips8 = np.stack([box(0, 10, k, k + 1) for k in range(8)])
    assert len(select_masks(strips8, thin, coverage=1.0)) == 5
    near = np.stack([box(0, 4, 0, 4), box(0, 4, 0, 3) | box(4, 5, 0, 1)])   # IoU 12 / 17 = 0.706
    vn = np.zeros((10, 10))
    vn[0:5, 0:4] = 1.0
    assert len(select_masks(near, vn, coverage=1.0)) == 1
    # ties keep the candidates' order; a single candidate is chosen
    t1, t2 = box(0, 10, 0, 1), box(0, 10, 1, 2)
    got = select_masks(np.stack([t1, t2]), v3, coverage=1.0)
    assert got[0][0, 0] and got[1][0, 1]
    assert len(select_masks(t1[None], v3)) == 1 and select_masks(np.zeros((0, 10, 10), bool), v3) == []


def test_blurred_input_is_scipys_gaussian_per_axis():
    """The model-input blur against scipy: sigma in image pixels, scaled to input pixels on each
    axis (a 60 × 200 image at a 24 × 32 input), nearest edges, kernel truncated at 4 sigma; an
    explicit sigma; an axis whose kernel radius would be 0 is left alone."""
    import torch
    from scipy.ndimage import gaussian_filter

    from vlx.regions.causal import blurred, blurred_input

    x = torch.from_numpy(np.random.default_rng(2).normal(size=(2, 3, 24, 32)))
    for hw, sigma in (((60, 200), None), ((60, 200), 4.0), ((24, 32), 0.05), ((300, 40), None)):
        s = (sigma if sigma is not None else max(hw) / 20.0)
        sy, sx = s * 24 / hw[0], s * 32 / hw[1]
        want = x.numpy().copy()
        for axis, sd in ((2, sy), (3, sx)):
            if int(4.0 * sd + 0.5) >= 1:
                want = gaussian_filter(want, sigma=[sd if a == axis else 0 for a in range(4)], mode="nearest",
                                       truncate=4.0)
        got = blurred_input(x, hw, sigma).numpy()
        np.testing.assert_allclose(got, want, atol=1e-9, err_msg=str((hw, sigma)))
    px = np.random.default_rng(3).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    from vlx.evaluate.curves import blur_image

    np.testing.assert_array_equal(blurred(px, 1.0), blur_image(px, 1.0))
    assert not np.array_equal(blurred(px, 1.0), blurred(px))


def test_soft_masks_are_area_shares_and_removal_scores_batch():
    import torch

    from vlx.regions.causal import removal_scores, soft_masks
    from vlx.testing import planted_classifier

    rng = np.random.default_rng(4)
    masks = [rng.random((64, 48)) < 0.5 for _ in range(3)]
    got = soft_masks(masks, (32, 24), torch.device("cpu"))
    want = np.stack(masks).reshape(3, 32, 2, 24, 2).mean((2, 4))
    assert tuple(got.shape) == (3, 1, 32, 24)
    np.testing.assert_allclose(got[:, 0].numpy(), want, atol=1e-6)
    model = planted_classifier("top-left", size=32)
    image = from_array(rng.integers(0, 3, (64, 64, 3), dtype=np.uint8))
    m = [rng.random((64, 64)) < 0.3 for _ in range(3)]
    calls = []
    handle = model.module.register_forward_hook(lambda _m, inp, _o: calls.append(inp[0].shape[0]))
    try:
        a = removal_scores(model, image, m, 0, batch_size=2)
    finally:
        handle.remove()
    assert calls[-2:] == [2, 1] and a == pytest.approx(removal_scores(model, image, m, 0), abs=1e-6)


def test_score_regions_fills_the_three_scores_from_an_independent_blur():
    """``score_regions`` on two disjoint regions of a planted model, explaining class 2 (not the top
    class): removal and keep-only probabilities against composites built from scipy's blur, and the
    two-player Shapley values written out by hand from the four coalitions."""
    import torch

    from vlx.regions.scoring import region_from_mask, score_regions
    from vlx.testing import planted_classifier

    model = planted_classifier("top-left", size=32)
    rng = np.random.default_rng(3)
    px = rng.integers(0, 4, (32, 32, 3), dtype=np.uint8)
    image = from_array(px)
    x = torch.from_numpy(px / 255.0).permute(2, 0, 1)
    b = torch.from_numpy(_blur_oracle(px) / 255.0).permute(2, 0, 1)

    def p(removed: np.ndarray, k: int = 2) -> float:
        mt = torch.from_numpy(removed.astype(np.float64))
        with torch.no_grad():
            return float(model.module((x * (1 - mt) + b * mt)[None].float()).softmax(-1)[0, k])

    a = np.zeros((32, 32), bool)
    a[2:14, 3:15] = True                 # over the planted top-left box
    c = np.zeros((32, 32), bool)
    c[18:30, 16:31] = True
    values = np.zeros((32, 32), np.float32)
    values[a] = 1.0
    regions = [region_from_mask(0, a, values, "test"), region_from_mask(1, c, values, "test")]
    out = score_regions(model, image, regions, 2)
    assert len(out) == 2 and all(r.shapley_value is None for r in out)
    for r, m in zip(out, (a, c)):
        assert r.score_after_removal == pytest.approx(p(m), abs=1e-5)
        assert r.score_when_kept == pytest.approx(p(~m), abs=1e-5)
    assert abs(out[0].score_after_removal - p(a, 0)) > 0.05      # class 2's probability, not the top class's
    # the inputs are not touched; every other field is copied
    assert regions[0].score_after_removal is None and regions[0].shapley_value is None
    assert out[0].mask is a and out[1].attribution_mass == regions[1].attribution_mass == 0.0
    assert out[0].attribution_mass == 1.0 and out[1].id == 1 and out[0].source == "test"

    sh = score_regions(model, image, regions, 2, shapley=True, batch_size=1)
    none = np.zeros((32, 32), bool)
    v = {(0, 0): p(a | c), (1, 0): p(c), (0, 1): p(a), (1, 1): p(none)}   # v(S): regions outside S removed
    phi_a = 0.5 * (v[1, 0] - v[0, 0]) + 0.5 * (v[1, 1] - v[0, 1])
    phi_c = 0.5 * (v[0, 1] - v[0, 0]) + 0.5 * (v[1, 1] - v[1, 0])
    assert [r.shapley_value for r in sh] == pytest.approx([phi_a, phi_c], abs=1e-5)
    assert all(type(r.shapley_value) is float for r in sh)
    assert abs(phi_a) > 1e-3
    assert [r.score_after_removal for r in sh] == pytest.approx([r.score_after_removal for r in out], abs=1e-6)
    assert score_regions(model, image, [], 2, shapley=True) == []



def test_select_masks_quality_zero_ties_and_iou_edges():
    """A candidate whose quality is 0 has gain 0 and is never taken; ties among many candidates keep
    their given order (a stable sort); IoU of single pixels and of masks that shrink to exactly half."""
    from vlx.regions.select import mask_iou, select_masks

    v = np.zeros((10, 10))
    v[:4, :4] = 1.0
    good = np.zeros((10, 10), bool)
    good[:4, :4] = True
    assert len(select_masks(good[None], v, np.array([1.0]), coverage=1.0)) == 1
    assert select_masks(good[None], v, np.array([0.0]), coverage=1.0) == []
    # 40 one-column candidates, two gain levels alternating: the best ones in column order
    vv = np.tile([1.0, 3.0], 20)[None].repeat(4, 0)
    cols = np.stack([np.eye(40, dtype=bool)[k][None].repeat(4, 0) for k in range(40)])
    got = select_masks(cols, vv, coverage=1.0, max_regions=5, min_area=0.0)
    assert [int(np.flatnonzero(m[0])[0]) for m in got] == [1, 3, 5, 7, 9]
    # single pixels: IoU 1 with itself, 0 with another
    px = np.zeros((2, 5, 5), bool)
    px[0, 1, 1] = px[1, 3, 3] = True
    np.testing.assert_array_equal(mask_iou(px, px), np.eye(2))
    # every other column of a 256-wide mask: halved by area, each shrunk pixel is exactly 0.5: kept
    half = np.zeros((1, 256, 256), bool)
    half[0, :, ::2] = True
    np.testing.assert_allclose(mask_iou(half, np.ones((1, 256, 256), bool)), [[1.0]], atol=1e-6)
