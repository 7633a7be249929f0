"""Template verbalization, search-based and faithful by construction: every number and name in
the text is taken from the fact sheet, and each one is recorded as a ``Fact``.

Templates: pointwise ("why A"), contrastive ("why A and not B"), causal ("blurring it lowers the
confidence to ..."), group level ("Egyptian cat, a kind of cat"); styles ``short`` (the
prediction and up to two regions) and ``detailed`` (up to five, with what the model sees in
each and its colours)."""

from __future__ import annotations

import re

from vlx.config import STYLES
from vlx.registry import METHODS, VERBALIZERS
from vlx.types import Fact, Verbalization
from vlx.verbalize.facts import FactSheet
from vlx.verbalize.format import pct

ORDINALS = ("", "A second", "A third", "A fourth", "A fifth")


def method_display_name(method: str) -> str:
    """"gradcam" → "Grad-CAM" (the part of the method's summary before the colon)."""
    if method in METHODS:
        summary = METHODS.get(method).summary
        if ":" in summary:
            return summary.partition(":")[0].strip()
    return method


def short_name(label: str) -> str:
    """The first synonym of a class name ("tabby, tabby cat" → "tabby")."""
    return label.split(",")[0].strip()


@VERBALIZERS.register
class TemplateVerbalizer:
    """Sentences from a ``FactSheet``; see the module docstring."""

    name = "template"

    def __init__(self, style: str = "short") -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}")
        self.style = style

    def verbalize(self, sheet: FactSheet) -> Verbalization:
        text, facts, _ = self._build(sheet)
        return Verbalization(text=text, style=self.style, verbalizer=self.name, facts=tuple(facts),
                             verified=True, check={"status": "verified", "issues": []})

    def slotted(self, sheet: FactSheet) -> tuple[str, dict[str, str]]:
        """The same text with every measured name and number replaced by a slot such as ``[CLASS]``
        or ``[R1_SHARE]``, and the slot → text table that fills it back (``fill_slots``)."""
        text, _, slots = self._build(sheet, slotted=True)
        return text, slots

    def _build(self, sheet: FactSheet, slotted: bool = False) -> tuple[str, list[Fact], dict[str, str]]:
        facts: list[Fact] = []
        slots: dict[str, str] = {}

        def say(key: str, value, text: str) -> str:
            facts.append(Fact(key, value))
            if not slotted:
                return text
            slot = slot_name(key)
            slots[slot] = text
            return f"[{slot}]"

        detailed = self.style == "detailed"
        mname = method_display_name(sheet.method)
        label = say("class", sheet.target_label, sheet.target_label)
        model = say("model", sheet.model, sheet.model)
        conf = say("confidence", sheet.target_score, pct(sheet.target_score))
        if sheet.other_label is not None and sheet.other_score is not None:
            other = say("other_class", sheet.other_label, sheet.other_label)
            oconf = say("other_confidence", sheet.other_score, pct(sheet.other_score))
            head = f" gives {label} {conf} and {other} {oconf}."
        elif sheet.is_top:
            head = f" predicts {label} ({conf})."
        else:
            top, tconf = sheet.prediction.labels[0], sheet.prediction.scores[0]
            head = (f" gives {label} {conf}; its top class is {say('top_class', short_name(top), short_name(top))} "
                    f"({say('top_confidence', tconf, pct(tconf))}).")
        if detailed and sheet.group and sheet.group.lower() not in sheet.target_label.lower():
            head = head.removesuffix(".") + f"; {label} is a kind of {say('group', sheet.group, sheet.group)}."
        s = [model, head]
        say("method", mname, mname)
        what = f"the {mname} attribution" if sheet.other_label is None else \
            f"the {mname} attribution for {label} rather than {sheet.other_label}"
        if not sheet.regions:
            s.append(f" No region holds positive {mname} attribution.")
        for n, r in enumerate(sheet.regions[: 5 if detailed else 2]):
            k = f"region{n + 1}"
            pos = say(f"{k}.position", r.position, r.position)
            area = say(f"{k}.area_fraction", r.area_fraction, pct(r.area_fraction))
            mass = say(f"{k}.attribution_mass", r.attribution_mass, pct(r.attribution_mass))
            if n == 0:
                s.append(f" The region at the {pos}, {area} of the image, holds {mass} of {what}")
            else:
                s.append(f" {ORDINALS[n]} region, at the {pos} ({area} of the image), holds {mass}")
            if r.score_after_removal is not None:
                after = say(f"{k}.score_after_removal", r.score_after_removal, pct(r.score_after_removal))
                s.append(f"; blurring it {_change(sheet.target_score, r.score_after_removal)} {after}")
            s.append(".")
            d = r.description
            if detailed and d is not None:
                s.append(_describe(d, k, say))
        if sheet.map_check is not None:
            s.append(_map_sentence(sheet, conf, say))
        return "".join(s), facts, slots


