"""The localisation suite (deterministic, consistent ground truth, kept only when recognised), the
leaderboard loop and the table renderers."""

from __future__ import annotations

import csv
import io
import json
import types

import numpy as np
import pytest
from PIL import Image

from vlx.errors import UsageError
from vlx.evaluate.leaderboard import GridItem, run_grid, run_leaderboard
from vlx.evaluate.suite import AREA_RANGE, CANVAS, OBJECTS, build_suite, compose, footprint
from vlx.evaluate.tables import curves_png, leaderboard_json, leaderboard_table, to_csv, to_markdown


def test_compose_is_deterministic_and_seeded():
    a, b = compose(3, seed=7), compose(3, seed=7)
    assert np.array_equal(a.pixels, b.pixels) and np.array_equal(a.mask, b.mask) and a.box_xyxy == b.box_xyxy
    c = compose(3, seed=8)
    assert not np.array_equal(a.pixels, c.pixels)
    assert a.obj == c.obj  # the object follows the candidate number; everything else the seed


@pytest.mark.parametrize("k", range(2 * len(OBJECTS)))
def test_mask_and_box_agree(k):
    c = compose(k, seed=1)
    assert c.pixels.shape == (CANVAS, CANVAS, 3) and c.pixels.dtype == np.uint8
    assert c.mask.shape == (CANVAS, CANVAS) and c.mask.dtype == bool
    ys, xs = np.nonzero(c.mask)
    assert c.box_xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    x0, y0, x1, y1 = c.box_xyxy
    assert 0 <= x0 < x1 <= CANVAS and 0 <= y0 < y1 <= CANVAS
    box_area = (x1 - x0) * (y1 - y0) / CANVAS ** 2
    assert AREA_RANGE[0] * 0.9 <= box_area <= AREA_RANGE[1] * 1.1
    assert c.mask.mean() <= box_area + 1e-9
    if c.obj.shape == "rect":
        assert c.mask.sum() == (x1 - x0) * (y1 - y0)


def test_footprints():
    ellipse = next(o for o in OBJECTS if o.shape == "ellipse")
    assert footprint(ellipse, (200, 100)).mean() == pytest.approx(np.pi / 4, abs=0.02)
    poly = next(o for o in OBJECTS if isinstance(o.shape, tuple))
    assert 0.4 < footprint(poly, (300, 180)).mean() < 0.95


