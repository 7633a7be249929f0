"""The verifier's rules one at a time, at their exact boundaries: how a stated percentage matches a
measured share, how many claims a text makes and how many were right, what each number is read as
(probability, area, attribution share, confidence after blurring, the map's deletion check), which
region it is about, and which class names reject a text. Expected values are written by hand."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlx.types import Prediction, Region, RegionDescription
from vlx.verbalize import FactSheet, verify
from vlx.verbalize.facts import MapFacts
from vlx.verbalize.verify import CheckResult, normalize

LABELS = ("tench, Tinca tinca", "goldfish", "Egyptian cat", "tiger cat", "tabby, tabby cat", "espresso",
          "analog clock", "banana")
HEAD = "EfficientNet-Lite0 predicts Egyptian cat (79%). "


def _region(i: int, pos: str, area: float, mass: float, after: float | None) -> Region:
    return Region(id=i, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=area,
                  attribution_mass=mass, mean_attribution=0.1, position=pos, score_after_removal=after)


def _sheet(score: float = 0.79, top: int = 2, **kw) -> FactSheet:
    regions = (_region(0, "centre", 0.22, 0.52, 0.71), _region(1, "top-left", 0.10, 0.24, 0.78))
    scores = (0.79, 0.09, 0.05) if top == 2 else (0.85, 0.09, 0.05)
    pred = Prediction((top, 3, 4), (LABELS[top], LABELS[3], LABELS[4]), scores)
    return FactSheet(model="EfficientNet-Lite0", prediction=pred, target_index=2, target_label="Egyptian cat",
                     target_score=score, method="gradcam", regions=kw.pop("regions", regions), labels=LABELS, **kw)


def _prob(stated: str, score: float) -> CheckResult:
    return verify(f"EfficientNet-Lite0 predicts Egyptian cat with a probability of {stated}.", _sheet(score))


# --- how a stated percentage matches a share -------------------------------------------------

@pytest.mark.parametrize("stated, score, ok", [
    ("79%", 0.79, True), ("80%", 0.79, False), ("78%", 0.79, False),
    ("11%", 0.105, True),            # pct rounds half up
    ("10%", 0.105, True),            # 0.5 points off: still the same whole percentage
    ("10%", 0.1051, False),          # 0.51 points off
    ("12%", 0.115, True), ("11%", 0.115, True), ("11%", 0.1151, False),
    ("<1%", 0.0099, True), ("<1%", 0.01, False), ("<1%", 0.0, True), ("1%", 0.005, True),
    ("45.8%", 0.458, True), ("45.8%", 0.4584, True), ("45.8%", 0.4585, True), ("45.8%", 0.4575, True), ("45.8%", 0.459, False), ("45.8%", 0.457, False),
    ("46%", 0.458, True), ("45%", 0.458, False),
    ("79 percent", 0.79, True), ("79 per cent", 0.79, True), ("81 percent", 0.79, False),
])
def test_a_stated_percentage_matches_a_share_at_its_rounding_boundary(stated, score, ok):
    r = _prob(stated, score)
    assert (r.status == "verified") is ok, (stated, score, r.issues)
    assert (r.claims, r.correct) == (2, 2 if ok else 1)


def test_a_wrong_probability_is_corrected_to_the_measured_one():
    r = _prob("64%", 0.79)
    assert r.status == "corrected"
    assert r.text == "EfficientNet-Lite0 predicts Egyptian cat with a probability of 79%."
    assert r.issues == ["states 64% as confidence of the prediction; the measured value is 79%"]
    assert (r.claims, r.correct, r.fidelity) == (2, 1, 0.5)
    r = _prob("<1%", 0.3)
    assert r.status == "corrected" and r.text.endswith("probability of 30%.")


def test_a_wrong_probability_is_the_predictions_and_its_value_is_listed_once():
    s = _sheet()
    # the explained class is also the top predicted class: one measured value, 79%, so it is corrected
    r = verify("EfficientNet-Lite0 predicts Egyptian cat (64%).", s)
    assert r.status == "corrected" and r.text == "EfficientNet-Lite0 predicts Egyptian cat (79%)."
    assert r.issues == ["states 64% as probability of the prediction; the measured value is 79%"]
    # a confidence after a region reference is still the prediction's, not region 2's
    r = verify(HEAD + "The top-left holds 24% of the attribution. Its confidence is 50%.", s)
    assert r.status == "corrected" and r.text.endswith("Its confidence is 79%.")
    assert r.issues == ["states 50% as confidence of the prediction; the measured value is 79%"]
    # two regions at one position with the same share read the same: corrected, the value listed once
    regions = (_region(0, "centre", 0.22, 0.52, 0.71), _region(1, "centre", 0.10, 0.521, 0.78))
    r = verify(HEAD + "The centre holds 30% of the attribution.", _sheet(regions=regions))
    assert r.status == "corrected" and r.text == HEAD + "The centre holds 52% of the attribution."
    assert r.issues == ["states 30% as mass of region 1 or 2; the measured value is 52%"]


# --- counting claims --------------------------------------------------------------------------

def test_claims_and_correct_counts_by_hand():
    s = _sheet()
    r = verify("EfficientNet-Lite0 predicts Egyptian cat (79%).", s)
    assert (r.status, r.claims, r.correct, r.issues, r.fidelity) == ("verified", 2, 2, [], 1.0)
    assert r.text == "EfficientNet-Lite0 predicts Egyptian cat (79%)."
    # class, number, region reference, number
    r = verify(HEAD + "The region at the centre holds 52% of the attribution.", s)
    assert (r.status, r.claims, r.correct) == ("verified", 4, 4)
    r = verify(HEAD + "The region at the centre holds 25% of the attribution.", s)
    assert (r.status, r.claims, r.correct, r.fidelity) == ("corrected", 4, 3, 0.75)
    assert r.text == HEAD + "The region at the centre holds 52% of the attribution."
    assert r.issues == ["states 25% as mass of region 1; the measured value is 52%"]
    # two wrong numbers corrected at once, right to left
    r = verify(HEAD + "Region 2 holds 52% of the attribution and covers 22% of the image.", s)
    assert r.status == "corrected" and (r.claims, r.correct) == (5, 3)
    assert r.text == HEAD + "Region 2 holds 24% of the attribution and covers 10% of the image."
    # an unsupported word is a claim that is wrong
    r = verify(HEAD + "The accuracy is great.", s)
    assert (r.status, r.claims, r.correct) == ("rejected", 4, 2)
    assert r.issues == ["says 'accuracy', which is not a fact vlx measured",
                        "says 'great', which is not a fact vlx measured"]
    assert r.text == HEAD + "The accuracy is great."


def test_a_text_with_no_claims_has_fidelity_one_and_its_json():
    r = CheckResult("verified", "")
    assert r.fidelity == 1.0 and r.issues == [] and (r.claims, r.correct) == (0, 0)
    r = CheckResult("corrected", "x", ["a"], 4, 3)
    assert r.to_json() == {"status": "corrected", "issues": ["a"], "claims": 4, "correct": 3, "fidelity": 0.75}


def test_a_rejected_text_is_returned_unchanged_not_normalized():
    s = _sheet()
    text = "EfficientNet-Lite0 predicts Egyptian cat (79%). The region at the center left holds 52%."
    r = verify(text, s)
    assert r.status == "rejected" and r.text == text
    assert r.issues == ["names a region that was not measured near 'centre-left holds 52%.'"]
    assert (r.claims, r.correct) == (4, 3)


def test_a_verified_text_is_returned_as_written():
    text = HEAD + "The region in the center holds 52% of the attribution."
    r = verify(text, _sheet())
    assert r.status == "verified" and r.text == text


# --- spelling variants ---------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("the center left", "the centre-left"), ("the Middle right", "the centre-right"),
    ("top left", "top-left"), ("Bottom Centre", "Bottom-Centre"), ("bottom-right", "bottom-right"),
    ("middle centre", "centre"), ("center-center", "centre"), ("epicenter", "epicenter"),
    ("top   left", "top   left"),
])
def test_normalize(text, want):
    assert normalize(text) == want


# --- what a number is read as ----------------------------------------------------------------

@pytest.mark.parametrize("sentence, fixed", [
    ("The region at the centre covers 52% of the image.", "covers 22% of the image"),          # area
    ("The region at the centre holds 22% of the attribution.", "holds 52% of the attribution"),  # mass
    ("Blurring the region at the centre lowers the confidence to 52%.", "confidence to 71%"),   # after
    ("Without the region at the centre, 52% remains.", "centre, 71% remains"),                 # after, "without"
    ("The region at the centre: 52% of the image.", "centre: 22% of the image"),
    ("The centre region is 71% of the image area.", "is 22% of the image"),
    ("The region at the top-left holds 52% of the evidence.", "holds 24% of the evidence"),
    ("At the top-left, 52% of the saliency.", "top-left, 24% of the saliency"),
    ("Once the top-left is hidden, the confidence becomes 52%.", "becomes 78%"),  # confidence + removal = after
])
def test_a_number_is_read_as_the_kind_its_clause_names(sentence, fixed):
    r = verify(HEAD + sentence, _sheet())
    assert r.status == "corrected", r.issues
    assert fixed in r.text, r.text


def test_the_nearest_keyword_decides_the_kind():
    s = _sheet()
    # "attribution" right after the number, "image" 25 characters before it: mass
    assert verify(HEAD + "The image's centre region has 52% attribution.", s).status == "verified"
    # "covers" right before the number, "attribution" further left: area
    assert verify(HEAD + "The attribution's centre region covers 22%.", s).status == "verified"
    assert verify(HEAD + "The attribution's centre region covers 52%.", s).status == "corrected"
    # "size" right before: area
    assert verify(HEAD + "The centre region, at an attribution share of size 22%.", s).status == "verified"
    # "area" 5 characters to the left ("area " ends at the number), "share" 5 to the right (" of s"):
    # a tie, which the kind's name breaks ("area" < "mass")
    r = verify(HEAD + "The centre region: area 22% of share.", s)
    assert r.status == "verified", r.issues
    # one character nearer on the right: mass
    r = verify(HEAD + "The centre region: area 52% o share.", s)
    assert r.status == "rejected" and r.issues == ["says 'o', which is not a fact vlx measured"]


def test_a_keyword_elsewhere_in_the_sentence_gives_the_kind():
    s = _sheet()
    assert verify(HEAD + "For the attribution, the centre region has 52%.", s).status == "verified"
    r = verify(HEAD + "For the attribution, the centre region has 22%.", s)
    assert r.status == "corrected" and r.text.endswith("has 52%.")
    # the keyword is in another sentence: no kind, rejected
    r = verify(HEAD + "It is the attribution. The centre region has 52%.", s)
    assert r.status == "rejected" and r.issues == ["states 52% without saying what it measures"]
    assert (r.claims, r.correct) == (4, 3)


def test_confidence_of_a_class_that_is_not_the_top_one():
    s = _sheet(score=0.30, top=5)   # explained class at 30%, the top class (espresso) at 85%
    assert not s.is_top
    ok = "EfficientNet-Lite0 explains Egyptian cat, at a confidence of {}."
    for v in ("30%", "85%"):
        r = verify(ok.replace("explains", "predicts").format(v), s)
        assert r.status == "verified", (v, r.issues)
    r = verify(ok.replace("explains", "predicts").format("50%"), s)
    assert r.status == "rejected"
    assert r.issues == ["states 50% as confidence of the prediction; the measured value is 30% or 85%"]
    # a region's confidence-after-blurring is still that region's
    r = verify("EfficientNet-Lite0 predicts Egyptian cat (30%). Blurring the centre lowers the confidence to 71%.", s)
    assert r.status == "verified", r.issues


def test_an_unmeasured_after_blurring_value_is_not_a_match():
    regions = (_region(0, "centre", 0.22, 0.52, None),)
    r = verify(HEAD + "Blurring the centre lowers the confidence to 52%.", _sheet(regions=regions))
    assert r.status == "rejected"
    assert r.issues == ["states 52% as after of region 1"]


# --- regions ----------------------------------------------------------------------------------

@pytest.mark.parametrize("sentence, ok", [
    ("Region 2 holds 24% of the attribution.", True),
    ("The second region holds 24% of the attribution.", True),
    ("The Second Region holds 24% of the attribution.", True),
    ("The first region holds 52% of the attribution.", True),
    ("Region 1 holds 52% of the attribution.", True),
    ("Region 3 holds 24% of the attribution.", False),
    ("The third region holds 24% of the attribution.", False),
    ("Region 0 holds 24% of the attribution.", False),
    ("The region at the bottom-right holds 24% of the attribution.", False),
])
def test_region_references(sentence, ok):
    r = verify(HEAD + sentence, _sheet())
    assert (r.status == "verified") is ok, r.issues
    if not ok:
        assert r.status == "rejected" and any("names a region that was not measured" in i for i in r.issues)


def test_a_number_belongs_to_the_last_region_named_before_it():
    s = _sheet()
    r = verify(HEAD + "The top-left holds 24% and the centre holds 52% of the attribution.", s)
    assert r.status == "verified", r.issues
    r = verify(HEAD + "The centre holds 24% and the top-left holds 52% of the attribution.", s)
    assert r.status == "corrected"
    assert r.text == HEAD + "The centre holds 52% and the top-left holds 24% of the attribution."
    # a number before any region reference is about region 1
    r = verify(HEAD + "52% of the attribution lies at the top-left.", s)
    assert r.status == "verified", r.issues


def test_a_position_restating_a_numbered_region_is_not_a_new_reference():
    s = _sheet()
    r = verify(HEAD + "A second region, at the top-left (10% of the image), holds 24%.", s)
    assert (r.status, r.claims, r.correct) == ("verified", 5, 5)
    # the same position in the next sentence is a reference of its own
    r = verify(HEAD + "A second region holds 24%. The top-left covers 10% of the image.", s)
    assert (r.status, r.claims, r.correct) == ("verified", 6, 6)


def test_a_position_shared_by_two_regions_accepts_either_and_cannot_be_corrected():
    regions = (_region(0, "centre", 0.22, 0.52, 0.71), _region(1, "centre", 0.10, 0.24, 0.78))
    s = _sheet(regions=regions)
    for v in ("52%", "24%"):
        assert verify(HEAD + f"The centre holds {v} of the attribution.", s).status == "verified"
    r = verify(HEAD + "The centre holds 30% of the attribution.", s)
    assert r.status == "rejected"
    assert r.issues == ["states 30% as mass of region 1 or 2; the measured value is 52% or 24%"]


# --- the map's deletion check ---------------------------------------------------------------

MAP = ("Blurring the 20% of the image the map ranks highest lowers the confidence from 79% to 30%; "
       "blurring a random 20% lowers it to 70%.")


def test_the_map_check_sentence_verifies_number_by_number():
    s = _sheet(map_check=MapFacts(fraction=0.2, after=0.3, random_after=0.7))
    r = verify(HEAD + MAP, s)
    assert (r.status, r.claims, r.correct) == ("verified", 7, 7)
    for wrong, kind, value in [("the 20% of", "the share of the image blurred in the map's deletion check", "20%"),
                               ("from 79%", "the confidence before blurring", "79%"),
                               ("to 30%", "the confidence after blurring what the map ranks highest", "30%"),
                               ("random 20%", "the share of the image blurred in the map's deletion check", "20%"),
                               ("to 70%", "the confidence after blurring a random share", "70%")]:
        bad = (HEAD + MAP).replace(wrong, wrong.replace(value, "55%"))
        r = verify(bad, s)
        assert r.status == "corrected", (wrong, r.issues)
        assert r.text == HEAD + MAP
        assert r.issues == [f"states 55% as {kind}; the measured value is {value}"]
        assert (r.claims, r.correct) == (7, 6)


def test_a_map_check_that_was_not_measured_rejects_its_sentence():
    r = verify(HEAD + MAP, _sheet())
    assert r.status == "rejected"
    assert r.issues[0] == "states 20% about a deletion check of the map, which was not measured"
    assert len(r.issues) == 5 and (r.claims, r.correct) == (7, 2)


def test_a_map_check_sentence_is_only_one_that_says_ranks_highest_or_random():
    s = _sheet(map_check=MapFacts(fraction=0.2, after=0.3, random_after=0.7))
    # no "ranks highest" / "random": the region rule applies (area of region 1)
    assert verify(HEAD + "Blurring 22% of the image lowers the confidence to 71%.", s).status == "verified"
    # "random" in the next sentence does not make this one a map check
    r = verify(HEAD + "The centre covers 22% of the image. A random share is not described.", s)
    assert r.status == "verified", r.issues
    # a clause after "while" that says random
    r = verify(HEAD + "Blurring what the map ranks highest lowers it to 30% while a random share lowers it to 70%.", s)
    assert r.status == "verified", r.issues
    r = verify(HEAD + "Blurring the 20% of the picture the map ranks highest lowers the confidence to 30%.", s)
    assert r.status == "verified", r.issues


# --- class names ---------------------------------------------------------------------------------

def test_a_wrong_class_name_rejects_and_is_counted():
    s = _sheet()
    r = verify(HEAD + "The model also sees a banana and a goldfish.", s)
    assert r.status == "rejected"
    assert r.issues == ["says 'banana', which is not a fact vlx measured",
                        "says 'goldfish', which is not a fact vlx measured",
                        "names class 'banana', which is not among the facts",
                        "names class 'goldfish', which is not among the facts"]
    assert (r.claims, r.correct) == (6, 2)
    # a synonym of a predicted class is no wrong class; nor is the class's group
    assert verify(HEAD + "The model also sees a tabby.", s).status == "verified"
    assert verify(HEAD + "The model also sees a tabby cat and a tiger cat.", s).status == "verified"
    g = _sheet(group="cat")
    assert verify(HEAD + "It is a cat.", g).status == "verified"


def test_a_missing_explained_class_rejects():
    r = verify("EfficientNet-Lite0 predicts a tabby (5%).", _sheet())
    assert r.status == "rejected"
    assert r.issues == ["does not name the explained class 'Egyptian cat'"]
    assert (r.claims, r.correct) == (2, 1)
    # any synonym of the explained class names it, in any case
    s = dataclasses.replace(_sheet(), target_label="tabby, tabby cat", target_score=0.05)
    assert verify("EfficientNet-Lite0 predicts Tabby Cat (5%) and Egyptian cat (79%).", s).status == "verified"


def test_is_top():
    assert _sheet().is_top and not _sheet(score=0.3, top=5).is_top
    empty = dataclasses.replace(_sheet(), prediction=Prediction((), (), ()))
    assert empty.is_top
    # with no prediction, a stated confidence is the explained class's
    assert verify("EfficientNet-Lite0 predicts Egyptian cat with a probability of 79%.", empty).status == "verified"


# --- boundaries found by mutation testing --------------------------------------------------------

def test_spelling_variants_in_any_case_and_positions_in_any_case():
    assert normalize("the Center left") == "the centre-left" and normalize("CENTER") == "centre"
    r = verify(HEAD + "The Top-Left holds 24% of the attribution.", _sheet())
    assert r.status == "verified", r.issues


def test_messages_a_user_reads():
    s = _sheet()
    # an unmeasured region is quoted by the 30 characters from where it is named
    r = verify(HEAD + "The third region holds 24% of the attribution.", s)
    assert r.issues[0] == "names a region that was not measured near 'third region holds 24% of the '"
    # "< 1%" is quoted as written without its space
    r = verify("EfficientNet-Lite0 predicts Egyptian cat with a probability of < 1%.", s)
    assert r.issues == ["states <1% as confidence of the prediction; the measured value is 79%"]
    assert r.text == "EfficientNet-Lite0 predicts Egyptian cat with a probability of 79%."


def test_corrections_of_other_lengths_and_checks_after_an_unread_number():
    s = _sheet()
    r = verify(HEAD + "Region 2 holds 5% of the attribution and covers 2% of the image.", s)
    assert r.status == "corrected"
    assert r.text == HEAD + "Region 2 holds 24% of the attribution and covers 10% of the image."
    # a number with no stated meaning does not stop the check of the numbers after it
    r = verify(HEAD + "The centre region has 52%. It covers 30% of the image.", s)
    assert r.issues == ["states 52% without saying what it measures",
                        "states 30% as area of region 1; the measured value is 22%"]
    # a number after a class name whose clause names its kind is read as that kind
    r = verify(HEAD + "The region at the centre holds Egyptian cat 52% of the attribution.", s)
    assert r.status == "verified", r.issues


def test_the_map_sentence_is_bounded_by_its_own_sentence_and_clause():
    s = _sheet(map_check=MapFacts(fraction=0.2, after=0.3, random_after=0.7))
    # a map sentence before does not make the next one a map check
    r = verify(HEAD + MAP + " The centre covers 22% of the image.", s)
    assert r.status == "verified", r.issues
    # a map sentence at the very start, and one without a final full stop
    r = verify("Random blurring of 20% of the image lowers the confidence of Egyptian cat to 70%.", s)
    assert r.status == "verified", r.issues
    r = verify((HEAD + MAP)[:-1], s)
    assert r.status == "verified", r.issues
    # the clause of a number after the random one starts at a comma, or at "while"
    for sep in (",", " while"):
        r = verify(HEAD + f"Blurring a random 20% lowers it to 70%{sep} blurring what the map ranks highest lowers it "
                   "to 30%.", s)
        assert r.status == "verified", (sep, r.issues)


def test_class_names_at_their_boundaries():
    s = _sheet()
    r = verify("EfficientNet-Lite0 predicts a cat (79%).", s)        # one word of the explained class is not its name
    assert "does not name the explained class 'Egyptian cat'" in r.issues
    # a contrast class and what a describer saw are facts, not wrong classes
    d = RegionDescription(("banana",), (0.4,), (), "", "offline")
    regions = (Region(id=0, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=0.22,
                      attribution_mass=0.52, mean_attribution=0.1, position="centre", score_after_removal=None,
                      description=d),)
    c = _sheet(regions=regions, other_index=1, other_label="goldfish", other_score=0.01)
    assert verify(HEAD + "The centre reads as banana, and not goldfish.", c).status == "verified"
    # a wrong class that shares a word with a predicted one ("tiger" of "tiger cat"); names of 4+ letters only
    labels = LABELS + ("tiger, Panthera tigris", "lion", "ox")
    t = dataclasses.replace(s, labels=labels, group="cat")
    r = verify(HEAD + "The model also sees a tiger cat, a tiger, a lion and an ox.", t)
    assert [i for i in r.issues if i.startswith("names")] == ["names class 'lion', which is not among the facts",
                                                              "names class 'tiger', which is not among the facts"]
    # the longest fact name is taken out first: "cat" (the group) does not leave "tiger" of "tiger cat"
    assert verify(HEAD + "The model also sees a tiger cat.", t).status == "verified"
    # a text that is nothing but a wrong class name
    r = verify("Banana.", s)
    assert "names class 'banana', which is not among the facts" in r.issues


def test_region_references_at_their_boundaries():
    regions = (_region(0, "centre", 0.22, 0.52, 0.71), _region(1, "centre-left", 0.10, 0.24, 0.78))
    s = _sheet(regions=regions)
    # "centre" inside "centre-left" is no reference, but a later "centre" is
    r = verify(HEAD + "The centre-left holds 24% of the attribution and the centre holds 52% of the attribution.", s)
    assert r.status == "verified", r.issues
    s = _sheet()
    # a position restating a numbered region: up to 40 characters after it
    gap40 = "A second region, which is the part of the image at the top-left"
    assert gap40.index("top-left") - len("A second region") == 40
    r = verify(HEAD + gap40 + ", holds 24%.", s)
    assert (r.status, r.claims) == ("verified", 4)
    r = verify(HEAD + gap40.replace("the part", "this part") + ", holds 24%.", s)
    assert (r.status, r.claims) == ("verified", 5)
    # after a restated position, the same position later is a reference of its own
    r = verify(HEAD + "A second region, at the top-left, holds 24%. The top-left covers 10% of the image.", s)
    assert (r.status, r.claims, r.correct) == ("verified", 6, 6)


def test_the_nearest_keyword_at_its_boundaries():
    s = _sheet()
    # the keyword occurrence nearest to the number counts, on either side
    assert verify(HEAD + "The area of the centre region holds attribution over an area of 22%.", s).status == "verified"
    assert verify(HEAD + "The centre region has 22% area in attribution area.", s).status == "verified"
    # a keyword right after the number's % sign is read
    r = verify(HEAD + "The centre region (22%area) holds 52% of the attribution.", s)
    assert r.status == "verified", r.issues
    # a keyword that opens the clause is read; the clause ends at the parenthesis
    r = verify(HEAD + "The centre region (area 22%) holds 52% of the attribution.", s)
    assert r.status == "verified", r.issues
    # distances in characters: "score " ends 6 before the number; "share" starts 5 or 7 after it
    assert verify(HEAD + "The centre region has a score 52% of share.", s).status == "verified"
    assert verify(HEAD + "The centre region has a score 79% of a share.", s).status == "verified"


def test_a_confidence_read_from_its_sentence_may_be_the_top_class_one():
    s = _sheet(score=0.30, top=5)   # explained class at 30%, the top class (espresso) at 85%
    for v in ("30%", "85%"):
        r = verify(f"EfficientNet-Lite0 predicts Egyptian cat (30%). For the confidence, the centre region has {v}.", s)
        assert r.status == "verified", (v, r.issues)


def test_blurring_makes_a_confidence_one_after_removal_only_within_its_sentence():
    s = _sheet()
    for text in ("EfficientNet-Lite0 predicts Egyptian cat with a confidence of 79%. Blurring the centre lowers the "
                 "confidence to 71%.",
                 "Blurring the centre lowers the confidence to 71%. EfficientNet-Lite0 predicts Egyptian cat with a "
                 "confidence of 79%.",
                 HEAD + "The confidence is 71% with the centre blurred."):
        r = verify(text, s)
        assert r.status == "verified", (text, r.issues)


def test_the_longest_fact_name_is_taken_out_first_whatever_its_spelling():
    # a zero-shot label set where "grey whale" holds two other labels; "whale" is what CLIP saw in a region
    labels = ("grey", "whale", "grey whale", "Egyptian cat")
    d = RegionDescription(("whale",), (0.4,), (), "", "clip:hf:ViT-B-32")
    regions = (Region(id=0, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=0.22,
                      attribution_mass=0.52, mean_attribution=0.1, position="centre", score_after_removal=None,
                      description=d),)
    s = FactSheet(model="Net", prediction=Prediction((3, 2), ("Egyptian cat", "grey whale"), (0.79, 0.1)),
                  target_index=3, target_label="Egyptian cat", target_score=0.79, method="gradcam", regions=regions,
                  labels=labels)
    r = verify("Net predicts Egyptian cat (79%); it also sees a grey whale.", s)
    assert r.status == "verified", r.issues


def test_a_region_number_with_no_regions_measured_has_no_value():
    r = verify(HEAD + "It covers 22% of the image.", _sheet(regions=()))
    assert r.status == "rejected" and r.issues == ["states 22% as area of region 1"]
