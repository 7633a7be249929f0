"""The verifier checks claims, not only numbers; constrained LLM decoding says only what was measured.

The rejected sentences are the ones a user saw marked "verified" before the claims check (issue 16).
"""

from __future__ import annotations

import dataclasses
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vlx.types import Prediction, Region, RegionDescription
from vlx.verbalize import FactSheet, verify
from vlx.verbalize.claims import VOCABULARY, unsupported_words
from vlx.verbalize.llm import LLMVerbalizer
from vlx.verbalize.phrasings import alternatives, sentences
from vlx.verbalize.template import TemplateVerbalizer, fill_slots, slot_name

LABELS = ("tench, Tinca tinca", "goldfish", "Egyptian cat", "tiger cat", "tabby, tabby cat", "espresso",
          "nematode, nematode worm, roundworm", "drilling platform, offshore rig", "analog clock", "banana")
POSITIONS = ("centre", "top-left", "bottom-right", "centre-left", "top-centre")


def _region(i: int, pos: str, area: float, mass: float, after: float | None, seen: str | None = None) -> Region:
    desc = RegionDescription((seen,), (0.4,), ("brown",), "") if seen else None
    return Region(id=i, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=area,
                  attribution_mass=mass, mean_attribution=0.1, position=pos, score_after_removal=after,
                  description=desc)


def _sheet(regions=None) -> FactSheet:
    regions = regions if regions is not None else (_region(0, "centre", 0.22, 0.52, 0.71),
                                                    _region(1, "top-left", 0.10, 0.24, 0.78))
    return FactSheet(model="EfficientNet-Lite0", prediction=Prediction((2, 3, 4), LABELS[2:5], (0.79, 0.09, 0.05)),
                     target_index=2, target_label="Egyptian cat", target_score=0.79, method="gradcam",
                     regions=tuple(regions), labels=LABELS)


@pytest.mark.parametrize("text, word", [
    ("EfficientNet-Lite0 predicts Egyptian cat. The accuracy was 79%, indicating that the model performed "
     "exceptionally well in this particular task.", "accuracy"),
    ("The model predicts Egyptian cat (79%) based on its prediction of nematode larvae.", "based"),
    ("EfficientNet-Lite0 predicts Egyptian cat (79%). This was achieved using the Grad-CAM feature that allows "
     "for multiple layers of classification.", "achieved"),
    ("Egyptian cat (79%). The accuracy rate for this feature was 17%, indicating that the model performed "
     "exceptionally well.", "accuracy"),
    ("EfficientNet-Lite0 predicts Egyptian cat (79%) because it was trained on many cats.", "because"),
    ("EfficientNet-Lite0 predicts Egyptian cat (79%), as confirmed by an experiment.", "confirmed"),
])
def test_unmeasured_claims_are_rejected_not_corrected(text, word):
    r = verify(text, _sheet())
    assert r.status == "rejected", r
    assert any(repr(word) in i for i in r.issues), r.issues


def test_a_probability_is_never_an_accuracy():
    r = verify("EfficientNet-Lite0 predicts Egyptian cat with an accuracy of 79%.", _sheet())
    assert r.status == "rejected" and any("'accuracy'" in i for i in r.issues)
    assert verify("EfficientNet-Lite0 predicts Egyptian cat with a probability of 79%.", _sheet()).status == "verified"


def test_a_number_without_a_meaning_is_rejected():
    r = verify("EfficientNet-Lite0 predicts Egyptian cat (79%). Then 52%.", _sheet())
    assert r.status == "rejected" and any("without saying what it measures" in i for i in r.issues)


def test_a_number_after_a_name_is_that_names_probability():
    s = _sheet()
    assert verify("EfficientNet-Lite0 gives Egyptian cat 79% and tiger cat 9%.", s).status == "verified"
    r = verify("EfficientNet-Lite0 gives Egyptian cat 79% and tiger cat 52%.", s)   # 52% is the centre's share
    assert r.status != "verified"


