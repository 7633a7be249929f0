"""Template verbalization, search-based and faithful by construction: every number and name in
the text is taken from the measured facts, and each one is recorded as a ``Fact``."""

from __future__ import annotations

from typing import Sequence

from vlx.registry import METHODS, VERBALIZERS
from vlx.types import Fact, Prediction, Region, Verbalization
from vlx.verbalize.format import pct

ORDINALS = ("", "A second", "A third", "A fourth", "A fifth")


def method_display_name(method: str) -> str:
    """"gradcam" → "Grad-CAM" (the part of the method's summary before the colon)."""
    if method in METHODS:
        summary = METHODS.get(method).summary
        if ":" in summary:
            return summary.split(":", 1)[0].strip()
    return method


@VERBALIZERS.register("template")
class TemplateVerbalizer:
    """Sentences from facts. ``short`` names the prediction and up to two regions; ``detailed``
    names up to five, with what the model sees in each and its colours."""

    name = "template"

    def __init__(self, style: str = "short") -> None:
        if style not in ("short", "detailed"):
            raise ValueError("style must be 'short' or 'detailed'")
        self.style = style

    def verbalize(self, model_name: str, prediction: Prediction, target_index: int, target_label: str,
                  target_score: float, method: str, regions: Sequence[Region]) -> Verbalization:
        facts: list[Fact] = []

        def say(key: str, value, text: str) -> str:
            facts.append(Fact(key, value))
            return text

        mname = method_display_name(method)
        s = [say("model", model_name, model_name)]
        if prediction.indices and prediction.indices[0] != target_index:
            s.append(f" gives {say('class', target_label, target_label)} "
                     f"{say('confidence', target_score, pct(target_score))}; its top class is "
                     f"{say('top_class', prediction.labels[0], prediction.labels[0])} "
                     f"({say('top_confidence', prediction.scores[0], pct(prediction.scores[0]))}).")
        else:
            s.append(f" predicts {say('class', target_label, target_label)} "
                     f"({say('confidence', target_score, pct(target_score))}).")
        say("method", mname, mname)
        if not regions:
            s.append(f" No region holds positive {mname} attribution.")
        limit = 2 if self.style == "short" else 5
        for n, r in enumerate(regions[:limit]):
            k = f"region{n + 1}"
            pos = say(f"{k}.position", r.position, r.position)
            area = say(f"{k}.area_fraction", r.area_fraction, pct(r.area_fraction))
            mass = say(f"{k}.attribution_mass", r.attribution_mass, pct(r.attribution_mass))
            if n == 0:
                s.append(f" The region at the {pos}, {area} of the image, holds {mass} of the {mname} attribution")
            else:
                s.append(f" {ORDINALS[n]} region, at the {pos} ({area} of the image), holds {mass}")
            if r.score_after_removal is not None:
                after = say(f"{k}.score_after_removal", r.score_after_removal, pct(r.score_after_removal))
                before, now = pct(target_score), pct(r.score_after_removal)
                verb = "lowers the confidence to" if now != before and r.score_after_removal < target_score else \
                    "raises the confidence to" if now != before else "leaves the confidence at"
                s.append(f"; blurring it {verb} {after}")
            s.append(".")
            d = r.description
            if self.style == "detailed" and d is not None and d.labels:
                seen = say(f"{k}.seen_as", d.labels[0], d.labels[0])
                seen_p = say(f"{k}.seen_as_score", d.label_scores[0], pct(d.label_scores[0]))
                s.append(f" On its own, the model reads it as {seen} ({seen_p})")
                if d.colors:
                    cols = say(f"{k}.colors", ", ".join(d.colors), " and ".join(d.colors))
                    s.append(f"; it is mostly {cols}")
                s.append(".")
        return Verbalization(text="".join(s), style=self.style, verbalizer=self.name, facts=tuple(facts),
                             verified=True)
