"""Every report measures its own map (issue 16, item 2): deletion / insertion next to random maps,
one measured sentence that the verifier checks, and the cached model-randomisation sanity check.

Oracles: the curves against a looped, one-composite-at-a-time implementation written here from the
definition (rank by value with the seeded tie order, replace the first round(k n / steps) pixels by
the baseline, softmax); the antithetic random map against that loop run on the negated map; a
planted model whose class depends only on one quadrant (the quadrant's indicator must beat random,
the opposite quadrant's must not)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from vlx.evaluate.map_check import MapCheck, measure_map, random_maps
from vlx.models.classifier import ImageClassifier, Preprocess

SIZE = 20


class _Linear(nn.Module):
    """Logits = W · x (flattened): every pixel matters, by a fixed random weight."""

    def __init__(self, seed: int = 0, classes: int = 3) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = nn.Parameter(torch.randn(classes, 3 * SIZE * SIZE, generator=g) * 0.05)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w.T


def _linear_model(seed: int = 0) -> ImageClassifier:
    pre = Preprocess(size=(SIZE, SIZE), mean=(0.0,) * 3, std=(1.0,) * 3)
    return ImageClassifier(_Linear(seed), f"linear{seed}", "Linear", ["a", "b", "c"], pre, torch.device("cpu"))


def _loop_curve(model, x, base, values, target, steps, mode, seed=0):
    """The definition, one composite at a time, in float64 numpy for the ranking."""
    from vlx.evaluate.base import map_to_input

    v = map_to_input(np.asarray(values, np.float64), tuple(x.shape[-2:])).ravel()
    tie = np.random.default_rng(seed).permutation(v.size)
    order = np.lexsort((tie, -v))
    n = v.size
    out = []
    for k in range(steps + 1):
        c = int(np.round(k * n / steps))
        moved = np.zeros(n, bool)
        moved[order[:c]] = True
        take = torch.from_numpy(moved if mode == "deletion" else ~moved).view(1, 1, *x.shape[-2:]).float()
        with torch.no_grad():
            out.append(float(model.logits(x * (1 - take) + base * take).softmax(-1)[0, target]))
    return np.array(out)


def _inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, SIZE, SIZE, generator=g)
    base = torch.rand(1, 3, SIZE, SIZE, generator=g) * 0.1
    return x, base


@pytest.mark.parametrize("steps", [5, 4])
def test_curves_match_the_looped_definition(steps):
    model = _linear_model()
    x, base = _inputs()
    values = np.random.default_rng(3).random((SIZE, SIZE))
    c = measure_map(model, x, base, values, 1, raw_shape=(4, 4), steps=steps, n_random=3, seed=7)
    np.testing.assert_allclose(c.deletion, _loop_curve(model, x, base, values, 1, steps, "deletion", 7), atol=1e-6)
    np.testing.assert_allclose(c.insertion, _loop_curve(model, x, base, values, 1, steps, "insertion", 7), atol=1e-6)
    r = random_maps((4, 4), 3, seed=7)
    assert len(r) == 2 and len(c.random_deletion) == 3
    np.testing.assert_allclose(r[1], np.random.default_rng(8).random((4, 4)).astype(np.float32))
    for j, (rd, ri) in enumerate(zip(c.random_deletion[::2], c.random_insertion[::2])):   # first of each pair
        np.testing.assert_allclose(rd, _loop_curve(model, x, base, r[j], 1, steps, "deletion", 7), atol=1e-6)
        np.testing.assert_allclose(ri, _loop_curve(model, x, base, r[j], 1, steps, "insertion", 7), atol=1e-6)
    assert c.fractions[0] == 0 and c.fractions[-1] == 1 and len(c.fractions) == steps + 1


def test_antithetic_map_is_the_reverse_order():
    """The pair's second map is the first negated: its curves equal the loop on ``-r``. 400
    pixels and 5 steps give exact step counts; a continuous random map has no ties."""
    model = _linear_model(1)
    x, base = _inputs(1)
    c = measure_map(model, x, base, np.ones((SIZE, SIZE)), 0, raw_shape=(SIZE, SIZE), steps=5, n_random=2, seed=0)
    r = random_maps((SIZE, SIZE), 2, seed=0)[0]
    assert np.unique(r).size == r.size
    np.testing.assert_allclose(c.random_deletion[1], _loop_curve(model, x, base, -r, 0, 5, "deletion"), atol=1e-6)
    np.testing.assert_allclose(c.random_insertion[1], _loop_curve(model, x, base, -r, 0, 5, "insertion"), atol=1e-6)


def test_aucs_and_sentence_values():
    c = MapCheck((0.0, 0.5, 1.0), (0.8, 0.2, 0.0), (0.0, 0.6, 0.8), ((0.8, 0.6, 0.0), (0.8, 0.4, 0.0)),
                 ((0.0, 0.2, 0.8), (0.0, 0.4, 0.8)))
    assert c.deletion_auc == pytest.approx((0.8 + 0.2) / 4 + 0.2 / 4)
    assert c.insertion_auc == pytest.approx(0.6 / 4 + 1.4 / 4)
    assert c.random_deletion_auc == pytest.approx(np.mean([1.4 / 4 + 0.6 / 4, 1.2 / 4 + 0.4 / 4]))
    assert c.after_deleting(0.5) == (0.5, 0.2, pytest.approx(0.5))
    with pytest.raises(ValueError, match="not a point"):
        c.after_deleting(0.2)
    d, i = c.metrics()
    assert (d.name, d.higher_is_better, i.name, i.higher_is_better) == ("deletion", False, "insertion", True)
    assert d.details["random"] == pytest.approx(c.random_deletion_auc)


class _Quadrant(nn.Module):
    """Class 0's logit is ``8 * mean(top-left quadrant) - 4``; classes 1 and 2 are 0: nothing
    outside the quadrant matters, and the probability is not saturated."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = x[:, :, : x.shape[2] // 2, : x.shape[3] // 2].mean(dim=(1, 2, 3))
        z = torch.zeros_like(q)
        return torch.stack([8 * q - 4, z, z], dim=1)