def test_the_vocabulary_excludes_evaluative_and_training_words():
    for w in ("accuracy", "accurate", "performed", "performance", "well", "trained", "training", "experiment",
              "because", "proves", "confirms", "exceptionally", "feature", "layers", "correct", "reliable"):
        assert w not in VOCABULARY, w
    assert unsupported_words("The region at the centre holds 52% of the Grad-CAM attribution.", _sheet(),
                             "Grad-CAM") == []


def test_measured_names_are_not_unsupported_words():
    s = _sheet((_region(0, "centre", 0.2, 0.5, 0.3, seen="tabby"),))
    assert unsupported_words("On its own, the model reads it as tabby; it is mostly brown.", s, "Grad-CAM") == []
    assert unsupported_words("the model reads it as a nematode", s, "Grad-CAM") == ["nematode"]


share = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@st.composite
def sheets(draw) -> FactSheet:
    n = draw(st.integers(0, 5))
    regions = tuple(_region(i, draw(st.sampled_from(POSITIONS)), draw(share), draw(share), draw(st.none() | share),
                            draw(st.none() | st.sampled_from(["tabby", "crane"]))) for i in range(n))
    top = draw(st.sampled_from([2, 3]))
    scores = sorted(draw(st.lists(share, min_size=3, max_size=3)), reverse=True)
    pred = Prediction((top, 5, 6), (LABELS[top], LABELS[5], LABELS[6]), tuple(scores))
    return FactSheet(model="EfficientNet-Lite0", prediction=pred, target_index=2, target_label="Egyptian cat",
                     target_score=scores[0] if top == 2 else draw(share), method="gradcam", regions=regions,
                     labels=LABELS)


@settings(max_examples=120, deadline=None)
@given(sheet=sheets(), style=st.sampled_from(["short", "detailed"]), seed=st.integers(0, 10**6))
def test_every_phrasing_of_every_fact_set_verifies(sheet, style, seed):
    """Whatever phrasing the LM picks, the filled-in text verifies with fidelity 1 and no issue."""
    slotted, slots = TemplateVerbalizer(style).slotted(sheet)
    assert fill_slots(slotted, slots) == TemplateVerbalizer(style).verbalize(sheet).text
    rng = random.Random(seed)
    text = " ".join(fill_slots(rng.choice(alternatives(s)), slots) for s in sentences(slotted))
    r = verify(text, sheet)
    assert r.status == "verified" and r.fidelity == 1.0, (text, r.issues)


def test_each_alternative_keeps_the_template_sentences_slots():
    slotted, _ = TemplateVerbalizer("detailed").slotted(_sheet())
    for s in sentences(slotted):
        want = sorted(set(__import__("re").findall(r"\[[A-Z0-9_]+\]", s)))
        for a in alternatives(s):
            assert sorted(set(__import__("re").findall(r"\[[A-Z0-9_]+\]", a))) == want, (s, a)
    assert slot_name("region2.attribution_mass") == "R2_SHARE" and slot_name("class") == "CLASS"
    assert fill_slots("[CLASS] and [NOPE]", {"CLASS": "x"}) is None


class _ScoringLM:
    """A stand-in LM that prefers the phrasing at index ``want`` of each sentence (and records calls)."""

    name = "scripted"

    def __init__(self, want: int) -> None:
        self.want, self.calls = want, []

    def score(self, messages, prefix, candidates):
        self.calls.append((prefix, list(candidates)))
        return [1.0 if i == min(self.want, len(candidates) - 1) else 0.0 for i in range(len(candidates))]


