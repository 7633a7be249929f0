"""Text metrics for verbalizations: fact fidelity, coverage of the top facts, and a
simulatability proxy (recover the class and the top region's position from the text alone)."""

from __future__ import annotations

import re

from vlx.types import MetricResult
from vlx.verbalize.facts import FactSheet
from vlx.verbalize.format import pct
from vlx.verbalize.verify import POSITIONS, candidate_synonyms, normalize, verify


def fact_fidelity(text: str, sheet: FactSheet) -> MetricResult:
    """Share of the text's checkable claims (numbers, regions, classes) that match the facts, in
    ``[0, 1]``; template text scores 1.0."""
    r = verify(text, sheet)
    return MetricResult("fact-fidelity", r.fidelity, True, "text",
                        {"claims": r.claims, "correct": r.correct, "issues": r.issues})


def top_facts(sheet: FactSheet) -> dict[str, str]:
    """The facts a reader most needs, as the strings a text would contain."""
    facts = {"class": sheet.target_label, "confidence": pct(sheet.target_score)}
    if sheet.regions:
        r = sheet.regions[0]
        facts.update({"region1.position": r.position, "region1.attribution_mass": pct(r.attribution_mass)})
        if r.score_after_removal is not None:
            facts["region1.score_after_removal"] = pct(r.score_after_removal)
    return facts


def coverage(text: str, sheet: FactSheet) -> MetricResult:
    """Share of ``top_facts`` the text mentions, in ``[0, 1]``."""
    t = normalize(text).lower()
    facts = top_facts(sheet)
    hit = {k: bool(re.search(rf"(?<![\w<]){re.escape(v.lower())}(?!\w)", t)) for k, v in facts.items()}
    return MetricResult("coverage", sum(hit.values()) / len(hit), True, "text", {"mentioned": hit})


def simulatability(text: str, sheet: FactSheet) -> MetricResult:
    """From the text alone, recover the class (the first class name it mentions, among all of the
    model's labels) and the top region (the first position it names); the value is the share of
    the two recovered correctly, in ``[0, 1]``."""
    t = normalize(text).lower()
    first_class, at = None, len(t) + 1
    for syn in candidate_synonyms(t, tuple(sheet.labels or (sheet.target_label,))):
        m = re.search(rf"\b{re.escape(syn)}\b", t) if syn else None
        if m and (m.start() < at or (m.start() == at and len(syn) > len(first_class or ""))):
            first_class, at = syn, m.start()
    target_names = {s.strip().lower() for s in sheet.target_label.split(",")}
    if sheet.labels:
        target_names |= {s.strip().lower() for s in sheet.labels[sheet.target_index].split(",")}
    class_ok = first_class in target_names
    pos = re.search(r"\b(" + "|".join(re.escape(p) for p in POSITIONS) + r")\b", t)
    pos_ok = bool(sheet.regions) and pos is not None and pos.group(1) == sheet.regions[0].position
    return MetricResult("simulatability", (class_ok + pos_ok) / 2, True, "text",
                        {"class": first_class, "position": pos.group(1) if pos else None,
                         "class_correct": class_ok, "position_correct": pos_ok})


def text_metrics(text: str, sheet: FactSheet) -> list[MetricResult]:
    """All three text metrics for one text."""
    return [fact_fidelity(text, sheet), coverage(text, sheet), simulatability(text, sheet)]
