"""The leaderboard loop (vlx/evaluate/leaderboard.py) and its renderers (vlx/evaluate/tables.py),
called directly on hand-made rows and a planted CNN with soft logits: every cell, option, order,
mean and one-line message is written out by hand here, or measured by calling the method and the
metric directly (not through the grid)."""

from __future__ import annotations

import csv
import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import vlx.attribute
import vlx.evaluate.leaderboard as lb
from vlx.errors import UsageError
from vlx.evaluate import tables
from vlx.evaluate.leaderboard import (
    GridItem, GridRow, Leaderboard, MethodScore, one_line, resolve_methods, resolve_metrics, run_grid, run_leaderboard,
    summarise,
)
from vlx.image import from_array
from vlx.models.classifier import ImageClassifier, Preprocess
from vlx.registry import METHODS
from vlx.testing.planted import PlantedCNN
from vlx.types import ClassTarget

NAN = float("nan")
LABELS = ["cat", "dog", "cup"]


class SoftPlanted(PlantedCNN):
    """The planted CNN with soft logits (top-1 probability ~0.47); an all-white input raises."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.flatten(1).amin(1) == 1).any():
            raise ValueError("planted failure\nsecond line")
        return super().forward(x) * 0.002


@pytest.fixture(scope="module")
def clf():
    return ImageClassifier(SoftPlanted("top-left", 32, 3, seed=0).eval(), "planted:soft", "soft planted CNN", LABELS,
                           Preprocess(size=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)), torch.device("cpu"))


def noise(seed, id, hw=(32, 32)):
    return from_array(np.random.default_rng(seed).integers(0, 256, (*hw, 3), dtype=np.uint8), id=id)


QUAD = np.zeros((32, 32), bool)
QUAD[:16, :16] = True


# ---- resolve_*, one_line --------------------------------------------------------------------

def test_resolve_methods():
    every = METHODS.names()
    assert len(every) == 18
    assert resolve_methods(None) == every and resolve_methods("all") == every and resolve_methods(["all"]) == every
    assert resolve_methods(" gradcam , saliency,,") == ["gradcam", "saliency"]
    assert resolve_methods(("rise",)) == ["rise"]
    with pytest.raises(UsageError, match="unknown method 'all'"):
        resolve_methods(["all", "rise"])
    for empty in ("", " , ", []):
        with pytest.raises(UsageError, match=r"^no method named; pass --methods gradcam,rise,\.\.\. or --methods all\.$"):
            resolve_methods(empty)
    with pytest.raises(UsageError, match="unknown method 'gradcamm'"):
        resolve_methods("saliency,gradcamm")


def test_resolve_metrics():
    assert resolve_metrics(None, ("deletion", "insertion")) == ["deletion", "insertion"]
    assert resolve_metrics(" road , deletion ,", ()) == ["road", "deletion"]
    assert resolve_metrics(["road"], ("deletion",)) == ["road"]
    for empty in ("", " , ", []):
        with pytest.raises(UsageError, match=r"^no metric named; pass --metrics deletion,insertion,\.\.\.$"):
            resolve_metrics(empty, ("deletion",))
    with pytest.raises(UsageError, match="unknown metric 'delet'"):
        resolve_metrics("delet", ())
    with pytest.raises(UsageError, match="unknown metric 'nope'"):
        resolve_metrics(None, ("nope",))


@pytest.mark.parametrize("exc, text", [
    (ValueError("first\nsecond"), "ValueError: first"),
    (ValueError("  padded  \n"), "ValueError: padded"),
    (ValueError(""), "ValueError"),
    (RuntimeError("ends with a colon:"), "RuntimeError: ends with a colon"),
    (KeyError("k"), "KeyError: 'k'"),
    (ValueError("code X"), "ValueError: code X"),
])
def test_one_line(exc, text):
    assert one_line(exc) == text


# ---- run_grid -------------------------------------------------------------------------------

def direct(clf, image, target, method, metrics, gt=None, method_opts=None, metric_opts=None):
    """The method and each metric called one by one, outside the grid."""
    from vlx.registry import METRICS

    m = vlx.attribute.get_method(method, **(method_opts or {}))
    amap = vlx.attribute.attribute(clf, image, ClassTarget(target, LABELS[target]), m)
    return {k: METRICS.get(k)(**(metric_opts or {}).get(k, {}))(clf, image, amap, target, gt_mask=gt) for k in metrics}


def test_run_grid_rows_values_curves_and_order(clf):
    a, b = noise(0, "a"), noise(1, "b", (40, 48))
    top_b = int(torch.softmax(clf.module(clf.to_input(b)), -1).argmax())
    seen = []
    opts = {"deletion": {"steps": 4}, "insertion": {"steps": 6}, "road": {"percent": 10}}
    rows = run_grid(clf, [GridItem(a, 2, QUAD), GridItem(b)], ["saliency", "occlusion"],
                    ["deletion", "insertion"], {"occlusion": {"window": 8, "stride": 8}}, opts, None, seen.append)
    assert seen == rows
    assert [(r.image, r.method, r.target, r.label, r.error) for r in rows] == [
        ("a", "saliency", 2, "cup", None), ("b", "saliency", top_b, LABELS[top_b], None),
        ("a", "occlusion", 2, "cup", None), ("b", "occlusion", top_b, LABELS[top_b], None)]
    for r in rows:
        img, t = (a, 2) if r.image == "a" else (b, top_b)
        want = direct(clf, img, t, r.method, ["deletion", "insertion"],
                      method_opts={"window": 8, "stride": 8} if r.method == "occlusion" else None, metric_opts=opts)
        assert r.values == {k: v.value for k, v in want.items()}
        assert list(r.values) == ["deletion", "insertion"]
        for k in ("deletion", "insertion"):
            assert r.curves[k] == (list(want[k].details["fractions"]), list(want[k].details["curve"]))
        assert len(r.curves["deletion"][0]) == 5 and len(r.curves["insertion"][0]) == 7
        assert r.seconds > 0 and not math.isnan(r.seconds)


def test_run_grid_method_built_once_per_method_and_caps(clf, monkeypatch):
    built = []
    real = vlx.attribute.get_method

    def counting(name, **kw):
        built.append((name, kw))
        return real(name, **kw)

    monkeypatch.setattr(vlx.attribute, "get_method", counting)
    items = [GridItem(noise(i, f"i{i}"), 0) for i in range(3)]
    rows = run_grid(clf, items, ["saliency", "occlusion"], ["sparseness"], {"occlusion": {"window": 16, "stride": 16}},
                    None, {"occlusion": 2, "gradcam": 1})
    assert built == [("saliency", {}), ("occlusion", {"window": 16, "stride": 16})]
    assert [(r.image, r.method) for r in rows] == [("i0", "saliency"), ("i1", "saliency"), ("i2", "saliency"),
                                                   ("i0", "occlusion"), ("i1", "occlusion")]
    assert all(r.curves == {} and set(r.values) == {"sparseness"} for r in rows)


def test_run_grid_keeps_only_curves_with_fractions(clf):
    it = GridItem(noise(0, "a"), 0)
    (row,) = run_grid(clf, [it], ["saliency"], ["road-morf"], None, {"road-morf": {"percentages": (10, 50)}})
    want = direct(clf, it.image, 0, "saliency", ["road-morf"], metric_opts={"road-morf": {"percentages": (10, 50)}})
    assert row.error is None and row.values == {"road-morf": want["road-morf"].value} and row.curves == {}


def test_run_grid_records_one_line_errors_and_goes_on(clf):
    white = from_array(np.full((32, 32, 3), 255, np.uint8), id="white")
    seen = []
    rows = run_grid(clf, [GridItem(white), GridItem(noise(0, "a"), 1)], ["saliency"], ["deletion"],
                    metric_options={"deletion": {"steps": 2}}, on_row=seen.append)
    assert rows == seen
    assert (rows[0].image, rows[0].error, rows[0].values, rows[0].target, rows[0].label) == (
        "white", "ValueError: planted failure", {}, -1, "")
    assert math.isnan(rows[0].seconds)
    assert rows[1].error is None and rows[1].target == 1 and set(rows[1].values) == {"deletion"}
    with pytest.raises(ValueError, match="planted failure"):
        run_grid(clf, [GridItem(white)], ["saliency"], ["deletion"], strict=True)
    # a bad method option fails every row of that method, each with its own line
    rows = run_grid(clf, [GridItem(noise(0, "a"), 0), GridItem(noise(1, "b"), 0)], ["occlusion", "saliency"],
                    ["sparseness"], {"occlusion": {"wndow": 3}})
    assert [r.error is not None for r in rows] == [True, True, False, False]
    assert rows[0].error.startswith("UsageError: ") and "wndow" in rows[0].error and "\n" not in rows[0].error


def test_run_grid_needs_masks_for_localisation(clf):
    items = [GridItem(noise(0, "a"), 0, QUAD), GridItem(noise(1, "b"), 0)]
    with pytest.raises(UsageError, match=r"^pointing-game, energy-pointing-game need a ground-truth mask, which plain "
                                         r"images lack; drop them or use --suite localisation\.$"):
        run_grid(clf, items, ["saliency"], ["deletion", "pointing-game", "energy-pointing-game"])
    rows = run_grid(clf, items[:1], ["saliency"], ["pointing-game", "energy-pointing-game"])
    want = direct(clf, items[0].image, 0, "saliency", ["pointing-game", "energy-pointing-game"], gt=QUAD)
    assert rows[0].values == {k: v.value for k, v in want.items()} and rows[0].curves == {}


# ---- summarise ------------------------------------------------------------------------------

def test_summarise_by_hand():
    rows = [
        GridRow("a", "m1", values={"x": 0.2, "y": 1.0}, seconds=1.0,
                curves={"deletion": ([0.0, 0.5, 1.0], [1.0, 0.5, 0.0]), "insertion": ([0.0, 1.0], [0.0, 1.0])}),
        GridRow("b", "m1", values={"x": 0.6, "y": 0.0}, seconds=3.0,
                curves={"deletion": ([0.0, 0.5, 1.0], [0.5, 0.5, 0.5]), "insertion": ([0.0, 0.5, 1.0], [0.0, 0.5, 1.0])}),
        GridRow("c", "m1", error="E: one"),
        GridRow("a", "m2", error="E: two"),
        GridRow("b", "m2", error="E: one"),
        GridRow("c", "m2", error="E: two"),
        GridRow("a", "m3", values={"x": 0.5, "y": 0.25}, seconds=2.0, curves={"insertion": ([0.0, 1.0], [0.2, 0.4])}),
        GridRow("a", "m4", error=""),
    ]
    s1, s2, s3, s4 = summarise(rows, ["x", "y"], {"m1": {"k": 1}})
    assert s4.failed == 1 and s4.errors == ("",)
    assert (s1.method, s1.means, s1.seconds, s1.n, s1.failed, s1.options, s1.errors) == (
        "m1", {"x": 0.4, "y": 0.5}, 2.0, 2, 1, {"k": 1}, ("E: one",))
    assert s1.curves == {"deletion": ([0.0, 0.5, 1.0], [0.75, 0.5, 0.25])}   # insertion: lengths differ, none
    assert s2.method == "m2" and s2.n == 0 and s2.failed == 3 and s2.errors == ("E: two", "E: one")
    assert math.isnan(s2.means["x"]) and math.isnan(s2.means["y"]) and math.isnan(s2.seconds) and s2.curves == {}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # all failed: NaN without "mean of empty slice" warnings
        (only,) = summarise(rows[3:6], ["x"], {})
    assert math.isnan(only.means["x"]) and math.isnan(only.seconds)
    assert s2.options == {} and s3.errors == () and s3.failed == 0
    assert s3.curves == {"insertion": ([0.0, 1.0], [0.2, 0.4])} and s3.means == {"x": 0.5, "y": 0.25}


# ---- run_leaderboard ------------------------------------------------------------------------

class Item:
    def __init__(self, image, target, mask):
        self.image, self.target, self.mask = image, target, mask


def test_run_leaderboard_sorts_and_passes_settings(monkeypatch, clf):
    calls = []
    means = {"saliency": 0.3, "rise": NAN, "lime": 0.1, "gradcam": 0.5}

    def fake_grid(model, grid, names, metrics, opts, mopts, caps, on_row, strict):
        calls.append(dict(grid=grid, names=names, metrics=metrics, opts=opts, mopts=mopts, caps=caps, on_row=on_row,
                          strict=strict))
        return [GridRow("i", n, values={m: means[n] for m in metrics}, seconds=1.0) for n in names]

    monkeypatch.setattr(lb, "run_grid", fake_grid)
    clock = iter([100.0, 112.375])                                          # the wall time: 12.375 s
    monkeypatch.setattr(lb.time, "perf_counter", lambda: next(clock))
    mask = np.ones((2, 2), bool)
    items = [Item("img0", 4, mask)]
    names = ["saliency", "rise", "lime", "gradcam"]
    board = run_leaderboard(clf, items, names, ["deletion", "insertion"], light=True,
                            on_row=print, settings={"suite": "s1", "model": "overridden"}, strict=True)
    assert [s.method for s in board.scores] == ["lime", "saliency", "gradcam", "rise"]  # deletion: lower first, NaN last
    assert board.metrics == ("deletion", "insertion") and [r.method for r in board.rows] == names
    (c,) = calls
    assert c["grid"] == [GridItem("img0", 4, mask)] and c["names"] == names
    assert c["metrics"] == ["deletion", "insertion"] and c["strict"] is True and c["on_row"] is print
    assert c["opts"] == {"saliency": {}, "rise": {"n_masks": 250}, "lime": {"n_samples": 64}, "gradcam": {}}
    assert c["caps"] == {}
    assert c["mopts"] == {"deletion": {"steps": 16, "batch_size": 17}, "insertion": {"steps": 16, "batch_size": 17}}
    st = dict(board.settings)
    assert st.pop("wall_seconds") == 12.4                                   # rounded to 0.1 s
    monkeypatch.undo()
    monkeypatch.setattr(lb, "run_grid", fake_grid)
    assert st == {"suite": "s1", "model": "planted:soft", "items": 1, "metrics": ["deletion", "insertion"],
                  "metric_options": c["mopts"], "light": True, "item_caps": {}}
    board = run_leaderboard(clf, items, names, ["insertion"], light=False, metric_options={})
    assert [s.method for s in board.scores] == ["gradcam", "saliency", "lime", "rise"]  # insertion: higher first
    assert calls[1]["opts"] == {}
    assert calls[1]["mopts"] == {} and calls[1]["strict"] is False and calls[1]["on_row"] is None
    assert board.settings["light"] is False


def test_run_leaderboard_light_options_and_caps(monkeypatch, clf):
    calls = []
    monkeypatch.setattr(lb, "run_grid", lambda *a: calls.append(a) or [])
    names = ["scorecam", "rise", "gradcam", "occlusion"]
    board = run_leaderboard(clf, [], names, ("pointing-game",))
    _, _, _, metrics, opts, mopts, caps, _, strict = calls[0]
    assert opts == {"scorecam": {}, "rise": {"n_masks": 250}, "gradcam": {}, "occlusion": {"window": 56, "stride": 28}}
    assert caps == {"scorecam": 3} and metrics == ["pointing-game"] and strict is False
    assert board.settings["item_caps"] == {"scorecam": 3} and board.settings["light"] is True
    opts["rise"]["n_masks"] = 1                                              # copies: the table is untouched
    assert lb.LIGHT_OPTIONS["rise"] == {"n_masks": 250}
    run_leaderboard(clf, [], names, ("pointing-game",), light=False)
    assert calls[1][4] == {} and calls[1][6] == {}
    run_leaderboard(clf, [], None, ("pointing-game",))
    assert calls[2][2] == METHODS.names() and calls[2][6] == {"scorecam": 3, "ablationcam": 3}


def test_run_leaderboard_on_planted_items(clf):
    items = [Item(noise(i, f"i{i}"), 0, QUAD) for i in range(2)]
    steps = {"deletion": {"steps": 3}, "insertion": {"steps": 3}}
    board = run_leaderboard(clf, items, ["saliency", "gradcam"], metric_options=steps)
    for s in board.scores:
        per = [direct(clf, it.image, 0, s.method, lb.SUITE_METRICS, gt=QUAD, metric_opts=steps) for it in items]
        assert s.means == pytest.approx({k: np.mean([p[k].value for p in per]) for k in lb.SUITE_METRICS},
                                        rel=1e-12, abs=1e-15)
        assert s.curves["deletion"][1] == pytest.approx(
            np.mean([p["deletion"].details["curve"] for p in per], axis=0), rel=1e-12)
        assert s.n == 2 and s.failed == 0 and s.options == {}


# ---- tables: cells --------------------------------------------------------------------------

def test_arrows():
    assert [tables._arrow(m) for m in ("deletion", "insertion", "pointing-game", "road-morf", "complexity",
                                       "sparseness", "not-a-metric")] == ["↓", "↑", "↑", "↓", "↓", "↑", "↑"]


ROWS = [GridRow("a", "gradcam", 1, "dog", {"deletion": 0.25, "insertion": 0.5}, seconds=0.125),
        GridRow("b.png", "-", error="bad file"),
        GridRow("c", "rise", 0, "", {"insertion": 1 / 3}, seconds=NAN)]


def test_grid_table_by_hand():
    headers, body = tables.grid_table(ROWS, ["deletion", "insertion"])
    assert headers == ["image", "method", "target", "deletion ↓", "insertion ↑", "seconds", "error"]
    assert body == [["a", "gradcam", "dog", 0.25, 0.5, 0.125, None],
                    ["b.png", "-", None, None, None, None, "bad file"],
                    ["c", "rise", None, None, 1 / 3, None, None]]


def test_leaderboard_table_by_hand():
    scores = (MethodScore("rise", {"deletion": 0.125, "pointing-game": 1.0}, 2.5, 3, 0, {"n_masks": 250, "p": 0.5}),
              MethodScore("lime", {"deletion": 0.5, "pointing-game": 0.0}, 1.0, 2, 1, {"n_samples": 64},
                          ("ValueError: x", "ValueError: y")),
              MethodScore("gradcam", {"deletion": NAN, "pointing-game": NAN}, NAN, 0, 3, {}, ("E: z",)))
    headers, body = tables.leaderboard_table(Leaderboard(("deletion", "pointing-game"), scores, {}))
    assert headers == ["#", "method", "deletion ↓", "pointing-game ↑", "s/image", "n", "options"]
    assert body[0] == [1, "rise", 0.125, 1.0, 2.5, 3, "n_masks=250, p=0.5"]
    assert body[1] == [2, "lime", 0.5, 0.0, 1.0, 2, "n_samples=64; 1 failed: ValueError: x"]
    assert body[2][:2] == [3, "gradcam"] and math.isnan(body[2][2]) and body[2][4:] == [None, 0, "3 failed: E: z"]


def test_fmt_cells():
    assert [tables._fmt(c) for c in (None, NAN, 0.12345, 2.0, 0.0005, 7, "x")] == [
        "", "nan", "0.123", "2.000", "0.001", "7", "x"]


def test_markdown_and_csv_by_hand():
    headers = ["image", "a|b ↓", "n", "insertion ↑"]
    body = [["x|y", 0.1, 3, None], ["z", 1 / 3, None, NAN]]
    assert tables.to_markdown(headers, body) == (
        "| image | a\\|b ↓ | n | insertion ↑ |\n|---|---|---|---|\n| x\\|y | 0.100 | 3 |  |\n| z | 0.333 |  | nan |\n")
    assert tables.to_csv(headers, body) == ("image,a|b,n,insertion\nx|y,0.1,3,\nz,0.3333333333333333,,nan\n")
    assert tables.to_csv(["a", "b"], []) == "a,b\n"
    assert list(csv.reader(io.StringIO(tables.to_csv(["q"], [['say "hi", ok']])))) == [["q"], ['say "hi", ok']]


def test_rich_table_by_hand():
    from rich.console import Console

    t = tables.rich_table(["name", "v", "n", "mixed", "empty"],
                          [["a", 0.5, 1, "x", None], ["b", None, 2, 3, None]], title="T")
    assert t.title == "T" and t.box is None and t.header_style == "bold"
    assert [c.header for c in t.columns] == ["name", "v", "n", "mixed", "empty"]
    assert [c.justify for c in t.columns] == ["left", "right", "right", "left", "right"]
    assert all(c.overflow == "fold" for c in t.columns)
    assert [list(c._cells) for c in t.columns] == [["a", "b"], ["0.500", ""], ["1", "2"], ["x", "3"], ["", ""]]
    assert tables.rich_table(["h"], []).title is None
    con = Console(record=True, width=20, file=io.StringIO())
    con.print(tables.rich_table(["long"], [["abcdefghijklmnopqrstuvwxyz0123"]]))
    shown = con.export_text()
    assert "abcdefghijklmnopqr" in shown and "stuvwxyz0123" in shown and "…" not in shown   # folded, never cut


# ---- tables: JSON ---------------------------------------------------------------------------

def test_grid_json_by_hand():
    rows = ROWS + [GridRow("d", "x", 2, "cup", {"deletion": math.inf, "insertion": NAN}, seconds=1.5)]
    text = tables.grid_json(rows, ["deletion", "insertion"], {"model": "m", "images": ["a"]})
    want = {"settings": {"model": "m", "images": ["a"]},
            "metrics": [{"name": "deletion", "higher_is_better": False}, {"name": "insertion", "higher_is_better": True}],
            "rows": [{"image": "a", "method": "gradcam", "target": 1, "label": "dog",
                      "values": {"deletion": 0.25, "insertion": 0.5}, "seconds": 0.125, "error": None},
                     {"image": "b.png", "method": "-", "target": -1, "label": "", "values": {}, "seconds": None,
                      "error": "bad file"},
                     {"image": "c", "method": "rise", "target": 0, "label": "", "values": {"insertion": 1 / 3},
                      "seconds": None, "error": None},
                     {"image": "d", "method": "x", "target": 2, "label": "cup",
                      "values": {"deletion": None, "insertion": None}, "seconds": 1.5, "error": None}]}
    assert text == json.dumps(want, indent=2) + "\n"
    with pytest.raises(TypeError, match=r"^not JSON-serialisable: ndarray$"):
        tables.grid_json([], [], {"bad": np.zeros(2)})


def test_leaderboard_json_by_hand():
    scores = (MethodScore("rise", {"deletion": 0.125}, 2.5, 3, 0, {"n_masks": 250}),
              MethodScore("lime", {"deletion": NAN}, NAN, 0, 2, {}, ("E: a", "E: b")),
              MethodScore("x", {"deletion": -math.inf}, math.inf, 1, 0, {}))
    text = tables.leaderboard_json(Leaderboard(("deletion",), scores, {"suite": "s", "items": 3}))
    want = {"settings": {"suite": "s", "items": 3}, "metrics": [{"name": "deletion", "higher_is_better": False}],
            "scores": [{"method": "rise", "means": {"deletion": 0.125}, "seconds": 2.5, "n": 3, "failed": 0,
                        "options": {"n_masks": 250}, "errors": []},
                       {"method": "lime", "means": {"deletion": None}, "seconds": None, "n": 0, "failed": 2,
                        "options": {}, "errors": ["E: a", "E: b"]},
                       {"method": "x", "means": {"deletion": None}, "seconds": None, "n": 1, "failed": 0,
                        "options": {}, "errors": []}]}
    assert text == json.dumps(want, indent=2) + "\n"
    doc = json.loads(tables.leaderboard_json(Leaderboard(("insertion", "road-morf"), (), {})))
    assert doc["metrics"] == [{"name": "insertion", "higher_is_better": True},
                              {"name": "road-morf", "higher_is_better": False}]
    with pytest.raises(TypeError, match=r"^not JSON-serialisable: set$"):
        tables.leaderboard_json(Leaderboard((), (), {"bad": {1}}))


def test_num():
    assert [tables._num(v) for v in (NAN, math.inf, -math.inf, 0.0, -2.5)] == [None, None, None, 0.0, -2.5]
    v = tables._num(np.float32(0.5))
    assert v == 0.5 and type(v) is float


def test_render():
    h, b = ["a ↑"], [[0.5]]
    assert tables.render("markdown", h, b, "J") == "| a ↑ |\n|---|\n| 0.500 |\n"
    assert tables.render("csv", h, b, "J") == "a\n0.5\n"
    assert tables.render("json", h, b, "J") == "J"
    with pytest.raises(UsageError, match=r"^unknown format 'table'; choose one of table, markdown, csv, json\.$"):
        tables.render("table", h, b, "J")


# ---- tables: curves -------------------------------------------------------------------------

def px(im, x, y):
    return tuple(int(v) for v in im[int(y), int(x)])


def test_curves_png_layout_by_hand(tmp_path):
    """Plot area: x from 52 to 640-170=470 (418 px), y from 30 to 420-40=380 (350 px)."""
    curves = {"down": ([0.0, 1.0], [1.0, 0.0]), "flat": ([0.0, 0.5, 1.0], [0.5, 0.5, 0.5]),
              "clipped": ([0.0, 1.0], [1.7, 1.7])}
    p = tables.curves_png(curves, tmp_path / "sub" / "dir" / "c.png", "title")
    assert p == tmp_path / "sub" / "dir" / "c.png"
    im = np.asarray(Image.open(p).convert("RGB"))
    assert im.shape == (420, 640, 3)
    pal = tables.PALETTE
    assert px(im, 52, 200) == (0, 0, 0) and px(im, 470, 200) == (0, 0, 0)          # the frame
    assert px(im, 300, 30) != (255, 255, 255) and px(im, 300, 380) == (0, 0, 0)
    assert px(im, 300, 30 + 0.25 * 350) == (230, 230, 230)                          # grid line at 0.75
    assert px(im, 150, 30 + 0.75 * 350) == (230, 230, 230)                          # and at 0.25
    assert px(im, 52 + 0.5 * 418, 30 + 0.5 * 350) in (pal[0], pal[1])               # both cross the centre
    assert px(im, 52 + 0.25 * 418, 30 + 0.25 * 350) == pal[0]                       # (0.25, 0.75) on "down"
    assert px(im, 52 + 0.8 * 418, 30 + 0.5 * 350) == pal[1]                         # "flat" at 0.5
    assert px(im, 52 + 0.5 * 418, 31) == pal[2]                                     # "clipped" drawn at 1.0
    for i in range(3):                                                              # legend swatches
        assert px(im, 470 + 19, 30 + 4 + 14 * i + 6) == pal[i]
    assert px(im, 470 + 19, 30 + 4 + 14 * 3 + 6) == (255, 255, 255)
    assert (im[:20, 52:200] != 255).any() and (im[:20, 300:] == 255).all()        # title at the top left
    assert (im[400:, 240:400] != 255).any()                                         # the x-axis caption


def test_curves_png_palette_wraps_and_size(tmp_path):
    curves = {f"m{i}": ([0.0, 1.0], [i / 12, i / 12]) for i in range(11)}
    im = np.asarray(Image.open(tables.curves_png(curves, tmp_path / "c.png", "t", size=(500, 400))).convert("RGB"))
    assert im.shape == (400, 500, 3)
    pw, ph = 500 - 52 - 170, 400 - 30 - 40
    assert px(im, 52 + pw + 19, 30 + 4 + 14 * 10 + 6) == tables.PALETTE[0]
    assert px(im, 52 + pw / 2, 30 + (1 - 10 / 12) * ph) == tables.PALETTE[0]       # the 11th curve, colour 1 again


def test_curves_png_legend_text_by_hand(tmp_path):
    """The legend's text: the label cut to 16 characters and the AUC to 3 decimals, drawn where
    PIL would draw it (compared with the same text drawn on a blank strip)."""
    from PIL import ImageDraw

    label = "a-very-long-method-name"
    p = tables.curves_png({label: ([0.0, 0.5, 1.0], [1.0, 1.0, 0.0])}, tmp_path / "c.png", "t")
    im = np.asarray(Image.open(p).convert("RGB"))
    strip = Image.new("RGB", (640, 420), "white")
    ImageDraw.Draw(strip).text((52 + 418 + 32, 34), "a-very-long-meth 0.750", fill="black")
    want = np.asarray(strip)[34:48, 502:640]
    assert np.array_equal(im[34:48, 502:640], want)


def test_write_curve_pngs(tmp_path):
    rows = [GridRow("a/b c", "m1", curves={"deletion": ([0.0, 1.0], [1.0, 0.0])}),
            GridRow("z", "m1", curves={"insertion": ([0.0, 1.0], [0.0, 1.0])}),
            GridRow("a/b c", "m2", curves={"deletion": ([0.0, 1.0], [0.5, 0.0]), "insertion": ([0.0, 1.0], [0.0, 1.0])}),
            GridRow("q", "m1", error="x")]
    paths = tables.write_curve_pngs(rows, tmp_path / "new")
    assert [p.name for p in paths] == ["a_b_c_deletion.png", "a_b_c_insertion.png", "z_insertion.png"]
    assert all(p.parent == tmp_path / "new" and p.exists() for p in paths)
    im = np.asarray(Image.open(paths[0]).convert("RGB"))
    assert px(im, 489, 40) == tables.PALETTE[0] and px(im, 489, 54) == tables.PALETTE[1]   # two methods
    im = np.asarray(Image.open(paths[1]).convert("RGB"))
    assert px(im, 489, 40) == tables.PALETTE[0] and px(im, 489, 54) == (255, 255, 255)     # m2 only


def test_safe_names():
    assert tables._safe("a b/c\\d:e.f-g_h") == "a_b_c_d_e.f-g_h"
    assert tables._safe("été") == "été" and tables._safe("") == ""


def test_curves_png_pixel_exact_against_the_layout_drawn_by_hand(tmp_path):
    """The whole chart, drawn again here from its layout: margins 52 / 170 / 30 / 40 px, light
    grid lines and tick labels at quarters, a black frame, title top left, x caption at the
    bottom, curves (clipped to [0, 1]) 2 px wide, legend swatches 3 px wide with the label cut
    to 16 characters and the trapezoid AUC (numpy) to 3 decimals."""
    from PIL import ImageDraw

    curves = {"a-very-long-method-name": ([0.0, 0.25, 1.0], [0.9, 0.4, 0.1]), "flat": ([0.0, 1.0], [1.3, -0.2])}
    w, h = 601, 400                                     # an odd plot width (379 px): the caption at 189 - 60
    got = np.asarray(Image.open(tables.curves_png(curves, tmp_path / "c.png", "my title", size=(w, h))))
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    L, T, pw, ph = 52, 30, w - 52 - 170, h - 30 - 40
    xy = lambda fx, py: (L + fx * pw, T + (1 - py) * ph)  # noqa: E731
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        d.line([xy(0, t), xy(1, t)], fill=(230, 230, 230))
        d.text((L - 34, xy(0, t)[1] - 6), f"{t:.2f}", fill="black")
        d.text((xy(t, 0)[0] - 10, T + ph + 6), f"{t:.2f}", fill="black")
    d.rectangle([L, T, L + pw, T + ph], outline="black")
    d.text((L, 8), "my title", fill="black")
    d.text((L + pw // 2 - 60, h - 16), "fraction of pixels perturbed", fill="black")
    aucs = ["0.350", "0.550"]        # trapezoids: 0.25*(0.9+0.4)/2 + 0.75*(0.4+0.1)/2; (1.3-0.2)/2 unclipped
    assert f"{np.trapezoid([0.9, 0.4, 0.1], [0.0, 0.25, 1.0]):.3f}" == aucs[0]
    for i, (xs, ys) in enumerate(curves.values()):
        colour = tables.PALETTE[i]
        d.line([xy(x, min(max(y, 0.0), 1.0)) for x, y in zip(xs, ys)], fill=colour, width=2)
        ly = T + 4 + 14 * i
        d.line([(L + pw + 10, ly + 6), (L + pw + 28, ly + 6)], fill=colour, width=3)
        d.text((L + pw + 32, ly), f"{['a-very-long-meth', 'flat'][i]} {aucs[i]}", fill="black")
    assert np.array_equal(got, np.asarray(im))


def test_write_curve_pngs_titles_and_curves(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(tables, "curves_png", lambda c, p, t: drawn.append((c, p, t)) or p)
    d1, i2 = ([0.0, 1.0], [1.0, 0.0]), ([0.0, 1.0], [0.0, 1.0])
    rows = [GridRow("cat", "m1", curves={"deletion": d1}), GridRow("cat", "m2", curves={"deletion": d1, "insertion": i2})]
    tables.write_curve_pngs(rows, str(tmp_path))
    assert drawn == [({"m1": d1, "m2": d1}, tmp_path / "cat_deletion.png",
                      "deletion - cat: target probability (AUC in the legend)"),
                     ({"m2": i2}, tmp_path / "cat_insertion.png",
                      "insertion - cat: target probability (AUC in the legend)")]


def test_json_is_strict():
    """NaN anywhere the renderers do not turn into null is refused, not written as bare NaN."""
    with pytest.raises(ValueError, match="Out of range float"):
        tables.grid_json([], [], {"x": NAN})
    with pytest.raises(ValueError, match="Out of range float"):
        tables.leaderboard_json(Leaderboard((), (), {"x": NAN}))
