"""SAM regions with a scripted segmenter: the prompt batches written out by hand, the candidate kept
per prompt recomputed as ``iou * (mass - area)`` in the test, automatic masks' grid, chunks, filters
and deduplication at their exact boundaries, and what ``SamRegions`` passes to the segmenter, the
prompt placer and ``select_masks``. No model: the segmenter returns planted masks."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.image import from_array
from vlx.models.segmenter import MaskPrediction
from vlx.regions.prompts import MapPrompts
from vlx.types import AttributionMap, ClassTarget


class Scripted:
    """A ``PromptSegmenter`` that records its calls and answers with ``answer(points, labels, boxes)``."""

    name = "scripted"

    def __init__(self, answer):
        self.answer = answer
        self.encoder_calls = 0
        self.images: list[np.ndarray] = []
        self.calls: list[dict] = []

    def set_image(self, pixels):
        self.images.append(pixels)
        self.encoder_calls += 1

    def predict(self, points, labels, boxes=None, multimask=True, min_quality=None):
        self.calls.append(dict(points=np.array(points), labels=np.array(labels),
                               boxes=None if boxes is None else np.array(boxes),
                               multimask=multimask, min_quality=min_quality))
        return self.answer(points, labels, boxes)


def rect(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def amap_of(v):
    v = np.asarray(v, dtype=np.float32)
    return AttributionMap(v, v, "planted", ClassTarget(0))


# -- prompt_batches ----------------------------------------------------------------------------------

def test_prompt_batches_three_peaks_two_negatives_written_out():
    from vlx.regions.sam import prompt_batches

    pos = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    neg = np.array([[7.0, 8.0], [9.0, 10.0]])
    (pts, lab), (bp, bl, box) = prompt_batches(MapPrompts(pos, neg, (1, 2, 30, 40)))
    want_pts = np.array([
        [[1, 2], [7, 8], [9, 10], [0, 0], [0, 0]],
        [[3, 4], [7, 8], [9, 10], [0, 0], [0, 0]],
        [[5, 6], [7, 8], [9, 10], [0, 0], [0, 0]],
        [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]],
    ], dtype=np.float64)
    want_lab = [[1, 0, 0, -1, -1], [1, 0, 0, -1, -1], [1, 0, 0, -1, -1], [1, 1, 1, 0, 0]]
    np.testing.assert_array_equal(pts, want_pts)
    assert pts.dtype == np.float64
    assert lab.tolist() == want_lab and lab.dtype == np.int64
    np.testing.assert_array_equal(bp, [[[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]]])
    assert bl.tolist() == [[1, 1, 1, 0, 0]] and bl.dtype == np.int64
    assert box.tolist() == [[1.0, 2.0, 30.0, 40.0]] and box.dtype == np.float64


def test_prompt_batches_one_peak_is_one_prompt_and_no_box_is_none():
    from vlx.regions.sam import prompt_batches

    pos = np.array([[4.0, 5.0]])
    neg = np.array([[0.5, 0.5]])
    (pts, lab), box = prompt_batches(MapPrompts(pos, neg, None))
    assert box is None
    np.testing.assert_array_equal(pts, [[[4, 5], [0.5, 0.5]]])     # the peak alone; no "all peaks" set
    assert lab.tolist() == [[1, 0]]
    (pts, lab), (bp, bl, bx) = prompt_batches(MapPrompts(pos, np.zeros((0, 2)), (0, 0, 9, 9)))
    np.testing.assert_array_equal(pts, [[[4, 5]]])
    assert lab.tolist() == [[1]] and bl.tolist() == [[1]] and bl.dtype == np.int64
    np.testing.assert_array_equal(bp, [[[4, 5]]])


def test_prompt_batches_two_peaks_no_negatives():
    from vlx.regions.sam import prompt_batches

    pos = np.array([[1.0, 1.0], [2.0, 3.0]])
    (pts, lab), _ = prompt_batches(MapPrompts(pos, np.zeros((0, 2)), (0, 0, 4, 4)))
    np.testing.assert_array_equal(pts, [[[1, 1], [0, 0]], [[2, 3], [0, 0]], [[1, 1], [2, 3]]])
    assert lab.tolist() == [[1, -1], [1, -1], [1, 1]]


# -- best_per_prompt ---------------------------------------------------------------------------------

def test_best_per_prompt_keeps_the_largest_iou_times_mass_minus_area():
    """Two prompts, three candidates each, on a 4×5 map; the gains written out by hand."""
    from vlx.regions.sam import best_per_prompt

    h, w = 4, 5
    v = np.zeros((h, w))
    v[0, 0], v[0, 1], v[1, 0], v[3, 4] = 4.0, 2.0, 1.0, 3.0   # positive mass 10
    v[2, 2] = -5.0                                             # negative values count for nothing
    a = rect(h, w, 0, 1, 0, 1)          # mass 0.4, area 0.05 -> 0.35
    b = rect(h, w, 0, 2, 0, 2)          # mass 0.7, area 0.2  -> 0.50
    c = rect(h, w, 3, 4, 4, 5)          # mass 0.3, area 0.05 -> 0.25
    d = rect(h, w, 0, 4, 0, 5)          # mass 1.0, area 1.0  -> 0
    masks = np.stack([np.stack([a, b, c]), np.stack([d, c, a])])
    iou = np.array([[0.9, 0.6, 1.0], [0.2, 1.5, 0.9]], dtype=np.float32)
    # prompt 0: 0.9*0.35=0.315, 0.6*0.5=0.30, 1.0*0.25=0.25 -> a (b would win without the iou factor)
    # prompt 1: 0.2*0=0, iou clipped to 1: 1*0.25=0.25, 0.9*0.35=0.315 -> a (c would win unclipped)
    pred = MaskPrediction(masks, iou, np.ones_like(iou))
    best, q = best_per_prompt(pred, v)
    assert best.shape == (2, h, w) and best.dtype == bool
    np.testing.assert_array_equal(best[0], a)
    np.testing.assert_array_equal(best[1], a)
    np.testing.assert_array_equal(q, np.array([0.9, 0.9], dtype=np.float32))


# -- automatic_masks ---------------------------------------------------------------------------------

def grid_answer(h, w, table):
    """Answer each single-point prompt with 3 candidates chosen by ``table(x, y) -> [(mask, iou, stab)]*3``."""
    def answer(points, labels, boxes):
        ms, qs, ss = [], [], []
        for p in np.asarray(points):
            cands = table(float(p[0, 0]), float(p[0, 1]))
            ms.append(np.stack([c[0] for c in cands]))
            qs.append([c[1] for c in cands])
            ss.append([c[2] for c in cands])
        return MaskPrediction(np.stack(ms), np.asarray(qs, np.float32), np.asarray(ss, np.float32))
    return answer


def test_automatic_masks_grid_chunks_and_call_arguments():
    from vlx.regions.sam import automatic_masks

    h, w = 30, 40
    empty = np.zeros((h, w), dtype=bool)
    seg = Scripted(grid_answer(h, w, lambda x, y: [(empty, 0.0, 0.0)] * 3))
    pixels = np.zeros((h, w, 3), np.uint8)
    masks, q = automatic_masks(seg, pixels, points_per_side=3, pred_iou_thresh=0.25, stability_thresh=0.75, chunk=4)
    assert seg.images[0] is pixels and seg.encoder_calls == 1
    assert [len(c["points"]) for c in seg.calls] == [4, 4, 1]          # 9 grid points in chunks of 4
    pts = np.concatenate([c["points"] for c in seg.calls])
    assert pts.shape == (9, 1, 2)
    xs, ys = [w / 6, w / 2, 5 * w / 6], [h / 6, h / 2, 5 * h / 6]       # cell centres
    want = np.array([[[x, y]] for y in ys for x in xs])
    np.testing.assert_allclose(pts, want, rtol=0, atol=1e-9)
    for c in seg.calls:
        assert c["labels"].shape == c["points"].shape[:2] and (c["labels"] == 1).all()
        assert c["labels"].dtype == np.int64
        assert c["boxes"] is None and c["multimask"] is True and c["min_quality"] == (0.25, 0.75)
    assert masks.shape == (0, h, w) and masks.dtype == bool and q.shape == (0,)


def test_automatic_masks_default_grid_and_chunk():
    from vlx.regions.sam import automatic_masks

    h, w = 8, 8
    empty = np.zeros((h, w), dtype=bool)
    seg = Scripted(grid_answer(h, w, lambda x, y: [(empty, 1.0, 1.0)] * 3))
    automatic_masks(seg, np.zeros((h, w, 3), np.uint8))
    assert [len(c["points"]) for c in seg.calls] == [64, 64, 64, 64]   # 16² points, 64 a call
    assert seg.calls[0]["min_quality"] == (0.88, 0.92)


def test_automatic_masks_no_grid_points_gives_empty_stacks():
    from vlx.regions.sam import automatic_masks

    seg = Scripted(None)
    masks, q = automatic_masks(seg, np.zeros((6, 7, 3), np.uint8), points_per_side=0)
    assert seg.calls == []
    assert masks.shape == (0, 6, 7) and masks.dtype == bool and q.shape == (0,)


def test_automatic_masks_filters_at_their_exact_thresholds_best_first():
    """One grid point (points_per_side=1, at the centre); each candidate probes one filter at its
    boundary: kept when equal to the threshold, dropped just below."""
    from vlx.regions.sam import automatic_masks

    h, w = 10, 10                          # 100 px: min_area 0.02 is 2 px
    a = rect(h, w, 0, 1, 0, 2)             # 2 px  = min_area: kept
    b = rect(h, w, 5, 6, 5, 6)             # 1 px  < min_area: dropped
    c = rect(h, w, 8, 10, 8, 10)           # 4 px
    seg = Scripted(lambda pts, lab, box: MaskPrediction(
        np.stack([np.stack([a, b, c])]),
        np.array([[0.5, 0.9, 0.7]], np.float32), np.array([[0.5, 0.9, 0.5]], np.float32)))
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), points_per_side=1, pred_iou_thresh=0.5,
                               stability_thresh=0.5, min_area=0.02)
    np.testing.assert_allclose(seg.calls[0]["points"], [[[5.0, 5.0]]])
    assert q.tolist() == pytest.approx([0.7, 0.5])                    # best first
    np.testing.assert_array_equal(masks, np.stack([c, a]))
    # just below each threshold: dropped
    for kw, keep in [(dict(pred_iou_thresh=0.51), [0.7]), (dict(stability_thresh=0.51), []),
                     (dict(min_area=0.021), [0.7])]:
        args = dict(points_per_side=1, pred_iou_thresh=0.5, stability_thresh=0.5, min_area=0.02) | kw
        _, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), **args)
        assert q.tolist() == pytest.approx(keep), kw


def test_automatic_masks_default_filters():
    from vlx.regions.sam import automatic_masks

    h, w = 40, 50                           # 2000 px: the default min_area 0.001 is 2 px
    one = rect(h, w, 0, 1, 0, 1)
    two = rect(h, w, 10, 11, 10, 12)
    big = rect(h, w, 20, 30, 20, 30)
    seg = Scripted(lambda pts, lab, box: MaskPrediction(
        np.stack([np.stack([one, two, big])]),
        np.array([[0.95, 0.88, 0.87]], np.float32), np.array([[0.95, 0.92, 0.99]], np.float32)))
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), points_per_side=1)
    assert q.tolist() == pytest.approx([0.88])                       # 1 px too small; 0.87 < 0.88
    np.testing.assert_array_equal(masks, two[None])
    seg2 = Scripted(lambda pts, lab, box: MaskPrediction(
        np.stack([np.stack([big, big, big])]),
        np.array([[0.9, 0.9, 0.9]], np.float32), np.array([[0.9199, 0.92, 0.5]], np.float32)))
    _, q = automatic_masks(seg2, np.zeros((h, w, 3), np.uint8), points_per_side=1, dedupe_iou=1.01)
    assert len(q) == 1                                                # stability 0.92 kept, 0.9199 not


def test_automatic_masks_dedupe_keeps_the_higher_iou_below_the_threshold():
    """IoUs written out: x vs y = 8/10 (duplicate at 0.8), x vs z = 0, y vs z = 0."""
    from vlx.regions.sam import automatic_masks

    h, w = 10, 10
    x = rect(h, w, 0, 1, 0, 10)             # 10 px
    y = rect(h, w, 0, 1, 0, 8)              # 8 px inside x: IoU 0.8
    z = rect(h, w, 5, 7, 0, 5)              # 10 px, disjoint
    seg = Scripted(lambda pts, lab, box: MaskPrediction(
        np.stack([np.stack([y, x, z])]),
        np.array([[0.95, 0.9, 0.9]], np.float32), np.ones((1, 3), np.float32)))
    kw = dict(points_per_side=1, pred_iou_thresh=0.0, stability_thresh=0.0, min_area=0.0)
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), dedupe_iou=0.8, **kw)
    assert q.tolist() == pytest.approx([0.95, 0.9])                   # y, then z; x is y's duplicate
    np.testing.assert_array_equal(masks, np.stack([y, z]))             # ties (x, z at 0.9) keep their order
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), dedupe_iou=0.81, **kw)
    np.testing.assert_array_equal(masks, np.stack([y, x, z]))
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), **kw)   # default 0.7
    np.testing.assert_array_equal(masks, np.stack([y, z]))


def test_automatic_masks_across_chunks_concatenates_every_kept_mask():
    from vlx.regions.sam import automatic_masks

    h, w = 12, 12

    def table(x, y):
        m = rect(h, w, int(y) - 1, int(y) + 1, int(x) - 1, int(x) + 1)    # a 2×2 block at the point
        return [(m, 0.9 + x / 1000, 1.0), (m, 0.1, 1.0), (m, 0.1, 0.0)]

    seg = Scripted(grid_answer(h, w, table))
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), points_per_side=2, pred_iou_thresh=0.5,
                               stability_thresh=0.5, chunk=1, min_area=0.0)
    assert len(seg.calls) == 4 and len(masks) == 4                   # one kept per point, none duplicate
    assert q.tolist() == pytest.approx([0.909, 0.909, 0.903, 0.903])
    assert {tuple(np.argwhere(m)[0]) for m in masks} == {(2, 2), (2, 8), (8, 2), (8, 8)}


def test_automatic_masks_equal_ious_keep_grid_order():
    """16 one-pixel masks (a 4×4 grid), iou alternating 0.9 / 0.8: best first, ties in grid order
    (NumPy's default sort does not keep the order of equal keys on 16 items)."""
    from vlx.regions.sam import automatic_masks

    h, w = 8, 8

    def table(x, y):
        m = rect(h, w, int(y), int(y) + 1, int(x), int(x) + 1)
        return [(m, 0.9 if int(x + y) % 4 == 2 else 0.8, 1.0)] + [(m, 0.0, 0.0)] * 2

    seg = Scripted(grid_answer(h, w, table))
    masks, q = automatic_masks(seg, np.zeros((h, w, 3), np.uint8), points_per_side=4, pred_iou_thresh=0.5,
                               stability_thresh=0.5, min_area=0.0)
    grid = [(y, x) for y in (1, 3, 5, 7) for x in (1, 3, 5, 7)]
    want = [p for p in grid if (p[0] + p[1]) % 4 == 2] + [p for p in grid if (p[0] + p[1]) % 4 != 2]
    assert [tuple(np.argwhere(m)[0]) for m in masks] == want
    assert q.tolist() == pytest.approx([0.9] * 8 + [0.8] * 8)


# -- SamRegions ---------------------------------------------------------------------------------------

def test_sam_regions_rejects_bad_options_and_loads_specs_on_the_device(monkeypatch):
    import vlx.regions.sam as sam

    with pytest.raises(ValueError, match=r"^coverage must be in \(0, 1\]$"):
        sam.SamRegions(Scripted(None), coverage=0)
    with pytest.raises(ValueError, match=r"^coverage must be in \(0, 1\]$"):
        sam.SamRegions(Scripted(None), coverage=1.0001)
    assert sam.SamRegions(Scripted(None), coverage=1).coverage == 1
    with pytest.raises(ValueError, match="^proposals must be 'prompts' or 'automatic'$"):
        sam.SamRegions(Scripted(None), proposals="grid")
    seen = []
    monkeypatch.setattr(sam, "load_segmenter", lambda spec, device: seen.append((spec, device)) or Scripted(None))
    sam.SamRegions("hf:somewhere", device="meta")
    sam.SamRegions()
    assert seen == [("hf:somewhere", "meta"), ("hf:facebook/sam-vit-base", "cpu")]
    r = sam.SamRegions(Scripted(None))
    assert (r.coverage, r.max_regions, r.min_area, r.proposals) == (0.5, 5, 0.005, "prompts")
    assert (r.n_positive, r.n_negative, r.dedupe_iou) == (3, 3, 0.7)
    assert r.auto == dict(points_per_side=16, pred_iou_thresh=0.88, stability_thresh=0.92, dedupe_iou=0.7)


def test_candidates_decode_point_then_box_prompts(monkeypatch):
    import vlx.regions.sam as sam

    h, w = 6, 8
    v = np.zeros((h, w), np.float32)
    v[1:3, 1:3] = 1.0
    prompts = MapPrompts(np.array([[1.0, 1.0], [2.0, 2.0]]), np.array([[7.0, 5.0]]), (1, 1, 3, 3))
    asked = []
    monkeypatch.setattr(sam, "map_prompts", lambda values, n_pos, n_neg: asked.append((values, n_pos, n_neg))
                        or prompts)
    good = rect(h, w, 1, 3, 1, 3)
    bad = rect(h, w, 4, 6, 4, 8)

    def answer(points, labels, boxes):
        p = len(points)
        tag = np.full((p, 1), 0.5 if boxes is not None else 0.25, np.float32)
        masks = np.stack([np.stack([bad, good, bad])] * p)
        return MaskPrediction(masks, np.hstack([tag, tag + 0.1, tag]), np.ones((p, 3), np.float32))

    seg = Scripted(answer)
    image = from_array(np.zeros((h, w, 3), np.uint8))
    regs = sam.SamRegions(seg, n_positive=5, n_negative=7)
    masks, q = regs.candidates(image, amap_of(v))
    assert len(asked) == 1 and asked[0][0] is not None and asked[0][1:] == (5, 7)
    np.testing.assert_array_equal(asked[0][0], v)
    assert seg.encoder_calls == 1 and seg.images[0] is image.pixels
    assert len(seg.calls) == 2
    pts_call, box_call = seg.calls
    assert pts_call["points"].shape == (3, 3, 2) and pts_call["boxes"] is None and pts_call["multimask"] is True
    assert pts_call["labels"].tolist() == [[1, 0, -1], [1, 0, -1], [1, 1, 0]]
    assert box_call["boxes"].tolist() == [[1, 1, 3, 3]] and box_call["multimask"] is True
    assert box_call["labels"].tolist() == [[1, 1, 0]]
    assert masks.shape == (4, h, w) and (masks == good).all()
    assert q.tolist() == pytest.approx([0.35, 0.35, 0.35, 0.6])


def test_candidates_without_a_box_and_for_an_empty_map(monkeypatch):
    import vlx.regions.sam as sam

    h, w = 5, 7
    good = rect(h, w, 0, 2, 0, 2)
    seg = Scripted(lambda pts, lab, box: MaskPrediction(np.stack([np.stack([good] * 3)] * len(pts)),
                                                        np.full((len(pts), 3), 0.5, np.float32),
                                                        np.ones((len(pts), 3), np.float32)))
    image = from_array(np.zeros((h, w, 3), np.uint8))
    monkeypatch.setattr(sam, "map_prompts", lambda *a: MapPrompts(np.array([[0.0, 0.0]]), np.zeros((0, 2)), None))
    masks, q = sam.SamRegions(seg).candidates(image, amap_of(good.astype(np.float32)))
    assert len(seg.calls) == 1 and masks.shape == (1, h, w) and q.tolist() == [0.5]
    monkeypatch.setattr(sam, "map_prompts", lambda *a: MapPrompts(np.zeros((0, 2)), np.zeros((0, 2)), None))
    masks, q = sam.SamRegions(seg).candidates(image, amap_of(np.zeros((h, w))))
    assert masks.shape == (0, h, w) and masks.dtype == bool and q.shape == (0,)
    assert len(seg.calls) == 1                                       # nothing decoded for an empty map


def test_automatic_proposals_pass_every_option(monkeypatch):
    import vlx.regions.sam as sam

    got = []
    monkeypatch.setattr(sam, "automatic_masks", lambda seg, pixels, **kw: got.append((seg, pixels, kw))
                        or (np.zeros((0, 4, 4), bool), np.zeros(0)))
    seg = Scripted(None)
    image = from_array(np.zeros((4, 4, 3), np.uint8))
    r = sam.SamRegions(seg, proposals="automatic", points_per_side=5, pred_iou_thresh=0.1, stability_thresh=0.2,
                       dedupe_iou=0.3)
    masks, q = r.candidates(image, amap_of(np.ones((4, 4))))
    assert masks.shape == (0, 4, 4) and q.shape == (0,)
    assert got[0][0] is seg and got[0][1] is image.pixels
    assert got[0][2] == dict(points_per_side=5, pred_iou_thresh=0.1, stability_thresh=0.2, dedupe_iou=0.3)
    assert seg.calls == []


def test_regions_ranked_by_mass_with_the_options_passed_to_select(monkeypatch):
    """Three disjoint candidates on a 10×10 map: masses 0.2, 0.5, 0.3 (positive mass 10); each
    option of ``SamRegions`` changes which are chosen."""
    import vlx.regions.sam as sam

    h, w = 10, 10
    v = np.zeros((h, w), np.float32)
    a = rect(h, w, 0, 1, 0, 2)     # 2 px, mass 0.2
    b = rect(h, w, 4, 5, 0, 5)     # 5 px, mass 0.5
    c = rect(h, w, 8, 9, 0, 3)     # 3 px, mass 0.3
    v[a], v[b], v[c] = 1.0, 1.0, 1.0
    v[9, 9] = -2.0
    image = from_array(np.zeros((h, w, 3), np.uint8))
    q = np.array([1.0, 0.1, 1.0])
    # gains: a 1*(0.2-0.02)=0.18, b 0.1*(0.5-0.05)=0.045, c 1*(0.3-0.03)=0.27 -> order c, a, b

    def run(**kw):
        r = sam.SamRegions(Scripted(None), **kw)
        monkeypatch.setattr(r, "candidates", lambda image, amap: (np.stack([a, b, c]), q))
        return r.regions(image, amap_of(v))

    regs = run(coverage=1.0, max_regions=5, min_area=0.0)
    assert [r.id for r in regs] == [0, 1, 2] and all(r.source == "sam" for r in regs)
    assert [r.attribution_mass for r in regs] == pytest.approx([0.5, 0.3, 0.2])   # ranked by mass
    np.testing.assert_array_equal(regs[0].mask, b)
    assert regs[0].area_fraction == pytest.approx(0.05) and regs[0].mean_attribution == pytest.approx(1.0)
    regs = run(coverage=1.0, max_regions=2, min_area=0.0)              # quality order: c, a
    assert [r.attribution_mass for r in regs] == pytest.approx([0.3, 0.2])
    regs = run(coverage=0.3, max_regions=5, min_area=0.0)              # c alone holds 0.3
    assert [r.attribution_mass for r in regs] == pytest.approx([0.3])
    regs = run(coverage=1.0, max_regions=5, min_area=0.025)            # a (0.02) too small
    assert [r.attribution_mass for r in regs] == pytest.approx([0.5, 0.3])
    regs = run()                                                        # defaults: 0.5, 5, 0.005
    assert [r.attribution_mass for r in regs] == pytest.approx([0.3, 0.2])


def test_regions_dedupe_threshold_is_passed_to_select(monkeypatch):
    """x (8 px) and y (9 px) share 7 px: IoU 7/10 = 0.7 exactly. x has the larger gain; y is its
    duplicate at ``dedupe_iou <= 0.7`` (the default), else y's 2 px outside x are a second region."""
    import vlx.regions.sam as sam

    h, w = 10, 10
    x = rect(h, w, 0, 1, 0, 8)
    y = rect(h, w, 0, 1, 1, 8) | rect(h, w, 1, 2, 0, 2)
    v = np.zeros((h, w), np.float32)
    v[0, :8] = 1.0
    v[1, :2] = 0.5
    v[5:, :] = 0.01
    image = from_array(np.zeros((h, w, 3), np.uint8))

    def run(**kw):
        r = sam.SamRegions(Scripted(None), coverage=1.0, min_area=0.0, **kw)
        monkeypatch.setattr(r, "candidates", lambda image, amap: (np.stack([x, y]), np.array([1.0, 1.0])))
        return r.regions(image, amap_of(v))

    assert len(run(dedupe_iou=0.7)) == 1
    assert len(run()) == 1
    regs = run(dedupe_iou=0.71)
    assert len(regs) == 2
    np.testing.assert_array_equal(regs[1].mask, rect(h, w, 1, 2, 0, 2))


def test_regions_default_max_is_five(monkeypatch):
    import vlx.regions.sam as sam

    h, w = 8, 8
    cands = np.stack([rect(h, w, i, i + 1, 0, 1) for i in range(7)])
    v = np.zeros((h, w), np.float32)
    v[:7, 0] = np.arange(7, 0, -1)
    r = sam.SamRegions(Scripted(None), coverage=1.0, min_area=0.0)
    monkeypatch.setattr(r, "candidates", lambda image, amap: (cands, np.ones(7)))
    regs = r.regions(from_array(np.zeros((h, w, 3), np.uint8)), amap_of(v))
    assert [r.attribution_mass for r in regs] == pytest.approx(np.arange(7, 2, -1) / 28)
