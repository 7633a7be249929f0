"""Verbalization: template text is faithful on any fact set; the verifier catches wrong numbers,
regions and classes; the LLM path runs on a tiny LM and on the real SmolLM2."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlx.evaluate.text import coverage, fact_fidelity, simulatability
from vlx.regions.geometry import COLS, ROWS
from vlx.types import Prediction, Region, RegionDescription
from vlx.verbalize import FactSheet, percentages, pct, verify
from vlx.verbalize.llm import LLMVerbalizer, complete_sentences
from vlx.verbalize.template import TemplateVerbalizer

POSITIONS = ["centre" if r == c == "centre" else f"{r}-{c}" for r in ROWS for c in COLS]
LABELS = ("tench, Tinca tinca", "goldfish", "Egyptian cat", "tiger cat", "tabby, tabby cat", "espresso",
          "crane", "drilling platform, offshore rig", "analog clock", "banana")
share = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


def region(i: int, position: str, area: float, mass: float, after: float | None, seen: str | None = None) -> Region:
    desc = RegionDescription((seen,), (0.5,), ("brown",), "") if seen else None
    return Region(id=i, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=area,
                  attribution_mass=mass, mean_attribution=0.1, position=position, score_after_removal=after,
                  description=desc)


@st.composite
def sheets(draw) -> FactSheet:
    n = draw(st.integers(0, 5))
    positions = draw(st.lists(st.sampled_from(POSITIONS), min_size=n, max_size=n))   # may repeat
    regions = tuple(region(i, p, draw(share), draw(share), draw(st.none() | share),
                           draw(st.none() | st.sampled_from(["tabby", "crane"])))
                    for i, p in enumerate(positions))
    regions = tuple(sorted(regions, key=lambda r: -r.attribution_mass))
    idx = draw(st.lists(st.integers(0, len(LABELS) - 1), min_size=3, max_size=3, unique=True))
    scores = sorted((draw(share) for _ in idx), reverse=True)
    pred = Prediction(tuple(idx), tuple(LABELS[i] for i in idx), tuple(scores))
    ti = draw(st.sampled_from(idx))
    contrast = draw(st.booleans())
    oi = next(i for i in idx if i != ti) if contrast else None
    short = LABELS[ti].split(",")[0]
    return FactSheet(model="TestNet", prediction=pred, target_index=ti, target_label=short,
                     target_score=scores[idx.index(ti)], method="gradcam", regions=regions,
                     other_index=oi, other_label=LABELS[oi].split(",")[0] if oi is not None else None,
                     other_score=scores[idx.index(oi)] if oi is not None else None,
                     group=draw(st.none() | st.just("animal")), labels=LABELS)


@settings(max_examples=150, deadline=None)
@given(sheets(), st.sampled_from(["short", "detailed"]))
def test_template_text_is_faithful_on_any_fact_set(sheet, style):
    v = TemplateVerbalizer(style).verbalize(sheet)
    check = verify(v.text, sheet)
    assert check.status == "verified", (v.text, check.issues)
    assert fact_fidelity(v.text, sheet).value == 1.0
    assert sheet.target_label in v.text
    if sheet.regions:
        assert sheet.regions[0].position in v.text
        assert pct(sheet.regions[0].attribution_mass) in v.text
        assert simulatability(v.text, sheet).details["position_correct"]
    # every percentage in the text is one of the recorded facts
    stated = {pct(f.value) for f in v.facts if isinstance(f.value, float)}
    assert set(percentages(v.text)) <= stated


def _sheet() -> FactSheet:
    regions = (region(0, "centre-left", 0.18, 0.46, 0.12), region(1, "top-right", 0.06, 0.11, 0.70))
    pred = Prediction((2, 3, 4), ("Egyptian cat", "tiger cat", "tabby, tabby cat"), (0.79, 0.09, 0.07))
    return FactSheet("EfficientNet-Lite0", pred, 2, "Egyptian cat", 0.79, "gradcam", regions, labels=LABELS)


def test_template_example_text():
    v = TemplateVerbalizer().verbalize(_sheet())
    assert v.text.startswith("EfficientNet-Lite0 predicts Egyptian cat (79%). The region at the centre-left, "
                             "18% of the image, holds 46% of the Grad-CAM attribution; blurring it lowers the "
                             "confidence to 12%.")


def test_verifier_corrects_a_planted_wrong_number():
    sheet = _sheet()
    good = TemplateVerbalizer().verbalize(sheet).text
    bad = good.replace("holds 46%", "holds 64%")
    r = verify(bad, sheet)
    assert r.status == "corrected" and r.text == good and r.fidelity < 1
    assert any("64" in i and "46%" in i for i in r.issues)


@pytest.mark.parametrize("text,needle", [
    ("EfficientNet-Lite0 predicts Egyptian cat (79%). The region at the bottom-left holds 46% of the attribution.",
     "region"),                                                             # wrong region
    ("EfficientNet-Lite0 predicts goldfish (79%). The region at the centre-left holds 46%.", "class"),
    ("The model sees a cat. The region at the centre-left holds 46%.", "explained class"),  # class missing
    ("EfficientNet-Lite0 predicts Egyptian cat (79%); region 3 holds 46% of the attribution.", "region"),
    ("EfficientNet-Lite0 predicts Egyptian cat with 79% confidence, and 33% of it comes from the fur.", "33%"),
])
def test_verifier_rejects_what_it_cannot_correct(text, needle):
    r = verify(text, _sheet())
    assert r.status == "rejected", r.issues
    assert any(needle in i for i in r.issues), r.issues


def test_verifier_reads_number_kinds_from_context():
    sheet = _sheet()
    ok = ("Egyptian cat was predicted with 79% confidence. Most of the evidence, 46%, sits at the center left, "
          "an area of 18% of the image; when it is blurred out, the confidence becomes 12%.")
    assert verify(ok, sheet).status == "verified"
    swapped = ok.replace("becomes 12%", "becomes 18%")
    r = verify(swapped, sheet)
    assert r.status == "corrected" and "becomes 12%" in r.text


def test_text_metrics():
    sheet = _sheet()
    good = TemplateVerbalizer().verbalize(sheet).text
    assert coverage(good, sheet).value == 1.0
    assert simulatability(good, sheet).value == 1.0
    vague = "The model predicts tiger cat because of the fur."
    assert coverage(vague, sheet).value == 0.0
    assert simulatability(vague, sheet).value == 0.0
    assert fact_fidelity(vague, sheet).value < 1.0


def test_complete_sentences_drops_a_cut_tail():
    assert complete_sentences("One. Two is cut") == "One."
    assert complete_sentences("Done.") == "Done."


class ScriptedLM:
    """Replies with a fixed text, to drive the verbalizer's three outcomes deterministically."""

    name = "scripted"

    def __init__(self, reply: str) -> None:
        self.reply, self.seen = reply, []

    def generate(self, messages, max_new_tokens=96):
        self.seen.append(messages)
        return self.reply