@pytest.fixture(scope="module")
def small_suite(effnet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("suites")
    return build_suite(effnet, 3, seed=0, folder=folder), folder


def test_items_kept_only_when_recognised(effnet, small_suite):
    suite, _ = small_suite
    assert len(suite.items) == 3 and suite.attempts >= 3
    manifest = json.loads((suite.folder / "manifest.json").read_text())
    for it in suite.items:
        assert it.target in it.accepted
        assert effnet.predict(it.image, k=1).indices[0] == it.target
        assert it.mask.shape == it.image.size_hw and it.mask.any()
        ys, xs = np.nonzero(it.mask)
        assert it.box_xyxy == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert len(manifest["items"]) + len(manifest["rejected"]) == manifest["next_candidate"]
    for r in manifest["rejected"]:
        obj = next(o for o in OBJECTS if o.name == r["object"])
        assert r["predicted"] not in obj.accepted


def test_build_is_deterministic_cached_and_prefix_stable(effnet, small_suite, tmp_path):
    suite, folder = small_suite
    again = build_suite(effnet, 3, seed=0, folder=folder)            # from the cache
    fresh = build_suite(effnet, 2, seed=0, folder=tmp_path)          # rebuilt, shorter
    for a, b, c in zip(suite.items, again.items, fresh.items):
        assert np.array_equal(a.image.pixels, b.image.pixels) and np.array_equal(a.image.pixels, c.image.pixels)
        assert np.array_equal(a.mask, c.mask) and a.box_xyxy == c.box_xyxy and a.target == c.target
    assert len(fresh.items) == 2


def test_cache_mismatch_and_wrong_model_are_usage_errors(effnet, small_suite):
    suite, folder = small_suite
    manifest = json.loads((suite.folder / "manifest.json").read_text())
    manifest["seed"] = 99
    (suite.folder / "manifest.json").write_text(json.dumps(manifest))
    try:
        with pytest.raises(UsageError, match="built differently"):
            build_suite(effnet, 1, seed=0, folder=folder)
    finally:
        manifest["seed"] = 0
        (suite.folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UsageError, match="ImageNet-1k"):
        build_suite(types.SimpleNamespace(labels=["a"] * 10, name="tiny"), 1, folder=folder)


def test_leaderboard_and_tables(effnet, small_suite, tmp_path):
    suite, _ = small_suite
    steps = {"deletion": {"steps": 4}, "insertion": {"steps": 4}}
    board = run_leaderboard(effnet, suite.items[:2], ["gradcam", "saliency"], metric_options=steps)
    assert [s.n for s in board.scores] == [2, 2]
    pg = [s.means["pointing-game"] for s in board.scores]
    assert pg == sorted(pg, reverse=True)
    for s in board.scores:
        assert all(0.0 <= v <= 1.0 for v in s.means.values())
        assert len(s.curves["deletion"][1]) == 5
    headers, body = leaderboard_table(board)
    md = to_markdown(headers, body)
    assert md.count("\n") == 2 + len(body) and "pointing-game ↑" in md and "deletion ↓" in md
    rows = list(csv.reader(io.StringIO(to_csv(headers, body))))
    assert rows[0][:3] == ["#", "method", "pointing-game"] and len(rows) == 3
    doc = json.loads(leaderboard_json(board))
    assert {s["method"] for s in doc["scores"]} == {"gradcam", "saliency"}
    png = curves_png(board.scores[0].curves, tmp_path / "c.png", "deletion")
    assert Image.open(png).size == (640, 420)


def test_grid_records_errors_and_goes_on(effnet, small_suite):
    suite, _ = small_suite
    items = [GridItem(suite.items[0].image, 5000), GridItem(suite.items[1].image, None)]
    seen = []
    rows = run_grid(effnet, items, ["gradcam"], ["deletion"], metric_options={"deletion": {"steps": 2}},
                    on_row=seen.append)
    assert rows == seen and rows[0].error and "\n" not in rows[0].error
    assert rows[1].error is None and 0 <= rows[1].values["deletion"] <= 1
    with pytest.raises(UsageError, match="ground-truth mask"):
        run_grid(effnet, items, ["gradcam"], ["pointing-game"])


def _smooth_random_map(shape: tuple[int, int], seed: int, sigma: float = 20.0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    v = gaussian_filter(np.random.default_rng(seed).random(shape), sigma)
    return v - v.min()


def test_gradcam_energy_in_the_object_beats_random_smooth_maps(effnet, small_suite):
    """On real composites with known masks, Grad-CAM puts far more of its energy on the object
    than smooth random maps (the same blob scale as a CAM) do: each item by >= 0.2 over the best
    of five random maps (measured: 0.45-0.55 on these items, random maps ~0.2-0.33)."""
    from vlx.attribute import attribute
    from vlx.evaluate import EnergyPointingGame
    from vlx.types import AttributionMap, ClassTarget

    suite, _ = small_suite
    epg = EnergyPointingGame()
    margins = []
    for item in suite.items[:3]:
        cam = attribute(effnet, item.image, ClassTarget(item.target), "gradcam")
        e = epg(effnet, item.image, cam, item.target, gt_mask=item.mask).value
        rand = [epg(effnet, item.image, AttributionMap(v, v, "random", ClassTarget(item.target)), item.target,
                    gt_mask=item.mask).value
                for v in (_smooth_random_map(item.mask.shape, s) for s in range(5))]
        assert e > max(rand) + 0.2, (item.id, e, rand)
        margins.append(e - float(np.mean(rand)))
    assert np.mean(margins) > 0.35, margins