def test_planted_quadrant_beats_random_and_the_wrong_quadrant_does_not():
    pre = Preprocess(size=(32, 32), mean=(0.0,) * 3, std=(1.0,) * 3)
    model = ImageClassifier(_Quadrant(), "quadrant", "Quadrant", ["a", "b", "c"], pre, torch.device("cpu"))
    x = torch.full((1, 3, 32, 32), 0.9)
    base = torch.zeros_like(x)
    good, bad = np.zeros((32, 32)), np.zeros((32, 32))
    good[:16, :16] = 1 + np.random.default_rng(1).random((16, 16))
    bad[16:, 16:], bad[:16, 16:], bad[16:, :16] = 3, 2, 1        # the quadrant ranked last
    cg = measure_map(model, x, base, good, 0, raw_shape=(8, 8), steps=8, n_random=4)
    cb = measure_map(model, x, base, bad, 0, raw_shape=(8, 8), steps=8, n_random=4)
    p_full, p_none = 1 / (1 + 2 * np.exp(-(8 * 0.9 - 4))), 1 / (1 + 2 * np.exp(4))
    assert cg.deletion[0] == pytest.approx(p_full, rel=1e-5) and cg.deletion[-1] == pytest.approx(p_none, rel=1e-5)
    # the good map moves the whole quadrant within the first quarter; the bad one not before three quarters
    assert cg.deletion[2] == pytest.approx(p_none, rel=1e-5) and cg.insertion[2] == pytest.approx(p_full, rel=1e-5)
    assert cb.deletion[6] == pytest.approx(p_full, rel=1e-5) and cb.insertion[6] == pytest.approx(p_none, rel=1e-5)
    assert cg.deletion_auc < cg.random_deletion_auc - 0.2 and cg.insertion_auc > cg.random_insertion_auc + 0.2
    assert cb.deletion_auc > cb.random_deletion_auc + 0.2 and cb.insertion_auc < cb.random_insertion_auc - 0.2


