"""Constrained LLM verbalization piece by piece: the phrasings of each template sentence (written
out by hand), the sentence split, the LM's choice (ties, single options), the free mode's record,
the chat the LM is sent, and the cut of an unfinished reply. Scripted LMs stand in for a model."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.types import Prediction, Region, RegionDescription
from vlx.verbalize import FactSheet
from vlx.verbalize.llm import LLMVerbalizer, complete_sentences
from vlx.verbalize.phrasings import alternatives, sentences
from vlx.verbalize.template import TemplateVerbalizer
from vlx.verbalize.verify import CHECKED

LABELS = ("tench, Tinca tinca", "goldfish", "Egyptian cat", "tiger cat", "tabby, tabby cat", "espresso")


def _r(i, pos, after=None, seen=None):
    d = RegionDescription((seen,), (0.4,), (), "", "offline") if seen else None
    return Region(id=i, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=0.2 - i / 100,
                  attribution_mass=0.5 - i / 10, mean_attribution=0.1, position=pos, score_after_removal=after,
                  description=d)


def _sheet(**kw) -> FactSheet:
    base = dict(model="Net", prediction=Prediction((2, 3, 4), LABELS[2:5], (0.79, 0.09, 0.05)), target_index=2,
                target_label="Egyptian cat", target_score=0.79, method="gradcam",
                regions=(_r(0, "centre", 0.12), _r(1, "top-left", None, "tabby"), _r(2, "bottom-right", 0.5)),
                labels=LABELS)
    base.update(kw)
    return FactSheet(**base)


# --- phrasings ---------------------------------------------------------------------------------

def test_sentences_split_after_a_full_stop_before_a_capital_or_a_slot():
    assert sentences("  One. Two.  [MODEL] x. and 79.5% stays. e.g. this  ") == \
        ["One.", "Two.", "[MODEL] x. and 79.5% stays. e.g. this"]
    assert sentences("") == [] and sentences("   ") == []
    assert sentences("A! B. C") == ["A! B.", "C"]


def test_the_prediction_sentence_has_four_phrasings():
    s = "[MODEL] predicts [CLASS] ([CONF])."
    assert alternatives(s) == [s, "[MODEL] predicts [CLASS], with a probability of [CONF].",
                               "[MODEL] gives [CLASS] a probability of [CONF].",
                               "For this image, [MODEL] predicts [CLASS] with [CONF] confidence."]
    assert alternatives("[MODEL] predicts [CLASS] ([CONF])") == ["[MODEL] predicts [CLASS] ([CONF])"]
    assert alternatives("x [MODEL] predicts [CLASS] ([CONF]).") == ["x [MODEL] predicts [CLASS] ([CONF])."]


def test_the_first_region_with_a_lower_confidence_has_thirteen_phrasings():
    s = ("The region at the [R1_POS], [R1_AREA] of the image, holds [R1_SHARE] of the [METHOD] attribution; "
         "blurring it lowers the confidence to [R1_AFTER].")
    got = alternatives(s)
    w = " of the [METHOD] attribution"
    bodies = [f"The first region, at the [R1_POS], covers [R1_AREA] of the image and holds [R1_SHARE]{w}",
              f"The [R1_POS] region covers [R1_AREA] of the image and holds [R1_SHARE]{w}",
              f"At the [R1_POS], a region that covers [R1_AREA] of the image holds [R1_SHARE]{w}",
              f"The region at the [R1_POS] holds [R1_SHARE]{w} and covers [R1_AREA] of the image"]
    tails = ["blurring it lowers the confidence to", "with it blurred out, the confidence falls to",
             "blurring it out drops the confidence to"]
    assert got == [s, *(f"{b}; {t} [R1_AFTER]." for b in bodies for t in tails)]


@pytest.mark.parametrize("verb, tails", [
    ("raises the confidence to", ["blurring it raises the confidence to", "with it blurred out, the confidence rises to"]),
    ("leaves the confidence at", ["blurring it leaves the confidence at", "with it blurred out, the confidence stays at"]),
])
def test_a_later_region_with_a_contrast_keeps_its_words(verb, tails):
    what = " of the [METHOD] attribution for [CLASS] rather than tiger cat"
    s = f"A third region, at the [R3_POS] ([R3_AREA] of the image), holds [R3_SHARE]{what}; blurring it {verb} [R3_AFTER]."
    bodies = [f"The third region, at the [R3_POS], covers [R3_AREA] of the image and holds [R3_SHARE]{what}",
              f"The [R3_POS] region covers [R3_AREA] of the image and holds [R3_SHARE]{what}",
              f"At the [R3_POS], a region that covers [R3_AREA] of the image holds [R3_SHARE]{what}"]
    assert alternatives(s) == [s, *(f"{b}; {t} [R3_AFTER]." for b in bodies for t in tails)]


def test_a_region_without_an_after_value_and_without_a_method():
    s = "A second region, at the [R2_POS] ([R2_AREA] of the image), holds [R2_SHARE]."
    assert alternatives(s) == [s, "The second region, at the [R2_POS], covers [R2_AREA] of the image and holds "
                                  "[R2_SHARE] of the attribution.",
                               "The [R2_POS] region covers [R2_AREA] of the image and holds [R2_SHARE] of the attribution.",
                               "At the [R2_POS], a region that covers [R2_AREA] of the image holds [R2_SHARE] of the "
                               "attribution."]
    for head, ordinal in (("A fourth region", "fourth"), ("A fifth region", "fifth")):
        got = alternatives(s.replace("A second region", head))
        assert got[1].startswith(f"The {ordinal} region, at the [R2_POS]"), got
    # region numbers must agree within the sentence
    bad = "A second region, at the [R2_POS] ([R3_AREA] of the image), holds [R2_SHARE]."
    assert alternatives(bad) == [bad]


@pytest.mark.parametrize("top, rnd", [
    ("lowers the confidence from [CONF] to [MAP_AFTER]", "raises it to [RANDOM_AFTER]"),
    ("leaves the confidence at [CONF]", "leaves it unchanged"),
])
def test_the_map_sentence_has_three_phrasings(top, rnd):
    s = f"Blurring the [MAP_FRAC] of the image the map ranks highest {top}; blurring a random [MAP_FRAC] {rnd}."
    verb, rest = top.split(" ", 1)
    assert alternatives(s) == [
        s, f"Blurring the [MAP_FRAC] of the image that the map ranks highest {top}, while blurring a random "
           f"[MAP_FRAC] {rnd}.",
        f"When the [MAP_FRAC] of the image the map ranks highest is blurred, that {verb} {rest}; blurring a "
        f"random [MAP_FRAC] {rnd}."]
    assert alternatives(s[:-1]) == [s[:-1]]


def test_unknown_sentences_keep_their_wording():
    for s in ("[MODEL] gives [CLASS] [CONF] and [OTHER] [OTHER_CONF].", "On its own, the model reads it as [R1_SEEN]."):
        assert alternatives(s) == [s]


# --- the LM's choice ------------------------------------------------------------------------------

class _LM:
    name = "scripted"

    def __init__(self, scores=None, reply=""):
        self.scores, self.reply, self.calls, self.generated = scores, reply, [], []

    def score(self, messages, prefix, candidates):
        self.calls.append((messages, prefix, list(candidates)))
        return self.scores(len(candidates))

    def generate(self, messages, max_new_tokens=96):
        self.generated.append((messages, max_new_tokens))
        return self.reply


def test_ties_go_to_the_template_and_single_options_are_not_scored():
    s = _sheet()
    lm = _LM(lambda n: [0.0] * n)
    v = LLMVerbalizer("detailed", llm=lm).verbalize(s)
    template = TemplateVerbalizer("detailed").verbalize(s)
    assert v.text == template.text and set(v.check["choices"]) == {0}
    n_sent = len(sentences(TemplateVerbalizer("detailed").slotted(s)[0]))
    assert len(v.check["choices"]) == n_sent
    assert len(lm.calls) == n_sent - 1           # "On its own, the model reads it as tabby" has one phrasing
    assert all(m == LLMVerbalizer("detailed").messages(s) for m, _, _ in lm.calls)
    assert lm.calls[0][1] == ""


def test_the_highest_score_wins_even_the_last_option():
    s = _sheet()
    lm = _LM(lambda n: [float(i) for i in range(n)])
    v = LLMVerbalizer(llm=lm).verbalize(s)
    assert v.check["choices"] == [len(c) - 1 for _, _, c in lm.calls]
    assert v.text == " ".join(c[-1] for _, _, c in lm.calls)
    assert v.check["status"] == "verified" and v.text.startswith("For this image, Net predicts Egyptian cat with 79% ")
    assert (v.style, v.verbalizer, v.verified) == ("short", "llm", True)
    assert v.facts == TemplateVerbalizer().verbalize(s).facts
    assert v.check["mode"] == "constrained" and v.check["llm"] == "scripted" and v.check["checked"] == list(CHECKED)
    assert v.check["original"] == v.text and v.check["seconds"] >= 0 and "fallback" not in v.check
    # each sentence is scored after the sentences chosen before it, joined by a space
    chosen = [c[-1] for _, _, c in lm.calls]
    assert [p for _, p, _ in lm.calls] == [" ".join(chosen[:i]) for i in range(len(chosen))]
    assert len(chosen) == 3 and lm.calls[2][1] == chosen[0] + " " + chosen[1]


def test_a_sentence_with_two_phrasings_is_scored(monkeypatch):
    import vlx.verbalize.llm as llm_mod

    monkeypatch.setattr(llm_mod, "alternatives", lambda s: [s, "Other words."] if s.startswith("[MODEL]") else [s])
    lm = _LM(lambda n: [0.0, 1.0])
    v = LLMVerbalizer(llm=lm).verbalize(_sheet(regions=()))
    assert len(lm.calls) == 1 and lm.calls[0][2][1] == "Other words." and v.check["choices"] == [1, 0]
    assert v.check["original"] == "Other words. No region holds positive Grad-CAM attribution."


def test_the_seconds_are_the_time_the_lm_took(monkeypatch):
    import types

    import vlx.verbalize.llm as llm_mod

    clock = iter([10.0, 12.5])
    monkeypatch.setattr(llm_mod, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    v = LLMVerbalizer(llm=_LM(reply="Net predicts Egyptian cat (79%)."), mode="free").verbalize(_sheet())
    assert v.check["seconds"] == 2.5


# --- free mode ---------------------------------------------------------------------------------

def test_free_mode_record_and_reply_cut():
    s = _sheet()
    lm = _LM(reply="  Net predicts Egyptian cat (79%). The region at the centre holds 50% of the attri")
    v = LLMVerbalizer(llm=lm, mode="free", max_new_tokens=7).verbalize(s)
    assert lm.generated == [(LLMVerbalizer().messages(s), 7)]
    assert v.text == "Net predicts Egyptian cat (79%)." and v.check["original"] == v.text
    assert v.check["status"] == "verified" and "choices" not in v.check and v.check["mode"] == "free"
    assert v.check["claims"] == 2 and v.check["fidelity"] == 1.0

    class _Nameless:
        def generate(self, messages, max_new_tokens=96):
            return "Net predicts Egyptian cat (79%)."

    assert LLMVerbalizer(llm=_Nameless(), mode="free").verbalize(s).check["llm"] == "llm"
    assert LLMVerbalizer(mode="free").max_new_tokens == 96


def test_a_rejected_reply_falls_back_to_the_template():
    s = _sheet()
    v = LLMVerbalizer("detailed", llm=_LM(reply="Net is accurate."), mode="free").verbalize(s)
    assert v.check["status"] == "rejected" and v.check["fallback"] == "template"
    assert v.text == TemplateVerbalizer("detailed").verbalize(s).text and v.style == "detailed"
    assert v.check["original"] == "Net is accurate." and v.verified is True
    assert v.verbalizer == "llm" and v.facts == TemplateVerbalizer("detailed").verbalize(s).facts


def test_modes_and_loading():
    from vlx.errors import UsageError

    with pytest.raises(UsageError, match=r"^unknown LLM mode 'creative'; use one of constrained, free\.$"):
        LLMVerbalizer(mode="creative")
    v = LLMVerbalizer()
    assert (v.style, v.mode, v.device, v._llm) == ("short", "constrained", "auto", "smollm2")


def test_a_named_lm_is_loaded_once_on_its_device(monkeypatch):
    import vlx.models.llm as models_llm

    loaded = []
    monkeypatch.setattr(models_llm, "load_llm", lambda spec, device: loaded.append((spec, device)) or _LM())
    v = LLMVerbalizer(llm="hf:some/folder", device="cpu")
    first = v.llm
    assert v.llm is first and loaded == [("hf:some/folder", "cpu")]
    lm = _LM()
    assert LLMVerbalizer(llm=lm).llm is lm


# --- the chat sent to the LM --------------------------------------------------------------------

def test_messages_carry_the_facts():
    s = _sheet()
    short = LLMVerbalizer().messages(s)
    assert [m["role"] for m in short] == ["system", "user"]
    assert short[0]["content"].startswith("You explain an image classifier's decision")
    user = short[1]["content"]
    assert ("- Model: Net\n- Prediction explained: Egyptian cat, confidence 79%\n- Explanation method: Grad-CAM\n"
            "- Region 1: at the centre, 20% of the image, holds 50% of the Grad-CAM attribution; when it is blurred "
            "out the confidence becomes 12%.\n- Region 2: at the top-left, 19% of the image, holds 40% of the "
            "Grad-CAM attribution; on its own the model sees tabby there.\n\nWrite one or two sentences") in user
    assert "Region 3" not in user and "top class" not in user and "Contrast" not in user
    detailed = LLMVerbalizer("detailed").messages(s)[1]["content"]
    assert "- Region 3: at the bottom-right, 18% of the image, holds 30% of the Grad-CAM attribution; when it " \
           "is blurred out the confidence becomes 50%." in detailed and "Write three or four sentences" in detailed
    six = _sheet(regions=tuple(_r(i, "centre") for i in range(6)))
    assert "Region 5:" in LLMVerbalizer("detailed").messages(six)[1]["content"]
    assert "Region 6:" not in LLMVerbalizer("detailed").messages(six)[1]["content"]
    other = _sheet(target_index=4, target_label="tabby", target_score=0.05, other_label="tiger cat", group="feline")
    u = LLMVerbalizer().messages(other)[1]["content"]
    assert "- Prediction explained: tabby (a kind of feline), confidence 5%\n" in u
    assert "- The model's top class is Egyptian cat (79%)\n" in u
    assert "- Contrast: why tabby and not tiger cat\n" in u
    # no prediction at all: the explained class counts as the top one, and no top class is stated
    empty = LLMVerbalizer().messages(_sheet(prediction=Prediction((), (), ())))[1]["content"]
    assert "- Prediction explained: Egyptian cat, confidence 79%\n- Explanation method: Grad-CAM\n" in empty


# --- an unfinished reply -------------------------------------------------------------------------

@pytest.mark.parametrize("text, want", [
    ("", ""), ("   ", ""), ("Done.", "Done."), ("  Done!  ", "Done!"), ("Done?", "Done?"),
    ("One. Two is cut", "One."), ("One! Two", "One!"), ("One? Two", "One?"), ("A. B? C! D", "A. B? C!"),
    ("A! B. C", "A! B."), ("No stop", "No stop"), (". Two", ". Two"), ("x. Two", "x."), ("A.B", "A.B"),
    ("One. Two.", "One. Two."), ("One. Region X", "One."),     # complete: judged on the last character only
    ("A. B. C", "A. B."), ("A! B! C", "A! B!"), ("A? B? C", "A? B?"),   # cut at the last full stop of each kind
])
def test_complete_sentences(text, want):
    assert complete_sentences(text) == want
