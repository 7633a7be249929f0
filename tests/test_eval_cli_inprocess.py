"""`vlx eval`'s body (vlx/evaluate/cli_eval.py) called in-process, so mutation testing sees it:
the options it builds, the rows, files, tables and one-line errors it produces, and the suite
footer, each checked against values written out by hand or measured by calling the grid loop
directly with the options the command should pass. A planted CNN with soft logits stands in for
the model (fast; probabilities near 0.47, so deletion/insertion values move with the step count);
the suite builder is replaced by a two-item planted suite."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vlx.evaluate.suite as suite_mod
import vlx.models
from vlx.errors import InputError, UsageError
from vlx.evaluate import cli_eval
from vlx.evaluate.leaderboard import GridItem, GridRow, Leaderboard, MethodScore, run_grid
from vlx.evaluate.suite import Suite, SuiteItem
from vlx.image import load_image
from vlx.models.classifier import ImageClassifier, Preprocess
from vlx.testing.planted import PlantedCNN

LABELS = ["cat", "dog", "cup"]


class SoftPlanted(PlantedCNN):
    """The planted CNN with its logits scaled down (no saturated softmax); an all-white input
    raises, so one image can make every method fail."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.flatten(1).amin(1) == 1).any():
            raise ValueError("planted failure")
        return super().forward(x) * 0.002


@pytest.fixture(scope="module")
def clf():
    m = SoftPlanted("top-left", 32, 3, seed=0).eval()
    return ImageClassifier(m, "planted:soft", "soft planted CNN", LABELS,
                           Preprocess(size=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)), torch.device("cpu"))


@pytest.fixture
def loads(monkeypatch, clf):
    """``vlx.models.load_classifier`` replaced: records its arguments, returns the planted model."""
    calls = []

    def fake(spec, device):
        calls.append((spec, device))
        return clf

    monkeypatch.setattr(vlx.models, "load_classifier", fake)
    return calls


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("inproc-images")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(d / "a.png")
    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(d / "b.png")
    Image.fromarray(np.full((32, 32, 3), 255, np.uint8)).save(d / "white.png")
    (d / "broken.png").write_text("not an image\n")
    return d


def grid_values(clf, paths, methods, steps, target=None):
    """What the command should report: the grid loop run directly with ``steps``-step curves."""
    opts = {m: {"steps": steps} for m in ("deletion", "insertion")}
    rows = run_grid(clf, [GridItem(load_image(p), target) for p in paths], methods, ["deletion", "insertion"],
                    None, opts)
    return {(r.image, r.method): r.values for r in rows}


# ---- _curve_options -------------------------------------------------------------------------

def test_curve_options_by_hand():
    co = cli_eval._curve_options
    assert co(["deletion", "insertion"], None, {}) == {}
    assert co(["deletion", "insertion"], 4, {}) == {"deletion": {"steps": 4, "batch_size": 5},
                                                    "insertion": {"steps": 4, "batch_size": 5}}
    assert co(["insertion"], 4, {}) == {"insertion": {"steps": 4, "batch_size": 5}}
    assert co(["deletion"], 4, {}) == {"deletion": {"steps": 4, "batch_size": 5}}
    assert co(["pointing-game"], 4, {}) == {}
    # the batch is the whole curve up to 64 composites
    assert co(["deletion"], 62, {})["deletion"]["batch_size"] == 63
    assert co(["deletion"], 63, {})["deletion"]["batch_size"] == 64
    assert co(["deletion"], 64, {})["deletion"]["batch_size"] == 64
    assert co(["deletion"], 500, {})["deletion"]["batch_size"] == 64


def test_curve_options_keep_base_options_of_the_chosen_metrics_only():
    base = {"deletion": {"steps": 16, "batch_size": 17, "baseline": "zeros"}, "road": {"percent": 10},
            "insertion": {"steps": 16, "batch_size": 17}}
    frozen = json.dumps(base, sort_keys=True)
    co = cli_eval._curve_options
    assert co(["deletion", "road"], None, base) == {"deletion": {"steps": 16, "batch_size": 17, "baseline": "zeros"},
                                                   "road": {"percent": 10}}
    assert co(["deletion", "road"], 100, base) == {"deletion": {"steps": 100, "batch_size": 64, "baseline": "zeros"},
                                                  "road": {"percent": 10}}
    out = co(["road"], None, base)
    out["road"]["percent"] = 99                      # a copy: the caller's base is never changed
    assert json.dumps(base, sort_keys=True) == frozen