@pytest.mark.parametrize("want", [0, 1, 2])
def test_constrained_mode_takes_the_lms_choice_and_verifies(want):
    lm = _ScoringLM(want)
    v = LLMVerbalizer("short", llm=lm).verbalize(_sheet())
    assert v.check["mode"] == "constrained" and v.check["status"] == "verified"
    assert v.check["choices"] == [min(want, len(c) - 1) for _, c in lm.calls]
    chosen = [c[min(want, len(c) - 1)] for _, c in lm.calls]
    assert v.text == " ".join(chosen)
    assert lm.calls[1][0] == chosen[0]                 # each sentence is scored after the ones chosen before it
    if want == 0:
        assert v.text == TemplateVerbalizer("short").verbalize(_sheet()).text


def test_unknown_mode_is_an_error():
    from vlx.errors import UsageError

    with pytest.raises(UsageError, match="constrained"):
        LLMVerbalizer(mode="creative")


def test_cached_scoring_equals_a_full_forward_per_candidate(tmp_path):
    """``TextGenerator.score`` shares the chat's key/value cache across candidates; each score must
    equal the mean log-probability from a separate full forward pass (an independent computation)."""
    import torch

    from vlx.models.llm import load_llm
    from vlx.testing.tiny_lm import tiny_causal_lm_folder

    lm = load_llm(f"hf:{tiny_causal_lm_folder(tmp_path / 'lm')}", "cpu")
    msgs = [{"role": "user", "content": "Say something about the cat."}]
    cands = ["The cat sits.", "A region at the centre holds most of it.", "x"]
    got = lm.score(msgs, "It predicts a cat.", cands)
    tok, base = lm.tokenizer, lm.prompt_ids(msgs)[0].tolist()
    head = tok("It predicts a cat.", add_special_tokens=False)["input_ids"]
    for c, g in zip(cands, got):
        ids = tok("It predicts a cat. " + c, add_special_tokens=False)["input_ids"]
        k = next((i for i, (a, b) in enumerate(zip(head, ids)) if a != b), min(len(head), len(ids)))
        full = torch.tensor([base + ids])
        with torch.no_grad():
            lp = lm.model(input_ids=full).logits.float().log_softmax(-1)[0]
        want = lp[len(base) + k - 1:len(base) + len(ids) - 1].gather(1, full[0, len(base) + k:, None]).mean()
        assert abs(g - float(want)) < 1e-4, (c, g, float(want))
    assert len(set(round(g, 6) for g in got)) == 3            # the candidates are told apart


# --- the names a text may use and their scores (claims.py, rule by rule) ------------------------

def _described(labels=("tabby, tabby cat",), scores=(0.4,), colors=("brown",), text="", source="offline"):
    return Region(
        id=0, mask=np.zeros((2, 2), bool), bbox_xyxy=(0, 0, 1, 1), area_fraction=0.2, attribution_mass=0.5,
        mean_attribution=0.1, position="centre", score_after_removal=0.3,
        description=RegionDescription(labels, scores, colors, text, source))


def test_measured_names_every_source_longest_first():
    from vlx.verbalize.claims import measured_names

    d = _described(labels=("tabby, tabby cat",), colors=("dark brown",), text="  a furry animal  ",
                   source="vlm:SmolVLM")
    s = dataclasses.replace(_sheet((d,)), other_label="tiger cat", group="feline")
    names = measured_names(s, "Grad-CAM")
    assert set(names) == {"EfficientNet-Lite0", "Grad-CAM", "gradcam", "Egyptian cat", "tiger cat",
                          "tabby, tabby cat", "tabby cat", "tabby", "feline", "centre", "dark brown",
                          "a furry animal", "SmolVLM"}
    assert [len(n) for n in names] == sorted((len(n) for n in names), reverse=True)
    assert len(names) == len(set(names))
    # a sheet without the optional names
    assert "feline" not in measured_names(_sheet(), "Grad-CAM")


def test_a_longer_name_is_taken_out_before_a_shorter_one_inside_it():
    s = _sheet((_described(labels=("tabby, tabby cat",)),))
    # "tabby" first would leave "cat", which is not in the vocabulary
    assert unsupported_words("The model reads it as tabby cat.", s, "Grad-CAM") == []
    assert unsupported_words("The model reads it as TABBY Cat.", s, "Grad-CAM") == []


