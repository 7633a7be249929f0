"""What a verified text may say besides its numbers: a closed vocabulary of the claims vlx measures.

The verifier (``verify.py``) checks numbers, their kinds and region references. This module checks
everything else: after the measured names are taken out (the explained and predicted classes, the
contrast class, the model, the method, region positions, what a describer saw, a VLM's quoted
caption, colours), every remaining word must belong to ``VOCABULARY`` — function words and the words
of the facts vlx measures (a model's prediction and its probability, a region's place, size and
share of the attribution, the confidence when the region is blurred out, what the model or a
describer reads in it). A word outside it is a claim vlx did not measure ("accuracy", "performed
well", "was trained", "confirmed by an experiment", "because") and rejects the text: such a claim
cannot be corrected by swapping a number.
"""

from __future__ import annotations

import re

from vlx.verbalize.facts import FactSheet

FUNCTION_WORDS = frozenset("""
a an the of in at on to from by for with into onto and or but nor so as than then that this these those
it its it's itself they them their there here which who whom whose what when where while whereas if
is are was were be been being has have had does do did will would can could may might shall should
not no only also just both each every either neither all any some most more less least much many
one two three four five first second third fourth fifth other another same such very about around over
under up down out off s whole own alone together too still yet
""".split())

MEASURED_WORDS = frozenset("""
model classifier network predicts predict predicted prediction predictions predicting gives give gave giving
assigns assigned says say said thinks class classes category label top
image images picture photo photograph view scene
region regions area areas patch patches part parts section sections spot spots zone place places
position located lies lying sits found
centre center middle left right upper lower side sides corner corners edge
cover covers covered covering occupies occupy occupying spans span spanning takes take taking size sized
share shares portion proportion fraction percent per cent
confidence confident probability probabilities likelihood chance chances score scores
attribution attributions attributed attributes evidence importance important relevance relevant weight
holds hold holding held carries carry carrying carried contains contain containing accounts account
concentrated concentrates focus focuses focused highlights highlighted map maps saliency heat heatmap
blurring blurred blur blurs removing removed remove removes hiding hidden hide hides masking masked
without when once after before
drops drop dropped dropping falls fall fell falling lowers lower lowered lowering reduces reduce reduced
reducing decreases decrease decreased decreasing cuts cut raises raise raised raising increases increase
increased increasing rises rise rose stays stay stayed remains remain remained leaves leave leaving left
unchanged changes change changed becomes become became goes go went
reads read sees see seen saw matches match matched best describes describe described description
looks look looking like mostly colour colours color colors coloured colored kind kinds type sort
rather instead why contrast compared versus positive negative clip ranks ranked highest random randomly
""".split())

VOCABULARY = FUNCTION_WORDS | MEASURED_WORDS

_WORD = re.compile(r"[A-Za-z]+")


def measured_names(sheet: FactSheet, method_name: str) -> list[str]:
    """Every name the facts contain, longest first: classes (each synonym), the model, the method
    (its registry name and display name), positions, description labels, colours and captions."""
    names: list[str] = [sheet.model, method_name, sheet.method, sheet.target_label, *sheet.prediction.labels]
    for extra in (sheet.other_label, sheet.group):
        if extra:
            names.append(extra)
    for r in sheet.regions:
        names.append(r.position)
        d = r.description
        if d is not None:
            names += [*d.labels, *d.colors]
            if d.text:
                names.append(d.text.strip())
            if d.source:
                names.append(d.source.split(":", 2)[-1])
    out: set[str] = set()
    for n in names:
        out.add(n.strip())
        out.update(s.strip() for s in n.split(","))
    return sorted((n for n in out if n), key=len, reverse=True)


def unsupported_words(text: str, sheet: FactSheet, method_name: str) -> list[str]:
    """Words of ``text`` that are neither a measured name nor in ``VOCABULARY``, in text order,
    each once (lower case). An empty list means the text makes no claim outside the facts."""
    t = text
    for name in measured_names(sheet, method_name):
        t = re.sub(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", " ", t, flags=re.IGNORECASE)
    found: list[str] = []
    for w in _WORD.findall(t):
        lw = w.lower()
        if lw not in VOCABULARY and lw not in found:
            found.append(lw)
    return found


def named_scores(sheet: FactSheet) -> list[tuple[str, float]]:
    """``(name, probability)`` for every name whose score the facts hold: the explained class, the
    predicted classes, the contrast class and each region's description labels (longest first)."""
    pairs: list[tuple[str, float]] = [(sheet.target_label, sheet.target_score)]
    pairs += list(zip(sheet.prediction.labels, sheet.prediction.scores))
    if sheet.other_label is not None and sheet.other_score is not None:
        pairs.append((sheet.other_label, sheet.other_score))
    for r in sheet.regions:
        if r.description is not None:
            pairs += list(zip(r.description.labels, r.description.label_scores))
    out = []
    for name, score in pairs:
        for syn in {name.strip(), *(s.strip() for s in name.split(","))}:
            if syn:
                out.append((syn, float(score)))
    return sorted(out, key=lambda p: len(p[0]), reverse=True)


def score_of_name_before(text: str, start: int, sheet: FactSheet) -> list[float]:
    """The probabilities of the name written right before a number at ``start`` ("Egyptian cat
    (79%)", "gives tabby 45%"), or ``[]`` when no measured name stands there."""
    left = text[:start].rstrip()
    left = left[:-1].rstrip() if left.endswith("(") else left
    values = [score for name, score in named_scores(sheet)
              if re.search(rf"(?<![A-Za-z]){re.escape(name)}$", left, re.IGNORECASE)]
    return values