# ---- _reporter and _write -------------------------------------------------------------------

def test_reporter_lines(capsys):
    said = []
    ok = GridRow(image="a", method="gradcam", values={"deletion": 0.12345, "insertion": 0.5}, seconds=1.234)
    bad = GridRow(image="b", method="rise", error="ValueError: boom")
    cli_eval._reporter(said.append)(ok)
    cli_eval._reporter(said.append)(bad)
    assert said == ["               gradcam  a    1.23 s  deletion 0.123  insertion 0.500"]
    assert capsys.readouterr().err == "vlx: error: b / rise: ValueError: boom\n"
    cli_eval._reporter(None)(ok)                      # quiet: nothing at all for a good row
    cli_eval._reporter(None)(bad)                     # errors are still reported
    cap = capsys.readouterr()
    assert cap.out == "" and cap.err == "vlx: error: b / rise: ValueError: boom\n"


def test_write_files_by_hand(tmp_path):
    headers, body = ["image", "deletion ↓"], [["a", 0.5], ["b|c", None]]
    cli_eval._write(tmp_path / "x" / "y", headers, body, '{"k": 1}\n')
    d = tmp_path / "x" / "y"
    assert sorted(p.name for p in d.iterdir()) == ["results.json", "table.csv", "table.md"]
    assert (d / "table.md").read_text() == "| image | deletion ↓ |\n|---|---|\n| a | 0.500 |\n| b\\|c |  |\n"
    assert (d / "table.csv").read_text() == "image,deletion\na,0.5\nb|c,\n"
    assert (d / "results.json").read_text() == '{"k": 1}\n'
    cli_eval._write(None, headers, body, "{}")        # no folder: nothing written, no error


# ---- eval_images ----------------------------------------------------------------------------

def test_eval_images_csv_files_and_values(clf, loads, images, tmp_path):
    paths = [images / "a.png", images / "b.png"]
    out = tmp_path / "out"
    said = []
    text, table, failed = cli_eval.eval_images(paths, "my-spec", "cpu", "gradcam,saliency", None, "cup", 4, out,
                                               "csv", said.append)
    assert loads == [("my-spec", "cpu")] and table is None and failed == 0
    want = grid_values(clf, paths, ["gradcam", "saliency"], 4, target=2)
    assert grid_values(clf, paths[:1], ["gradcam"], 50, target=2)[("a", "gradcam")] != want[("a", "gradcam")]
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["image", "method", "target", "deletion", "insertion", "seconds", "error"]
    assert [(r["image"], r["method"], r["target"]) for r in rows] == [
        ("a", "gradcam", "cup"), ("b", "gradcam", "cup"), ("a", "saliency", "cup"), ("b", "saliency", "cup")]
    for r in rows:
        v = want[(r["image"], r["method"])]
        assert float(r["deletion"]) == v["deletion"] and float(r["insertion"]) == v["insertion"]
        assert r["error"] == ""
    assert (out / "table.csv").read_text() == text
    md = (out / "table.md").read_text().splitlines()
    assert md[0] == "| image | method | target | deletion ↓ | insertion ↑ | seconds | error |"
    assert md[1] == "|---|---|---|---|---|---|---|" and len(md) == 6
    v = want[("b", "saliency")]
    assert md[5].startswith(f"| b | saliency | cup | {v['deletion']:.3f} | {v['insertion']:.3f} | ")
    doc = json.loads((out / "results.json").read_text())
    assert doc["settings"] == {"model": "planted:soft", "methods": ["gradcam", "saliency"],
                               "metrics": ["deletion", "insertion"],
                               "metric_options": {"deletion": {"steps": 4, "batch_size": 5},
                                                  "insertion": {"steps": 4, "batch_size": 5}},
                               "images": [str(p) for p in paths]}
    assert [(r["target"], r["label"]) for r in doc["rows"]] == [(2, "cup")] * 4
    assert sorted(p.name for p in (out / "curves").iterdir()) == [
        "a_deletion.png", "a_insertion.png", "b_deletion.png", "b_insertion.png"]
    html = (out / "report.html").read_text()
    assert "<title>vlx eval: 2 method(s) on 2 image(s)</title>" in html
    assert ">model planted:soft<" in html and ">metrics deletion, insertion<" in html
    assert html.count("data:image/png;base64,") == 4
    assert '<p class="muted">' not in html             # no notes paragraph for plain images
    # one progress line per row, in grid order, with the row's own numbers
    secs = {(r["image"], r["method"]): float(r["seconds"]) for r in rows}
    assert said == [f"{m:>22}  {i}  {secs[(i, m)]:6.2f} s  deletion {want[(i, m)]['deletion']:.3f}  "
                    f"insertion {want[(i, m)]['insertion']:.3f}" for m in ("gradcam", "saliency") for i in ("a", "b")]