def test_unsupported_words_in_text_order_once_lower_case_whole_names_only():
    s = _sheet()
    assert unsupported_words("Zebra and Wolf, zebra, WOLF, yak.", s, "Grad-CAM") == ["zebra", "wolf", "yak"]
    # a name inside a longer word is not that name
    assert unsupported_words("EfficientNet-Lite0s Grad-CAMx", s, "Grad-CAM") == ["efficientnet", "lite", "grad",
                                                                                "camx"]
    assert unsupported_words("Grad-CAM and Grad-CAM.", s, "Grad-CAM") == []
    assert unsupported_words("", s, "Grad-CAM") == []


def test_optional_names_are_measured_names():
    d = _described(labels=("crane",), colors=("grey",), text="A bird on one leg.", source="vlm:SmolVLM")
    s = dataclasses.replace(_sheet((d,)), other_label="espresso", group="feline")
    text = ("Egyptian cat and not espresso; a feline. The model reads the centre as crane, mostly grey; "
            "SmolVLM says A bird on one leg.")
    assert unsupported_words(text, s, "Grad-CAM") == []
    bare = _sheet((_described(labels=(), colors=(), text="", source="offline"),))
    assert unsupported_words(text, bare, "Grad-CAM") == ["espresso", "feline", "crane", "grey", "smolvlm",
                                                        "bird", "leg"]


def test_named_scores_every_name_with_its_score():
    from vlx.verbalize.claims import named_scores

    d = _described(labels=("crane", "tabby, tabby cat"), scores=(0.31, 0.12))
    s = dataclasses.replace(_sheet((d,)), other_label="tiger cat", other_score=0.09)
    got = named_scores(s)
    assert sorted(got) == sorted([("Egyptian cat", 0.79), ("Egyptian cat", 0.79), ("tiger cat", 0.09),
                                  ("tiger cat", 0.09), ("tabby, tabby cat", 0.05), ("tabby cat", 0.05),
                                  ("tabby", 0.05), ("crane", 0.31), ("tabby, tabby cat", 0.12),
                                  ("tabby cat", 0.12), ("tabby", 0.12)])
    assert [len(n) for n, _ in got] == sorted((len(n) for n, _ in got), reverse=True)
    assert all(type(v) is float for _, v in got)
    # a contrast class without its score gives no pair
    s2 = dataclasses.replace(_sheet(()), other_label="espresso", other_score=None)
    assert all(n != "espresso" for n, _ in named_scores(s2))
    s3 = dataclasses.replace(_sheet(()), other_label=None, other_score=0.5)
    assert sorted(named_scores(s3)) == sorted([("Egyptian cat", 0.79), ("Egyptian cat", 0.79),
                                               ("tiger cat", 0.09), ("tabby, tabby cat", 0.05),
                                               ("tabby cat", 0.05), ("tabby", 0.05)])


@pytest.mark.parametrize("text, want", [
    ("gives Egyptian cat 79%", [0.79, 0.79]),
    ("gives Egyptian cat (79%", [0.79, 0.79]),
    ("gives Egyptian cat ( 79%", [0.79, 0.79]),
    ("gives Egyptian cat(79%", [0.79, 0.79]),
    ("gives EGYPTIAN CAT  79%", [0.79, 0.79]),
    ("gives tabby cat 5%", [0.05]),
    ("gives tabby 5%", [0.05]),
    ("gives the tabby, 5%", []),                  # a comma after the name: not the name's number
    ("gives Egyptian cats 79%", []),
    ("gives xEgyptian cat 79%", []),
    ("gives Egyptian cat at 79%", []),
    ("79%", []),
])
def test_score_of_the_name_right_before_a_number(text, want):
    from vlx.verbalize.claims import score_of_name_before

    assert score_of_name_before(text, text.index("79%") if "79%" in text else text.index("5%"), _sheet()) == want
