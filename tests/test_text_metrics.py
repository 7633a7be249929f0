"""The text metrics (vlx.evaluate.text) on hand-built fact sheets whose answers are written out:
which facts a text mentions, which class and position a reader recovers from it, and the full
MetricResult each returns (name, direction, category, details)."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.evaluate.text import coverage, fact_fidelity, simulatability, text_metrics, top_facts
from vlx.types import MetricResult, Prediction, Region
from vlx.verbalize.facts import FactSheet
from vlx.verbalize.verify import verify


def region(i: int, position: str, mass: float, after: float | None) -> Region:
    return Region(id=i, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=0.2,
                  attribution_mass=mass, mean_attribution=0.1, position=position, score_after_removal=after)


def sheet(labels=("dog", "tabby, tabby cat", "tiger cat"), target=1, label="tabby", regions=None) -> FactSheet:
    regions = (region(0, "top-left", 0.46, 0.12), region(1, "bottom-right", 0.21, 0.55)) if regions is None \
        else regions
    pred = Prediction((target,), (label,), (0.79,))
    return FactSheet("Net", pred, target, label, 0.79, "gradcam", regions, labels=labels)


def test_top_facts_are_the_first_region_and_the_class() -> None:
    assert top_facts(sheet()) == {"class": "tabby", "confidence": "79%", "region1.position": "top-left",
                                  "region1.attribution_mass": "46%", "region1.score_after_removal": "12%"}
    no_score = sheet(regions=(region(0, "centre", 0.3, None), region(1, "top-left", 0.2, 0.4)))
    assert top_facts(no_score) == {"class": "tabby", "confidence": "79%", "region1.position": "centre",
                                   "region1.attribution_mass": "30%"}
    assert top_facts(sheet(regions=())) == {"class": "tabby", "confidence": "79%"}


def test_coverage_counts_the_top_facts_mentioned() -> None:
    text = "Net predicts tabby (79%). The region at the bottom-right holds 21%."
    hit = {"class": True, "confidence": True, "region1.position": False, "region1.attribution_mass": False,
           "region1.score_after_removal": False}
    assert coverage(text, sheet()) == MetricResult("coverage", 2 / 5, True, "text", {"mentioned": hit})


def test_fact_fidelity_is_the_verifiers_share_of_correct_claims() -> None:
    s = sheet()
    good = "Net predicts tabby (79%). The region at the top-left holds 46% of the attribution."
    r = verify(good, s)
    assert r.claims >= 3 and r.correct == r.claims
    assert fact_fidelity(good, s) == MetricResult("fact-fidelity", 1.0, True, "text",
                                                  {"claims": r.claims, "correct": r.claims, "issues": []})
    bad = good.replace("46%", "64%")
    rb = verify(bad, s)
    got = fact_fidelity(bad, s)
    assert got.value == pytest.approx((rb.claims - 1) / rb.claims)
    assert got.details == {"claims": rb.claims, "correct": rb.claims - 1, "issues": rb.issues} and rb.issues


def details(cls, pos, cls_ok, pos_ok) -> dict:
    return {"class": cls, "position": pos, "class_correct": cls_ok, "position_correct": pos_ok}


@pytest.mark.parametrize("text,want", [
    # the longest synonym at the first position wins; full labels add the target's synonyms
    ("A tabby cat at the top-left.", (1.0, details("tabby cat", "top-left", True, True))),
    # a wrong class named first is what a reader recovers
    ("A tiger cat, not a tabby cat, at the top-left.", (0.5, details("tiger cat", "top-left", False, True))),
    # the first class wins even when a later one has a longer name
    ("A dog next to a tiger cat, at the bottom-right.", (0.0, details("dog", "bottom-right", False, False))),
    ("Nothing to see.", (0.0, details(None, None, False, False))),
])
def test_simulatability_recovers_the_first_class_and_position(text, want) -> None:
    value, d = want
    assert simulatability(text, sheet()) == MetricResult("simulatability", value, True, "text", d)


def test_simulatability_keeps_the_earlier_synonym_at_a_shared_position() -> None:
    """Two synonyms start at the same place: the longer one is kept, an equal or shorter later one is not."""
    s = sheet(labels=("tabby cat", "tabby"), target=0, label="tabby cat")
    assert simulatability("A tabby cat.", s).details["class"] == "tabby cat"
    assert simulatability("A tabby cat.", s).details["class_correct"] is True


def test_simulatability_without_the_models_labels_uses_the_target_label() -> None:
    s = sheet(labels=(), target=1, label="tabby, tabby cat")
    r = simulatability("a tabby cat at the top-left", s)
    assert r.details == details("tabby cat", "top-left", True, True) and r.value == 1.0
    s1 = sheet(labels=(), target=0, label="Egyptian cat")
    assert simulatability("an Egyptian cat", s1).details["class_correct"] is True


def test_simulatability_finds_a_one_letter_class_at_the_very_end() -> None:
    s = sheet(labels=("x", "y"), target=0, label="x")
    assert simulatability("class x", s).details["class"] == "x"


def test_an_empty_synonym_in_a_label_file_is_never_a_class() -> None:
    """A trailing comma in a label ("dog,") gives an empty synonym, which must not match."""
    s = sheet(labels=("dog,", "cat"), target=0, label="dog")
    assert simulatability("the dog", s).details["class"] == "dog"


def test_text_metrics_returns_all_three_in_order() -> None:
    s, t = sheet(), "Net predicts tabby (79%)."
    assert text_metrics(t, s) == [fact_fidelity(t, s), coverage(t, s), simulatability(t, s)]