def test_measure_map_rejects_bad_input():
    model = _linear_model()
    x, base = _inputs()
    with pytest.raises(ValueError, match="n_random"):
        measure_map(model, x, base, np.ones((4, 4)), 0, n_random=0)
    with pytest.raises(ValueError, match="same shape"):
        measure_map(model, x, base[..., :10], np.ones((4, 4)), 0)


# -- the sentence and its verification -----------------------------------------------------------------

def _sheet(map_check=None):
    from vlx.types import Prediction, Region
    from vlx.verbalize.facts import FactSheet

    r = Region(0, np.ones((4, 4), bool), (0, 0, 4, 4), 0.22, 0.52, 1.0, "centre", score_after_removal=0.72)
    return FactSheet(model="M", prediction=Prediction((0,), ("cat",), (0.79,)), target_index=0, target_label="cat",
                     target_score=0.79, method="gradcam", regions=(r,), labels=("cat", "dog"), map_check=map_check)


def test_template_states_the_check_and_it_verifies():
    from vlx.verbalize.facts import MapFacts
    from vlx.verbalize.template import TemplateVerbalizer
    from vlx.verbalize.verify import verify

    sheet = _sheet(MapFacts(0.2, 0.12, 0.70))
    text = TemplateVerbalizer().verbalize(sheet).text
    assert text.endswith("Blurring the 20% of the image the map ranks highest lowers the confidence from 79% to 12%; "
                         "blurring a random 20% lowers it to 70%.")
    assert verify(text, sheet).status == "verified"
    up = TemplateVerbalizer().verbalize(_sheet(MapFacts(0.2, 0.85, 0.79))).text
    assert "raises the confidence from 79% to 85%; blurring a random 20% leaves it unchanged." in up
    assert "random" not in TemplateVerbalizer().verbalize(_sheet()).text


@pytest.mark.parametrize("wrong, fixed", [
    ("from 79% to 13%; blurring a random 20% lowers it to 70%", "from 79% to 12%; blurring a random 20% lowers it to 70%"),
    ("from 79% to 12%; blurring a random 20% lowers it to 60%", "from 79% to 12%; blurring a random 20% lowers it to 70%"),
    ("from 80% to 12%; blurring a random 20% lowers it to 70%", "from 79% to 12%; blurring a random 20% lowers it to 70%"),
])
def test_wrong_numbers_of_the_check_are_corrected(wrong, fixed):
    from vlx.verbalize.facts import MapFacts
    from vlx.verbalize.verify import verify

    head = "M predicts cat (79%). Blurring the 20% of the image the map ranks highest lowers the confidence "
    r = verify(head + wrong + ".", _sheet(MapFacts(0.2, 0.12, 0.70)))
    assert r.status == "corrected" and r.text == head + fixed + ".", r.issues


def test_wrong_fraction_and_unmeasured_check_are_caught():
    from vlx.verbalize.facts import MapFacts
    from vlx.verbalize.verify import verify

    s = ("M predicts cat (79%). Blurring the 30% of the image the map ranks highest lowers the confidence from 79% "
         "to 12%; blurring a random 30% lowers it to 70%.")
    r = verify(s, _sheet(MapFacts(0.2, 0.12, 0.70)))
    assert r.status == "corrected" and r.text.count("20%") == 2
    r = verify(s.replace("30%", "20%"), _sheet())
    assert r.status == "rejected" and any("not measured" in i for i in r.issues)


def test_every_phrasing_of_the_check_verifies():
    from vlx.verbalize.facts import MapFacts
    from vlx.verbalize.phrasings import alternatives, sentences
    from vlx.verbalize.template import TemplateVerbalizer, fill_slots
    from vlx.verbalize.verify import verify

    for facts in (MapFacts(0.2, 0.12, 0.70), MapFacts(0.2, 0.9, 0.79), MapFacts(0.2, 0.79, 0.5)):
        sheet = _sheet(facts)
        slotted, slots = TemplateVerbalizer().slotted(sheet)
        parts = sentences(slotted)
        options = alternatives(parts[-1])
        assert len(options) == 3, parts[-1]
        for o in options:
            text = " ".join(fill_slots(p, slots) for p in parts[:-1]) + " " + fill_slots(o, slots)
            assert verify(text, sheet).status == "verified", (text, verify(text, sheet).issues)