_SLOT_PARTS = {"model": "MODEL", "class": "CLASS", "confidence": "CONF", "other_class": "OTHER",
               "other_confidence": "OTHER_CONF", "top_class": "TOP", "top_confidence": "TOP_CONF",
               "group": "GROUP", "method": "METHOD", "position": "POS", "area_fraction": "AREA",
               "attribution_mass": "SHARE", "score_after_removal": "AFTER", "seen_as": "SEEN",
               "seen_as_score": "SEEN_CONF", "caption": "CAPTION", "colors": "COLOURS",
               "map.fraction": "MAP_FRAC", "map.after": "MAP_AFTER", "map.random_after": "RANDOM_AFTER"}
SLOT_RE = re.compile(r"\[([A-Z0-9_]+)\]")


def slot_name(key: str) -> str:
    """A fact key as a slot name: ``class`` → ``CLASS``, ``region2.attribution_mass`` → ``R2_SHARE``."""
    if key in _SLOT_PARTS:
        return _SLOT_PARTS[key]
    if "." in key:
        region, part = key.split(".", 1)
        return f"R{region.removeprefix('region')}_{_SLOT_PARTS[part]}"
    return _SLOT_PARTS[key]


def fill_slots(text: str, slots: dict[str, str]) -> str | None:
    """``text`` with every ``[SLOT]`` replaced by its measured text; ``None`` if it names a slot
    that ``slots`` does not hold."""
    unknown = [m.group(1) for m in SLOT_RE.finditer(text) if m.group(1) not in slots]
    if unknown:
        return None
    return SLOT_RE.sub(lambda m: slots[m.group(1)], text)


def _describe(d, k: str, say) -> str:
    """One sentence for a region's description, by describer: the classifier's own reading of the
    crop (offline), the best CLIP concept, or a VLM's words quoted as such."""
    parts = []
    if d.labels and d.source.startswith("clip"):
        c = say(f"{k}.seen_as", d.labels[0], d.labels[0])
        parts.append(f" CLIP matches it best to {c} ({say(f'{k}.seen_as_score', d.label_scores[0], pct(d.label_scores[0]))})")
    elif d.labels:
        seen = say(f"{k}.seen_as", d.labels[0], d.labels[0])
        parts.append(f" On its own, the model reads it as {seen} "
                     f"({say(f'{k}.seen_as_score', d.label_scores[0], pct(d.label_scores[0]))})")
    elif d.text:
        parts.append(f' {d.source.split(":", 2)[-1]} describes it as "{say(f"{k}.caption", d.text, d.text.strip())}"')
    if d.colors:
        cols = say(f"{k}.colors", ", ".join(d.colors), " and ".join(d.colors))
        parts.append(f"; it is mostly {cols}" if parts else f" It is mostly {cols}")
    return "".join(parts) + "." if parts else ""


def _map_sentence(sheet: FactSheet, conf: str, say) -> str:
    """The map's own deletion check in one sentence: the confidence after blurring the share of
    the image the map ranks highest, and after blurring a random share of the same size."""
    m = sheet.map_check
    frac = say("map.fraction", m.fraction, pct(m.fraction))
    top = _change(sheet.target_score, m.after)
    if top.startswith("leaves"):
        top = f"leaves the confidence at {conf}"
    else:
        top = f"{top.removesuffix(' to')} from {conf} to {say('map.after', m.after, pct(m.after))}"
    if pct(m.random_after) == pct(sheet.target_score):
        random = "leaves it unchanged"
    else:
        rnd = say("map.random_after", m.random_after, pct(m.random_after))
        random = f"{'lowers' if m.random_after < sheet.target_score else 'raises'} it to {rnd}"
    return f" Blurring the {frac} of the image the map ranks highest {top}; blurring a random {frac} {random}."


def _change(before: float, after: float) -> str:
    """The verb for a confidence change, judged on the rounded numbers the reader sees."""
    if pct(after) == pct(before):
        return "leaves the confidence at"
    return "lowers the confidence to" if after < before else "raises the confidence to"
