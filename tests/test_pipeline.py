"""End to end on the real embedded classifier: prediction, regions, text, report files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vlx.errors import UsageError
from vlx.pipeline import Explainer
from vlx.report import write_explanation
from vlx.verbalize import pct, percentages

CAT_CLASSES = {281, 282, 283, 284, 285, 286, 287}   # tabby, tiger cat, Persian, Siamese, Egyptian, cougar, lynx
CAT_X_END = 390                                      # in chelsea.png the cat fills x < ~390


@pytest.fixture(scope="module")
def explainer(effnet):
    return Explainer(effnet, "gradcam")


@pytest.fixture(scope="module")
def expl(explainer, chelsea):
    return explainer.explain(chelsea)


def test_cat_in_top3(expl):
    assert CAT_CLASSES & set(expl.prediction.indices[:3])
    assert expl.target.primary == expl.prediction.indices[0]


def test_top_region_overlaps_the_cat(expl):
    r = expl.regions[0]
    inside = r.mask[:, :CAT_X_END].sum() / r.mask.sum()
    assert inside > 0.9
    assert r.score_after_removal is not None and r.score_after_removal < expl.target_score


def test_regions_hold_the_stated_mass(expl):
    pos = np.clip(expl.attribution.values, 0, None)
    for r in expl.regions:
        assert r.attribution_mass == pytest.approx(pos[r.mask].sum() / pos.sum(), rel=1e-6)
        assert r.area_fraction == pytest.approx(r.mask.mean(), rel=1e-6)
        x0, y0, x1, y1 = r.bbox_xyxy
        assert r.mask[y0:y1, x0:x1].sum() == r.mask.sum()
    masses = [r.attribution_mass for r in expl.regions]
    assert masses == sorted(masses, reverse=True)


def test_text_numbers_equal_json_facts(expl, tmp_path):
    paths = write_explanation(expl, tmp_path / "chelsea")
    data = json.loads(paths["json"].read_text())
    text = data["verbalization"]["text"]
    facts = {f["key"]: f["value"] for f in data["verbalization"]["facts"]}
    expected = [pct(data["target"]["score"])]
    for i, r in enumerate(data["regions"][:2]):
        k = f"region{i + 1}"
        assert facts[f"{k}.attribution_mass"] == r["attribution_mass"]
        assert facts[f"{k}.score_after_removal"] == r["score_after_removal"]
        assert r["position"] in text
        expected += [pct(r["area_fraction"]), pct(r["attribution_mass"]), pct(r["score_after_removal"])]
    d = next(m for m in data["metrics"] if m["name"] == "deletion")["details"]      # the map's own check
    k = d["fractions"].index(min(d["fractions"], key=lambda f: abs(f - 0.2)))
    after, rnd = d["curve"][k], float(np.mean([c[k] for c in d["random_curves"]]))
    assert (facts["map.fraction"], facts["map.after"], facts["map.random_after"]) == (d["fractions"][k], after, rnd)
    expected += [pct(d["fractions"][k]), pct(data["target"]["score"]), pct(after), pct(d["fractions"][k]), pct(rnd)]
    assert percentages(text) == expected
    assert data["target"]["label"] in text and facts["confidence"] == data["target"]["score"]
    for key in ("model", "method", "target", "regions", "verbalization", "timing_s"):
        assert key in data
    m = np.load(paths["map"])
    assert m.dtype == np.float32 and m.shape == expl.image.size_hw


def test_explicit_target_changes_the_explained_class(explainer, chelsea):
    e = explainer.explain(chelsea, target="tiger cat")
    assert e.target.primary == 282 and "tiger cat" in e.verbalization.text
    assert "top class is Egyptian cat" in e.verbalization.text


def test_report_is_self_contained_and_escaped(explainer, chelsea, tmp_path):
    import dataclasses

    evil = dataclasses.replace(chelsea, id="<script>alert(1)</script>")
    e = explainer.explain(evil)
    html = write_explanation(e, tmp_path / "x")["html"].read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert html.count("data:image/png;base64,") == 3 + len(e.regions)      # input, overlay, regions, a crop each
    assert "http://" not in html and "https://" not in html      # nothing fetched when opened


def test_detailed_style_states_descriptions(effnet, chelsea):
    e = Explainer(effnet, style="detailed").explain(chelsea)
    d = e.regions[0].description
    assert d is not None and d.labels and d.colors
    assert d.labels[0] in e.verbalization.text


def _same(a, b):
    assert a.prediction.indices == b.prediction.indices
    assert np.allclose(a.prediction.scores, b.prediction.scores, atol=1e-5)
    assert a.target == b.target
    assert np.allclose(a.attribution.values, b.attribution.values, atol=1e-5 * (np.abs(a.attribution.values).max() + 1))
    assert [r.bbox_xyxy for r in a.regions] == [r.bbox_xyxy for r in b.regions]
    for ra, rb in zip(a.regions, b.regions):
        assert ra.score_after_removal == pytest.approx(rb.score_after_removal, abs=1e-5)
        assert ra.score_when_kept == pytest.approx(rb.score_when_kept, abs=1e-5)
    assert a.verbalization.text == b.verbalization.text


@pytest.mark.parametrize("method, options", [("gradcam", {}), ("integrated_gradients", {"n_steps": 8}),
                                             ("occlusion", {"window": 8, "stride": 8})])
def test_explain_many_equals_one_by_one(method, options):
    """Stacked images (one forward/backward for CAM and gradient methods, one causal pass for all
    images) give what each image gives alone; sizes differ, targets are per image."""
    from vlx.testing import planted_classifier
    from vlx.testing.badfiles import random_image

    ex = Explainer(planted_classifier(size=32), method, method_options=options, describer=None)
    imgs = [np.asarray(random_image(s, hw)) for s, hw in enumerate([(40, 48), (64, 64), (33, 70)])]
    targets = [None, 1, 0]
    many = ex.explain_many(imgs, targets)
    for img, t, m in zip(imgs, targets, many):
        _same(ex.explain(img, t), m)
    contrast = ex.explain_many(imgs, 0, contrast=1)          # contrast targets stack too
    for img, c in zip(imgs, contrast):
        _same(ex.explain(img, 0, 1), c)


def test_sampled_methods_report_their_samples_in_the_json(effnet, chelsea):
    """Issue 15: the samples a sampled method used (and its standard error) reach the explanation
    JSON; with a loose tolerance it stops early, at a block boundary, below its maximum."""
    from vlx.pipeline import Explainer

    opts = {"n_samples": 96, "n_segments": 32, "block": 16}
    full = Explainer(effnet, method="kernelshap", method_options=opts, device="cpu").explain(chelsea).to_json()
    assert full["sampling"]["samples"] == 96 and full["sampling"]["max_samples"] == 96
    assert full["sampling"]["stderr"] >= 0 and full["sampling"]["converged"] is None
    loose = Explainer(effnet, method="kernelshap", method_options={**opts, "tolerance": 1e6},
                      device="cpu").explain(chelsea).to_json()
    s = loose["sampling"]
    assert s["converged"] is True and s["samples"] < 96 and s["samples"] % 16 == 0 and s["tolerance"] == 1e6
    assert "sampling" not in Explainer(effnet, device="cpu").explain(chelsea).to_json()      # Fused CAM samples nothing


def test_default_method_is_the_models_own(effnet):
    """``method="auto"`` (the default) is the model's own default: for EfficientNet-Lite0 Fused CAM
    of Grad-CAM at ``_bn1`` and LayerCAM at ``_blocks.10`` (docs/defaults.md); for a model without
    one, Grad-CAM. An explicit method keeps the model's default layer; the resolved method is what
    the config (and so the JSON) records."""
    from vlx.config import ExplainConfig
    from vlx.testing import planted_classifier

    assert ExplainConfig().method == "auto" and ExplainConfig().check().method == "auto"
    ex = Explainer(effnet, describer=None, metrics=False)
    assert (ex.config.method, ex.method.name, ex.layer) == ("fusedcam", "fusedcam", "_bn1,_blocks.10")
    assert Explainer(effnet, "gradcam", metrics=False).layer == "_bn1"
    assert Explainer(effnet, "layercam", metrics=False).layer == "_bn1"
    assert Explainer(effnet, "fusedcam", layer="_head_act,_blocks.9", metrics=False).layer == "_head_act,_blocks.9"
    planted = planted_classifier(size=32)
    assert Explainer(planted, describer=None, metrics=False).config.method == "gradcam"
    assert Explainer(planted, "fusedcam", describer=None, metrics=False).layer == planted.layer("auto")[0]
    with pytest.raises(UsageError, match="one layer per part"):                  # before any image
        Explainer(planted, "fusedcam", layer=",".join([planted.layer("auto")[0]] * 3), describer=None, metrics=False)


def test_fusedcam_explain_many_equals_one_by_one():
    from vlx.testing import planted_classifier
    from vlx.testing.badfiles import random_image

    planted = planted_classifier(size=32)
    layer = planted.layer("auto")[0]
    ex = Explainer(planted, "fusedcam", layer=f"{layer},{layer}", describer=None)
    imgs = [np.asarray(random_image(s, hw)) for s, hw in enumerate([(40, 48), (64, 64)])]
    for img, m in zip(imgs, ex.explain_many(imgs, [None, 1])):
        _same(ex.explain(img, m.target.primary), m)