# -- the pipeline, the sanity cache and the report ------------------------------------------------------

@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VLX_CACHE", str(tmp_path))
    return tmp_path


def test_explainer_measures_its_map_and_caches_sanity(cache):
    from vlx.pipeline import Explainer
    from vlx.regions.causal import blurred_input
    from vlx.testing.planted import planted_classifier

    model = planted_classifier("top-left", size=32)
    img = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    e = Explainer(model, "gradcam", describer="none")
    ex = e.explain(img)
    names = [m.name for m in ex.metrics]
    assert {"deletion", "insertion", "sanity"} <= set(names)
    d = next(m for m in ex.metrics if m.name == "deletion")
    x = model.to_input(img)
    ref = measure_map(model, x, blurred_input(x, (48, 48)), ex.attribution.values, ex.target.index,
                      raw_shape=ex.attribution.raw.shape)
    assert d.value == pytest.approx(ref.deletion_auc, abs=1e-6)
    assert d.details["random"] == pytest.approx(ref.random_deletion_auc, abs=1e-6)
    assert "blurring a random 20%" in ex.verbalization.text and ex.verbalization.check["status"] == "verified"
    s = next(m for m in ex.metrics if m.name == "sanity")
    assert s.details["cached"] is False and list(cache.glob("sanity/*.json"))
    again = Explainer(model, "gradcam", describer="none").explain(img)
    s2 = next(m for m in again.metrics if m.name == "sanity")
    assert s2.details["cached"] is True and s2.value == s.value
    other = Explainer(planted_classifier("top-left", size=32, seed=1), "gradcam", describer="none").explain(img)
    assert next(m for m in other.metrics if m.name == "sanity").details["cached"] is False  # other weights
    off = Explainer(model, "gradcam", describer="none", metrics=False).explain(img)
    assert not {"deletion", "insertion", "sanity"} & {m.name for m in off.metrics}
    assert "random" not in off.verbalization.text and "metrics" not in off.timing_s


def test_sanity_value_is_the_model_randomisation_result(cache):
    from vlx.attribute import attribute, get_method
    from vlx.evaluate.sanity import ModelRandomisation
    from vlx.evaluate.sanity_cache import cached_sanity
    from vlx.image import from_array
    from vlx.testing.planted import planted_classifier
    from vlx.types import ClassTarget

    model = planted_classifier("top-left", size=32)
    img = from_array(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8), id="noise")
    amap = attribute(model, img, ClassTarget(0, "class 0"), "gradcam")
    got = cached_sanity(model, img, amap, get_method("gradcam"), {}, 0)
    ref = ModelRandomisation(method="gradcam", every=10**9, repeats=3)(model, img, amap, 0)
    assert got.value == pytest.approx(ref.value) and got.details["passed"] == ref.details["passed"]
    assert got.details["image"] == "noise"


def test_report_shows_the_check_and_says_when_random_wins(cache):
    from vlx.pipeline import Explainer
    from vlx.report.html import render_html
    from vlx.testing.planted import planted_classifier

    model = planted_classifier("top-left", size=32)
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    ex = Explainer(model, "gradcam", describer="none").explain(img)
    html = render_html(ex)
    assert 'id="map-trust"' in html and "blurring a random 20%" in html and "Sanity check" in html
    d = next(m for m in ex.metrics if m.name == "deletion")
    worse = dataclasses.replace(d, value=d.details["random"] + 0.1)
    html = render_html(dataclasses.replace(ex, metrics=tuple(worse if m is d else m for m in ex.metrics)))
    assert "This map does no better than a random map on deletion" in html
    better = dataclasses.replace(d, value=d.details["random"] - 0.1)
    i = next(m for m in ex.metrics if m.name == "insertion")
    ibetter = dataclasses.replace(i, value=i.details["random"] + 0.1)
    html = render_html(dataclasses.replace(ex, metrics=tuple(better if m is d else ibetter if m is i else m
                                                             for m in ex.metrics)))
    assert "no better than a random map" not in html and html.count("better than random") == 2


