"""The template's sentences, written out by hand for each template (pointwise, contrastive, not the
top class, group level, no region, up to two or five regions, each describer, the map's deletion
check) and each verb of a confidence change; the facts it records; the slot names."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from vlx.types import Fact, Prediction, Region, RegionDescription
from vlx.verbalize import FactSheet, verify
from vlx.verbalize.facts import MapFacts
from vlx.verbalize.template import TemplateVerbalizer, fill_slots, method_display_name, short_name, slot_name

LABELS = ("tench, Tinca tinca", "goldfish", "Egyptian cat", "tiger cat", "tabby, tabby cat", "espresso")
POS = ("centre", "top-left", "bottom-right", "centre-left", "top-centre", "bottom-left")


def _r(i, after=None, desc=None, pos=None):
    return Region(id=i, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=0.10 + i / 100,
                  attribution_mass=0.50 - i / 10, mean_attribution=0.1, position=pos or POS[i],
                  score_after_removal=after, description=desc)


def _sheet(regions=(), **kw) -> FactSheet:
    base = dict(model="Net", prediction=Prediction((2, 3, 4), LABELS[2:5], (0.79, 0.09, 0.05)), target_index=2,
                target_label="Egyptian cat", target_score=0.79, method="gradcam", regions=tuple(regions),
                labels=LABELS)
    base.update(kw)
    return FactSheet(**base)


def _text(sheet, style="short"):
    return TemplateVerbalizer(style).verbalize(sheet).text


def test_pointwise_with_two_regions_and_the_causal_verbs():
    s = _sheet([_r(0, after=0.12), _r(1, after=0.79), _r(2, after=0.95)])
    assert _text(s) == ("Net predicts Egyptian cat (79%). The region at the centre, 10% of the image, holds 50% of "
                        "the Grad-CAM attribution; blurring it lowers the confidence to 12%. A second region, at the "
                        "top-left (11% of the image), holds 40%; blurring it leaves the confidence at 79%.")
    assert _text(s, "detailed").endswith(" A third region, at the bottom-right (12% of the image), holds 30%; "
                                         "blurring it raises the confidence to 95%.")


def test_a_change_is_judged_on_the_rounded_numbers():
    s = _sheet([_r(0, after=0.7949)])           # 79% as written: unchanged
    assert "blurring it leaves the confidence at 79%." in _text(s)
    s = _sheet([_r(0, after=0.785)])            # 0.785 -> 79% (half up)
    assert "leaves the confidence at 79%." in _text(s)
    s = _sheet([_r(0, after=0.7849)])
    assert "lowers the confidence to 78%." in _text(s)
    s = _sheet([_r(0, after=0.795)])
    assert "raises the confidence to 80%." in _text(s)


def test_detailed_style_takes_five_regions_short_two():
    s = _sheet([_r(i) for i in range(6)])
    short, detailed = _text(s), _text(s, "detailed")
    assert short.count(" region") == 2 and "A third" not in short
    for ordinal, pos in zip(("A second", "A third", "A fourth", "A fifth"), POS[1:5]):
        assert f"{ordinal} region, at the {pos} (" in detailed
    assert POS[5] not in detailed and detailed.count(" region") == 5
    assert detailed.endswith("A fifth region, at the top-centre (14% of the image), holds 10%.")


def test_contrastive_and_not_the_top_class():
    s = _sheet([_r(0)], other_index=3, other_label="tiger cat", other_score=0.09)
    assert _text(s) == ("Net gives Egyptian cat 79% and tiger cat 9%. The region at the centre, 10% of the image, "
                        "holds 50% of the Grad-CAM attribution for Egyptian cat rather than tiger cat.")
    # a contrast class without a score is not stated
    s = _sheet([_r(0)], other_label="tiger cat", other_score=None)
    assert _text(s).startswith("Net predicts Egyptian cat (79%). ")
    s = _sheet(target_index=4, target_label="tabby", target_score=0.05)
    assert _text(s) == ("Net gives tabby 5%; its top class is Egyptian cat (79%). "
                        "No region holds positive Grad-CAM attribution.")
    s = _sheet(prediction=Prediction((5, 2), ("espresso, coffee", "Egyptian cat"), (0.6, 0.3)), target_score=0.3)
    assert _text(s).startswith("Net gives Egyptian cat 30%; its top class is espresso (60%).")


def test_group_level_only_in_detailed_style_and_only_when_it_adds_a_word():
    s = _sheet(group="feline")
    assert _text(s, "detailed") == ("Net predicts Egyptian cat (79%); Egyptian cat is a kind of feline. "
                                    "No region holds positive Grad-CAM attribution.")
    assert _text(s) == "Net predicts Egyptian cat (79%). No region holds positive Grad-CAM attribution."
    assert "kind of" not in _text(_sheet(group="Cat"), "detailed")
    assert "kind of" not in _text(_sheet(group=None), "detailed")


@pytest.mark.parametrize("desc, sentence", [
    (RegionDescription(("tabby",), (0.456,), ("brown", "grey"), "", "offline"),
     " On its own, the model reads it as tabby (46%); it is mostly brown and grey."),
    (RegionDescription(("fur", "grass"), (0.31, 0.2), (), "", "clip:ViT-B-32"),
     " CLIP matches it best to fur (31%)."),
    (RegionDescription((), (), ("red",), " a red ball ", "vlm:SmolVLM"),
     ' SmolVLM describes it as "a red ball"; it is mostly red.'),
    (RegionDescription((), (), ("red",), "", "offline"), " It is mostly red."),
    (RegionDescription((), (), (), "", "offline"), ""),
])
def test_each_describer_in_detailed_style(desc, sentence):
    s = _sheet([_r(0, desc=desc)])
    head = "Net predicts Egyptian cat (79%). The region at the centre, 10% of the image, holds 50% of the Grad-CAM attribution."
    assert _text(s, "detailed") == head + sentence
    assert _text(s) == head
    assert verify(_text(s, "detailed"), s).status == "verified"


@pytest.mark.parametrize("after, random_after, sentence", [
    (0.3, 0.7, "lowers the confidence from 79% to 30%; blurring a random 20% lowers it to 70%."),
    (0.9, 0.85, "raises the confidence from 79% to 90%; blurring a random 20% raises it to 85%."),
    (0.786, 0.794, "leaves the confidence at 79%; blurring a random 20% leaves it unchanged."),
])
def test_the_map_check_sentence(after, random_after, sentence):
    s = _sheet(map_check=MapFacts(fraction=0.2, after=after, random_after=random_after))
    assert _text(s) == ("Net predicts Egyptian cat (79%). No region holds positive Grad-CAM attribution. "
                        "Blurring the 20% of the image the map ranks highest " + sentence)
    assert verify(_text(s), s).status == "verified"


def test_the_recorded_facts_and_the_verbalization():
    d = RegionDescription(("tabby",), (0.4,), ("brown", "grey"), "", "offline")
    s = _sheet([_r(0, after=0.12, desc=d)], group="feline", map_check=MapFacts(0.2, 0.3, 0.7))
    v = TemplateVerbalizer("detailed").verbalize(s)
    assert v.facts == (Fact("class", "Egyptian cat"), Fact("model", "Net"), Fact("confidence", 0.79),
                       Fact("group", "feline"), Fact("method", "Grad-CAM"), Fact("region1.position", "centre"),
                       Fact("region1.area_fraction", 0.1), Fact("region1.attribution_mass", 0.5),
                       Fact("region1.score_after_removal", 0.12), Fact("region1.seen_as", "tabby"),
                       Fact("region1.seen_as_score", 0.4), Fact("region1.colors", "brown, grey"),
                       Fact("map.fraction", 0.2), Fact("map.after", 0.3), Fact("map.random_after", 0.7))
    assert (v.style, v.verbalizer, v.verified, v.check) == ("detailed", "template", True,
                                                            {"status": "verified", "issues": []})
    slotted, slots = TemplateVerbalizer("detailed").slotted(s)
    assert slotted.startswith("[MODEL] predicts [CLASS] ([CONF]); [CLASS] is a kind of [GROUP]. The region at the "
                              "[R1_POS], [R1_AREA] of the image, holds [R1_SHARE] of the Grad-CAM attribution")
    assert slots["R1_COLOURS"] == "brown and grey" and slots["MAP_FRAC"] == "20%" and slots["CONF"] == "79%"
    assert fill_slots(slotted, slots) == v.text


def test_names_and_styles():
    assert method_display_name("gradcam") == "Grad-CAM"
    assert method_display_name("no-such-method") == "no-such-method"
    assert short_name("tabby, tabby cat") == "tabby" and short_name(" espresso ") == "espresso"
    assert [slot_name(k) for k in ("model", "other_confidence", "region12.seen_as_score", "map.random_after")] == \
        ["MODEL", "OTHER_CONF", "R12_SEEN_CONF", "RANDOM_AFTER"]
    with pytest.raises(KeyError):
        slot_name("region1.nope")
    with pytest.raises(ValueError, match=r"style must be one of \('short', 'detailed'\)"):
        TemplateVerbalizer("long")
    assert TemplateVerbalizer().style == "short"
    assert fill_slots("no slots", {}) == "no slots"
    assert fill_slots("[A][B]", {"A": "1", "B": "[A]"}) == "1[A]"


def test_facts_and_slots_of_the_contrastive_and_not_the_top_class_templates():
    s = _sheet([_r(0)], other_index=3, other_label="tiger cat", other_score=0.09)
    v = TemplateVerbalizer().verbalize(s)
    assert v.facts[:5] == (Fact("class", "Egyptian cat"), Fact("model", "Net"), Fact("confidence", 0.79),
                           Fact("other_class", "tiger cat"), Fact("other_confidence", 0.09))
    slotted, slots = TemplateVerbalizer().slotted(s)
    assert slotted == ("[MODEL] gives [CLASS] [CONF] and [OTHER] [OTHER_CONF]. The region at the [R1_POS], [R1_AREA] of "
                       "the image, holds [R1_SHARE] of the Grad-CAM attribution for [CLASS] rather than tiger cat.")
    assert slots == {"CLASS": "Egyptian cat", "MODEL": "Net", "CONF": "79%", "OTHER": "tiger cat", "OTHER_CONF": "9%",
                     "METHOD": "Grad-CAM", "R1_POS": "centre", "R1_AREA": "10%", "R1_SHARE": "50%"}
    assert fill_slots(slotted, slots) == v.text
    # not the top class: the top class by its first synonym, and its probability
    s = _sheet(prediction=Prediction((5, 2), ("espresso, coffee", "Egyptian cat"), (0.6, 0.3)), target_score=0.3)
    assert TemplateVerbalizer().verbalize(s).facts == (
        Fact("class", "Egyptian cat"), Fact("model", "Net"), Fact("confidence", 0.3), Fact("top_class", "espresso"),
        Fact("top_confidence", 0.6), Fact("method", "Grad-CAM"))
    slotted, slots = TemplateVerbalizer().slotted(s)
    assert slotted == ("[MODEL] gives [CLASS] [CONF]; its top class is [TOP] ([TOP_CONF]). "
                       "No region holds positive Grad-CAM attribution.")
    assert slots == {"CLASS": "Egyptian cat", "MODEL": "Net", "CONF": "30%", "TOP": "espresso", "TOP_CONF": "60%",
                     "METHOD": "Grad-CAM"}


@pytest.mark.parametrize("desc, sentence, facts, slots", [
    (RegionDescription(("fur", "grass"), (0.31, 0.2), (), "", "clip:hf:ViT-B-32"),
     " CLIP matches it best to fur (31%).", (Fact("region1.seen_as", "fur"), Fact("region1.seen_as_score", 0.31)),
     {"R1_SEEN": "fur", "R1_SEEN_CONF": "31%"}),
    # a VLM describer's source is "vlm:hf:<name>": the name after the second colon
    (RegionDescription((), (), (), " a red ball ", "vlm:hf:SmolVLM-256M-Instruct"),
     ' SmolVLM-256M-Instruct describes it as "a red ball".', (Fact("region1.caption", " a red ball "),),
     {"R1_CAPTION": "a red ball"}),
    # a local folder's name may hold a colon: all of it after "vlm:hf:" names the describer
    (RegionDescription((), (), (), "a red ball", "vlm:hf:run:3"), ' run:3 describes it as "a red ball".',
     (Fact("region1.caption", "a red ball"),), {"R1_CAPTION": "a red ball"}),
])
def test_each_describers_facts_and_slots(desc, sentence, facts, slots):
    s = _sheet([_r(0, desc=desc)])
    v = TemplateVerbalizer("detailed").verbalize(s)
    assert v.text.endswith(" of the Grad-CAM attribution." + sentence)
    assert v.facts[-len(facts):] == facts
    slotted, table = TemplateVerbalizer("detailed").slotted(s)
    assert {k: table[k] for k in slots} == slots and fill_slots(slotted, table) == v.text
    assert verify(v.text, s).status == "verified"


def test_a_slot_the_table_does_not_hold_leaves_nothing_filled():
    assert fill_slots("[CLASS] holds [R1_AFTER].", {"CLASS": "tabby"}) is None
    assert fill_slots("[R1_AFTER]", {}) is None


def test_the_display_name_is_the_summary_before_its_first_colon(monkeypatch):
    from vlx.registry import METHODS

    class _Method:
        summary = "My-CAM: channel weights: the mean gradient"

    assert "gradcam" in METHODS                        # the registry is filled before one entry is added
    monkeypatch.setitem(METHODS._items, "mycam", _Method)
    assert method_display_name("mycam") == "My-CAM"
    _Method.summary = "Input times gradient"           # no colon: the registry name
    assert method_display_name("mycam") == "mycam"