def test_eval_images_defaults_and_each_format(clf, loads, images, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = images / "a.png"
    top = int(torch.softmax(clf.module(clf.to_input(load_image(p))), -1).argmax())
    want = grid_values(clf, [p], ["gradcam"], 3)
    text, table, failed = cli_eval.eval_images([p], "m", "cpu", None, None, None, 3, None, "json", None)
    doc = json.loads(text)
    assert failed == 0 and table is None
    (row,) = doc["rows"]                              # default method gradcam, default metrics, top-1 class
    assert row["method"] == "gradcam" and row["target"] == top and row["label"] == LABELS[top]
    assert row["values"] == want[("a", "gradcam")]
    assert doc["metrics"] == [{"name": "deletion", "higher_is_better": False},
                              {"name": "insertion", "higher_is_better": True}]
    assert list(tmp_path.iterdir()) == []            # no --out: nothing written anywhere
    md, table, _ = cli_eval.eval_images([p], "m", "cpu", "gradcam", "insertion", None, 3, None, "markdown", None)
    lines = md.splitlines()
    assert table is None and lines[0] == "| image | method | target | insertion ↑ | seconds | error |"
    assert lines[2].startswith(f"| a | gradcam | {LABELS[top]} | {want[('a', 'gradcam')]['insertion']:.3f} | ")
    text, table, failed = cli_eval.eval_images([p], "m", "cpu", "saliency", "deletion", None, 3, None, "table", None)
    assert text == "" and failed == 0
    assert [c.header for c in table.columns] == ["image", "method", "target", "deletion ↓", "seconds", "error"]
    assert [c.justify for c in table.columns] == ["left", "left", "left", "right", "right", "right"]  # an empty column counts as numeric
    with pytest.raises(UsageError, match="unknown format 'xml'"):
        cli_eval.eval_images([p], "m", "cpu", "saliency", "deletion", None, 3, None, "xml", None)


def test_eval_images_steps_default_is_the_metrics_own(clf, loads, images):
    text, _, _ = cli_eval.eval_images([images / "a.png"], "m", "cpu", "saliency", "deletion", None, None, None,
                                      "json", None)
    doc = json.loads(text)
    assert doc["settings"]["metric_options"] == {}
    assert doc["rows"][0]["values"]["deletion"] == grid_values(clf, [images / "a.png"], ["saliency"], 50)[
        ("a", "saliency")]["deletion"]


def test_eval_images_unreadable_and_failing_images(clf, loads, images, tmp_path, capsys):
    paths = [images / "broken.png", images / "white.png", images / "a.png"]
    text, table, failed = cli_eval.eval_images(paths, "m", "cpu", "saliency", None, None, 3, tmp_path, "csv", None)
    rows = list(csv.DictReader(io.StringIO(text)))
    msg = f"{images / 'broken.png'}: not an image file vlx can read (PIL does not recognise it)."
    assert [(r["image"], r["method"], r["error"]) for r in rows] == [
        ("broken.png", "-", msg), ("white", "saliency", "ValueError: planted failure"), ("a", "saliency", "")]
    assert failed == 2
    assert capsys.readouterr().err.splitlines() == [f"vlx: error: broken.png / -: {msg}",
                                                    "vlx: error: white / saliency: ValueError: planted failure"]
    doc = json.loads((tmp_path / "results.json").read_text())
    assert [r["error"] for r in doc["rows"]] == [msg, "ValueError: planted failure", None]
    assert sorted(p.name for p in (tmp_path / "curves").iterdir()) == ["a_deletion.png", "a_insertion.png"]
    assert "1 method(s) on 3 image(s)" in (tmp_path / "report.html").read_text()


def test_eval_images_error_lines_keep_the_first_line_trimmed(clf, loads, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "two\nlines.png"                 # a file name with a newline: the message has two lines
    bad.write_text("no image")
    lead = Path(" lead.png")                          # a relative name with a leading space: trimmed
    lead.write_text("no image")
    good = tmp_path / "a.png"
    Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(good)
    text, _, failed = cli_eval.eval_images([bad, lead, good], "m", "cpu", "saliency", None, None, 3, None, "json",
                                           None)
    assert failed == 2
    rows = json.loads(text)["rows"]
    assert rows[0]["error"] == str(tmp_path / "two")
    assert rows[1]["error"] == "lead.png: not an image file vlx can read (PIL does not recognise it)."
    assert capsys.readouterr().err.splitlines()[:2] == ["vlx: error: two", f"lines.png / -: {tmp_path / 'two'}"]


def test_eval_images_raises_for_a_single_bad_image_or_in_strict_mode(clf, loads, images):
    with pytest.raises(InputError, match="not an image file"):
        cli_eval.eval_images([images / "broken.png"], "m", "cpu", "saliency", None, None, 3, None, "csv", None)
    with pytest.raises(InputError, match="broken.png"):
        cli_eval.eval_images([images / "a.png", images / "broken.png"], "m", "cpu", "saliency", None, None, 3, None,
                             "csv", None, strict=True)
    with pytest.raises(ValueError, match="planted failure"):      # strict reaches the grid loop as well
        cli_eval.eval_images([images / "white.png", images / "a.png"], "m", "cpu", "saliency", None, None, 3, None,
                             "csv", None, strict=True)
    with pytest.raises(UsageError, match="ground-truth mask"):
        cli_eval.eval_images([images / "a.png"], "m", "cpu", "saliency", "pointing-game", None, 3, None, "csv", None)


def test_load_model_goes_through_load_classifier():
    with pytest.raises(UsageError, match=r"unknown model 'nope'"):
        cli_eval._load_model("nope", "cpu")


# ---- suite_footer ---------------------------------------------------------------------------

def board(settings, methods=()):
    scores = tuple(MethodScore(m, {}, 0.1, 1, 0, {}) for m in methods)
    return Leaderboard(("deletion",), scores, settings)


BASE = {"suite": "localisation-v1", "seed": 3, "items": 12, "folder": "/c/s", "model": "effnet-lite0",
        "wall_seconds": 7.5, "light": False, "item_caps": {}}
CURVE_LINE = ("deletion/insertion: {} steps, blur baseline; AUC of the target's probability. pointing game: 15 px "
              "tolerance. s/image: attribution time only.")


@pytest.mark.parametrize("mopts, steps", [
    ({"deletion": {"steps": 16, "batch_size": 17}, "insertion": {"steps": 9}}, 16),
    ({"insertion": {"steps": 9}}, 9),
    ({"deletion": {}, "insertion": {"steps": 9}}, 9),
    ({"deletion": {"batch_size": 4}}, 50),
    ({}, 50),
])
def test_suite_footer_full(mopts, steps):
    text = cli_eval.suite_footer(board({**BASE, "metric_options": mopts}))
    assert text == ("suite localisation-v1 (seed 3, 12 items, cache /c/s), model effnet-lite0, wall 7.5 s.\n"
                    + CURVE_LINE.format(steps) + "\n")


def test_suite_footer_light_names_only_the_methods_run():
    s = {**BASE, "metric_options": {}, "light": True, "item_caps": {"scorecam": 3, "ablationcam": 2}}
    text = cli_eval.suite_footer(board(s, ["saliency", "occlusion", "rise", "scorecam"]))
    assert text.splitlines()[2] == ("lighter suite settings (--full to lift): rise n_masks=250; occlusion window=56, "
                                    "stride=28; scorecam on 3 items, ablationcam on 2 items.")
    text = cli_eval.suite_footer(board({**s, "item_caps": {}}, ["lime"]))
    assert text.splitlines()[2] == "lighter suite settings (--full to lift): lime n_samples=64."
    assert text.endswith(".\n") and len(text.splitlines()) == 3


def test_suite_footer_without_the_suite_keys():
    s = {"items": 2, "model": "m", "wall_seconds": 0.0, "light": False, "item_caps": {}, "metric_options": {}}
    assert cli_eval.suite_footer(board(s)).splitlines()[0] == "suite None (seed None, 2 items, cache None), model m, wall 0.0 s."


# ---- eval_suite -----------------------------------------------------------------------------

@pytest.fixture
def planted_suite(monkeypatch, clf, tmp_path):
    """``build_suite`` replaced by two planted items (top-left box, class 0); records its arguments."""
    from vlx.image import from_array

    rng = np.random.default_rng(1)
    mask = np.zeros((32, 32), bool)
    mask[:16, :16] = True
    items = tuple(SuiteItem(f"item{i}", from_array(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), id=f"item{i}"),
                            mask, (0, 0, 16, 16), "box", "noise", 0, "cat", 0.5, (0,)) for i in range(2))
    calls = []

    def fake(model, n, seed, folder):
        calls.append((model, n, seed, folder))
        return Suite("localisation", "localisation-v1", seed, model.name, items, 5, tmp_path / "cache" / "x")

    monkeypatch.setattr(suite_mod, "build_suite", fake)
    return items, calls


def suite_means(clf, items, methods, steps, options):
    mets = ["pointing-game", "energy-pointing-game", "deletion", "insertion"]
    rows = run_grid(clf, [GridItem(it.image, it.target, it.mask) for it in items], methods, mets, options,
                    {m: {"steps": steps} for m in ("deletion", "insertion")})
    return {m: {k: float(np.mean([r.values[k] for r in rows if r.method == m])) for k in mets} for m in methods}


def test_eval_suite_json_and_files(clf, loads, planted_suite, tmp_path, monkeypatch):
    items, calls = planted_suite
    titles = []
    real_png = cli_eval.curves_png
    monkeypatch.setattr(cli_eval, "curves_png", lambda c, p, t: titles.append(t) or real_png(c, p, t))
    said = []
    out = tmp_path / "out"
    text, table, failed = cli_eval.eval_suite("localisation", "spec", "cpu", "saliency,occlusion", None, 3, 2, 4,
                                              tmp_path / "c", False, out, "json", said.append)
    assert loads == [("spec", "cpu")] and calls == [(clf, 2, 4, tmp_path / "c")]
    assert table is None and failed == 0
    assert said[0] == "building or loading the localisation suite (2 items, seed 4) ..." and len(said) == 5
    doc = json.loads(text)
    assert (out / "results.json").read_text() == text
    st = doc["settings"]
    assert {k: st[k] for k in ("suite", "seed", "folder", "attempts", "model", "items", "light", "item_caps")} == {
        "suite": "localisation-v1", "seed": 4, "folder": str(tmp_path / "cache" / "x"), "attempts": 5,
        "model": "planted:soft", "items": 2, "light": True, "item_caps": {}}
    assert st["metrics"] == ["pointing-game", "energy-pointing-game", "deletion", "insertion"]
    assert st["metric_options"] == {"deletion": {"steps": 3, "batch_size": 4}, "insertion": {"steps": 3, "batch_size": 4}}
    want = suite_means(clf, items, ["saliency", "occlusion"], 3, {"occlusion": {"window": 56, "stride": 28}})
    got = {s["method"]: s for s in doc["scores"]}
    assert set(got) == {"saliency", "occlusion"}
    for m in got:
        assert got[m]["means"] == pytest.approx(want[m], rel=1e-12, abs=1e-15) and got[m]["n"] == 2
    assert got["occlusion"]["options"] == {"window": 56, "stride": 28} and got["saliency"]["options"] == {}
    assert sorted(p.name for p in (out / "curves").iterdir()) == ["suite_deletion.png", "suite_insertion.png"]
    assert titles == [f"mean {m} curve, localisation-v1, 2 items (AUC in the legend)" for m in ("deletion", "insertion")]
    rows = list(csv.DictReader(io.StringIO((out / "table.csv").read_text())))
    assert [r["method"] for r in rows] == [s["method"] for s in doc["scores"]] and rows[0]["#"] == "1"
    html = (out / "report.html").read_text()
    assert "<title>localisation-v1 leaderboard</title>" in html and html.count("data:image/png;base64,") == 2
    assert ">model planted:soft<" in html and ">2 items<" in html and ">seed 4<" in html
    assert "lighter suite settings (--full to lift): occlusion window=56, stride=28." in html


def test_eval_suite_defaults_full_and_text_formats(clf, loads, planted_suite, tmp_path, monkeypatch):
    items, calls = planted_suite
    monkeypatch.chdir(tmp_path)
    md, table, failed = cli_eval.eval_suite("localisation", "m", "cpu", "saliency", "deletion", None, None, 0, None,
                                            True, None, "markdown", None)
    assert calls == [(clf, 30, 0, None)] and table is None and failed == 0     # 30 items by default
    want = suite_means(clf, items, ["saliency"], 16, None)["saliency"]["deletion"]
    lines = md.splitlines()
    assert lines[0] == "| # | method | deletion ↓ | s/image | n | options |"
    assert lines[2].startswith(f"| 1 | saliency | {want:.3f} | ") and lines[2].endswith(" | 2 |  |")
    assert lines[3] == ""                                              # the footer, after a blank line
    assert lines[4].startswith("suite localisation-v1 (seed 0, 2 items, cache ")
    assert lines[5] == CURVE_LINE.format(16) and len(lines) == 6      # --full: no lighter-settings line
    assert [p.name for p in tmp_path.iterdir()] == []
    csv_text, _, _ = cli_eval.eval_suite("localisation", "m", "cpu", "saliency", "deletion", 2, 1, 0, None, True,
                                         None, "csv", None)
    assert csv_text.splitlines()[0] == "#,method,deletion,s/image,n,options" and len(csv_text.splitlines()) == 2
    text, group, failed = cli_eval.eval_suite("localisation", "m", "cpu", "saliency", "deletion", 2, 1, 0, None,
                                              False, None, "table", None)
    assert failed == 0                                # the exit code stays 0: failures are rows of the table
    from rich.console import Console

    con = Console(record=True, width=200, file=io.StringIO())
    con.print(group)
    shown = con.export_text()
    assert text == "" and "localisation-v1 leaderboard" in shown and "saliency" in shown
    assert CURVE_LINE.format(2) in shown and "lighter suite settings (--full to lift): ." in shown


def test_eval_suite_runs_every_method_by_default(clf, loads, planted_suite, monkeypatch, tmp_path):
    seen = {}

    def spy(model, items, names, mets, **kw):
        seen.update(names=names, mets=mets, **kw)
        return Leaderboard(tuple(mets), (), {"suite": "s", "seed": 0, "items": 0, "folder": "f", "model": "m",
                                             "wall_seconds": 0.0, "light": kw["light"], "item_caps": {},
                                             "metric_options": kw["metric_options"]})

    monkeypatch.setattr(cli_eval, "run_leaderboard", spy)
    text, _, _ = cli_eval.eval_suite("localisation", "m", "cpu", None, None, None, 2, 0, None, False, None, "json",
                                     None, strict=True)
    from vlx.registry import METHODS

    assert seen["names"] == METHODS.names() and len(seen["names"]) == 18
    assert seen["mets"] == ["pointing-game", "energy-pointing-game", "deletion", "insertion"]
    assert seen["metric_options"] == {"deletion": {"steps": 16, "batch_size": 17},
                                      "insertion": {"steps": 16, "batch_size": 17}}
    assert seen["light"] is True and seen["strict"] is True
    assert seen["settings"] == {"suite": "localisation-v1", "seed": 0, "folder": str(tmp_path / "cache" / "x"),
                                "attempts": 5}
    assert json.loads(text)["scores"] == []


def test_eval_suite_strict_reraises(clf, loads, planted_suite, monkeypatch):
    items, _ = planted_suite
    white = SuiteItem("w", load_image_array(np.full((32, 32, 3), 255, np.uint8)), items[0].mask, (0, 0, 16, 16),
                      "box", "white", 0, "cat", 0.5, (0,))
    monkeypatch.setattr(suite_mod, "build_suite",
                        lambda model, n, seed, folder: Suite("localisation", "localisation-v1", seed, model.name,
                                                             (white,), 1, Path("f")))
    with pytest.raises(ValueError, match="planted failure"):
        cli_eval.eval_suite("localisation", "m", "cpu", "saliency", "deletion", 2, 1, 0, None, False, None, "json",
                            None, strict=True)
    text, _, failed = cli_eval.eval_suite("localisation", "m", "cpu", "saliency", "deletion", 2, 1, 0, None, False,
                                          None, "json", None)
    (score,) = json.loads(text)["scores"]
    assert failed == 0 and score["failed"] == 1 and score["errors"] == ["ValueError: planted failure"]


def load_image_array(a):
    from vlx.image import from_array

    return from_array(a, id="w")


def test_eval_suite_unknown_suite_is_a_usage_error(loads):
    with pytest.raises(UsageError, match=r"^unknown suite 'imagenet'; the built-in suite is 'localisation'\.$"):
        cli_eval.eval_suite("imagenet", "m", "cpu", None, None, None, None, 0, None, False, None, "json", None)
    assert loads == []                                # refused before any model is loaded