@pytest.mark.parametrize("reply,status,shown", [
    ("Egyptian cat (79%): the centre-left region holds 46% of the attribution.", "verified", "llm"),
    ("Egyptian cat (79%): the centre-left region holds 50% of the attribution.", "corrected", "llm"),
    ("It is a goldfish, clearly.", "rejected", "template"),
])
def test_llm_verbalizer_outcomes(reply, status, shown):
    sheet = _sheet()
    lm = ScriptedLM(reply)
    v = LLMVerbalizer(llm=lm, mode="free").verbalize(sheet)
    assert v.check["status"] == status and v.check["original"] == reply and v.verified is True
    user = lm.seen[0][1]["content"]
    assert "46%" in user and "centre-left" in user and "Egyptian cat" in user     # the facts reach the LM
    if shown == "template":
        assert v.text == TemplateVerbalizer().verbalize(sheet).text and v.check["fallback"] == "template"
    else:
        assert "46%" in v.text and verify(v.text, sheet).status == "verified"


def test_prompt_requires_its_variables():
    from vlx.errors import UsageError
    from vlx.prompts import render

    with pytest.raises(UsageError, match="needs variables"):
        render("verbalize_user.j2", model="x")


@pytest.fixture(scope="module")
def tiny_lm_dir(tmp_path_factory):
    from vlx.testing.tiny_lm import tiny_causal_lm_folder

    return tiny_causal_lm_folder(tmp_path_factory.mktemp("tiny-lm"))


def test_llm_path_on_tiny_causal_lm(tiny_lm_dir, effnet, chelsea):
    from vlx.pipeline import Explainer

    e = Explainer(effnet, verbalizer="llm", llm=f"hf:{tiny_lm_dir}", device="cpu")
    expl = e.explain(chelsea)
    v = expl.verbalization
    assert v.verbalizer == "llm" and isinstance(v.check["original"], str)
    _assert_check_follows_the_verifier(v, e.last_sheet)
    assert verify(v.text, _as_sheet(effnet, expl)).status == "verified"
    assert expl.alternatives and expl.alternatives[0].verbalizer == "template"


def _assert_check_follows_the_verifier(v, sheet: FactSheet) -> None:
    """The recorded status is the verifier's verdict on the LM's text, and the text shown follows
    from it: the template's when rejected, the (corrected) LM text otherwise."""
    again = verify(v.check["original"], sheet)
    assert v.check["status"] == again.status and v.check["issues"] == list(again.issues)
    if again.status == "rejected":
        assert v.check["fallback"] == "template" and v.text == TemplateVerbalizer().verbalize(sheet).text
    else:
        assert "fallback" not in v.check and v.text == again.text


def _as_sheet(model, expl) -> FactSheet:
    """The facts rebuilt from the explanation alone (the map check from its deletion curves)."""
    from vlx.verbalize.facts import MapFacts

    d = next((m for m in expl.metrics if m.name == "deletion"), None)
    check = None
    if d is not None:
        k = int(np.argmin(np.abs(np.asarray(d.details["fractions"]) - 0.2)))
        check = MapFacts(d.details["fractions"][k], d.details["curve"][k],
                         float(np.mean([c[k] for c in d.details["random_curves"]])))
    return FactSheet(model.display_name, expl.prediction, expl.target.primary, expl.target.label.split(",")[0],
                     expl.target_score, expl.attribution.method, expl.regions, labels=tuple(model.labels),
                     map_check=check)


@pytest.mark.slow
def test_real_smollm2_verbalization(effnet, chelsea):
    from vlx.pipeline import Explainer

    e = Explainer(effnet, verbalizer="llm", device="cpu")
    expl = e.explain(chelsea)
    v = expl.verbalization
    assert v.check["llm"] == "smollm2" and len(v.check["original"]) > 20
    _assert_check_follows_the_verifier(v, e.last_sheet)
    assert verify(v.text, _as_sheet(effnet, expl)).status == "verified"
    assert 0.0 <= v.check["fidelity"] <= 1.0


def test_group_level_in_detailed_style():
    sheet = dataclasses.replace(_sheet(), group="cat")
    text = TemplateVerbalizer("detailed").verbalize(sheet).text
    assert "Egyptian cat is a kind of cat" not in text            # the group is in the label already
    sheet = dataclasses.replace(_sheet(), group="feline")
    assert "Egyptian cat is a kind of feline" in TemplateVerbalizer("detailed").verbalize(sheet).text
    assert re.search(r"\(79%\)", text)