def test_non_square_input_defaults_and_metric_details():
    """A 24×16 input (rows ≠ columns) against the looped definition; the default budget (5 steps,
    2 random maps) and every detail the report and the JSON read."""
    pre = Preprocess(size=(24, 16), mean=(0.0,) * 3, std=(1.0,) * 3)
    model = ImageClassifier(_Quadrant(), "quadrant", "Quadrant", ["a", "b", "c"], pre, torch.device("cpu"))
    g = torch.Generator().manual_seed(4)
    x, base = torch.rand(1, 3, 24, 16, generator=g), torch.zeros(1, 3, 24, 16)
    values = np.random.default_rng(5).random((24, 16))
    c = measure_map(model, x, base, values, 0, raw_shape=(3, 2))
    assert len(c.fractions) == 6 and c.steps == 5 and len(c.random_deletion) == len(c.random_insertion) == 2
    assert c.baseline == "blur" and c.fractions == tuple(np.round(np.arange(6) * 384 / 5) / 384)
    np.testing.assert_allclose(c.deletion, _loop_curve(model, x, base, values, 0, 5, "deletion"), atol=1e-6)
    np.testing.assert_allclose(c.insertion, _loop_curve(model, x, base, values, 0, 5, "insertion"), atol=1e-6)
    d, i = c.metrics()
    for m, curve, rcurves in ((d, c.deletion, c.random_deletion), (i, c.insertion, c.random_insertion)):
        assert m.category == "faithfulness" and m.details["baseline"] == "blur" and m.details["steps"] == 5
        assert m.details["fractions"] == list(c.fractions) and m.details["random_maps"] == 2
        assert m.details["curve"] == list(curve) and m.details["random_curves"] == [list(r) for r in rcurves]
    assert i.value == pytest.approx(c.insertion_auc) and i.details["random"] == pytest.approx(c.random_insertion_auc)
    assert d.value == pytest.approx(c.deletion_auc)
    assert c.after_deleting()[0] == pytest.approx(0.2, abs=1e-3)
    assert measure_map(model, x, base, values, 0, baseline="mean").baseline == "mean"


def test_random_maps_seeds_counts_and_budget():
    """Random maps: one per antithetic pair (``ceil(n / 2)``), float32, map ``j`` from
    ``default_rng(seed + j)``, seed 0 by default; one random map is allowed; ``batch_size`` is the
    number of composites per model call; a fraction off the curve names the steps."""
    for n, pairs in ((1, 1), (2, 1), (3, 2), (4, 2)):
        maps = random_maps((3, 4), n)
        assert len(maps) == pairs and all(m.dtype == np.float32 for m in maps)
        for j, m in enumerate(maps):
            np.testing.assert_array_equal(m, np.random.default_rng(j).random((3, 4)).astype(np.float32))
    np.testing.assert_array_equal(random_maps((3, 4), 2, seed=7)[0],
                                  np.random.default_rng(7).random((3, 4)).astype(np.float32))
    model = _linear_model()
    x, base = _inputs()
    values = np.random.default_rng(1).random((SIZE, SIZE))
    one = measure_map(model, x, base, values, 1, n_random=1)
    assert len(one.random_deletion) == 1
    default, seeded = measure_map(model, x, base, values, 1), measure_map(model, x, base, values, 1, seed=0)
    assert default == seeded and default != measure_map(model, x, base, values, 1, seed=1)
    calls = []
    handle = model.module.register_forward_hook(lambda _m, inp, _o: calls.append(inp[0].shape[0]))
    try:
        measure_map(model, x, base, values, 1, steps=2, n_random=1, batch_size=3)
    finally:
        handle.remove()
    assert calls == [3, 3]                                  # 2 + 2 (steps - 1) (1 + 1) = 6 composites
    with pytest.raises(ValueError, match=r"^0\.3 is not a point of the curve \(5 steps\)$"):
        default.after_deleting(0.3)
