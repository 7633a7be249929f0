"""LLM verbalization, checked. Two modes:

- ``constrained`` (the default): the LM chooses the wording, sentence by sentence, among phrasings
  that state exactly the template's facts with the numbers and names locked as slots
  (``phrasings.py``); it picks the phrasing it finds likeliest after the facts and the instruction
  from ``prompts/``. A small LM can do this well, and the text says only what was measured.
- ``free``: the LM writes its own reply to the facts and the instruction.

Either way the text is verified against the facts (``verify.py``: numbers and their kinds, regions,
names, and every other word against the vocabulary of measured claims) and kept when verified,
corrected when only numbers were wrong, or replaced by the template text when it cannot be trusted."""

from __future__ import annotations

import time

from vlx.prompts import render
from vlx.registry import VERBALIZERS
from vlx.types import Verbalization
from vlx.verbalize.facts import FactSheet
from vlx.errors import UsageError
from vlx.verbalize.format import pct
from vlx.verbalize.phrasings import alternatives, sentences
from vlx.verbalize.template import TemplateVerbalizer, fill_slots, method_display_name, short_name
from vlx.verbalize.verify import CHECKED, verify

MODES = ("constrained", "free")


@VERBALIZERS.register
class LLMVerbalizer:
    """Text from a causal LM, verified.

    Args:
        style: ``short`` or ``detailed`` (the instruction asks for 1–2 or 3–4 sentences).
        llm: ``smollm2`` (embedded) or ``hf:<hub id or folder>``; or a loaded ``TextGenerator``.
        device: where the LM runs.
        max_new_tokens: reply length limit (``free`` mode).
        mode: ``constrained`` (the LM chooses among phrasings of the measured facts) or ``free``
            (the LM writes its own text); see the module docstring.
    """

    name = "llm"

    def __init__(self, style: str = "short", llm="smollm2", device: str = "auto", max_new_tokens: int = 96,
                 mode: str = "constrained") -> None:
        if mode not in MODES:
            raise UsageError(f"unknown LLM mode {mode!r}; use one of {', '.join(MODES)}.")
        self.template = TemplateVerbalizer(style)
        self.style, self.mode = style, mode
        self._llm, self.device, self.max_new_tokens = llm, device, max_new_tokens

    @property
    def llm(self):
        if isinstance(self._llm, str):
            from vlx.models.llm import load_llm

            self._llm = load_llm(self._llm, self.device)
        return self._llm

    def messages(self, sheet: FactSheet) -> list[dict[str, str]]:
        """The chat sent to the LM: system and user prompts rendered from ``prompts/``."""
        regions = [{
            "position": r.position, "area": pct(r.area_fraction), "mass": pct(r.attribution_mass),
            "after": pct(r.score_after_removal) if r.score_after_removal is not None else None,
            "seen_as": r.description.labels[0] if r.description and r.description.labels else None,
        } for r in sheet.regions[: 2 if self.style == "short" else 5]]
        top = None if sheet.is_top else short_name(sheet.prediction.labels[0])
        user = render("verbalize_user.j2", model=sheet.model, label=sheet.target_label, confidence=pct(sheet.target_score),
                      method=method_display_name(sheet.method), regions=regions, style=self.style,
                      top_label=top, top_confidence=None if top is None else pct(sheet.prediction.scores[0]),
                      other_label=sheet.other_label, group=sheet.group)
        return [{"role": "system", "content": render("verbalize_system.j2")}, {"role": "user", "content": user}]

    def verbalize(self, sheet: FactSheet) -> Verbalization:
        fallback = self.template.verbalize(sheet)
        t0 = time.perf_counter()
        extra: dict = {}
        if self.mode == "constrained":
            raw, extra["choices"] = self.choose(sheet)
        else:
            raw = complete_sentences(self.llm.generate(self.messages(sheet), self.max_new_tokens))
        seconds = time.perf_counter() - t0
        result = verify(raw, sheet)
        check = {**result.to_json(), "original": raw, "llm": getattr(self.llm, "name", "llm"),
                 "seconds": seconds, "mode": self.mode, "checked": list(CHECKED), **extra}
        if result.status == "rejected":
            check["fallback"] = "template"      # the text shown is the template's, faithful by construction
            return Verbalization(fallback.text, self.style, self.name, fallback.facts, verified=True, check=check)
        return Verbalization(result.text, self.style, self.name, fallback.facts, verified=True, check=check)


    def choose(self, sheet: FactSheet) -> tuple[str, list[int]]:
        """Constrained decoding: for each template sentence, the phrasing the LM scores highest
        (mean token log-probability after the facts prompt and the sentences chosen so far).
        Returns the text and, per sentence, the index of the chosen phrasing (0 = the template's)."""
        slotted, slots = self.template.slotted(sheet)
        messages = self.messages(sheet)
        chosen: list[str] = []
        picks: list[int] = []
        for sentence in sentences(slotted):
            options = [fill_slots(a, slots) for a in alternatives(sentence)]
            best = 0
            if len(options) > 1:
                scores = self.llm.score(messages, " ".join(chosen), options)
                best = max(range(len(options)), key=scores.__getitem__)
            chosen.append(options[best])
            picks.append(best)
        return " ".join(chosen), picks


def complete_sentences(text: str) -> str:
    """Drop a trailing unfinished sentence (replies are cut at ``max_new_tokens``)."""
    text = text.strip()
    if not text or text[-1] in ".!?":
        return text
    cut = max(text.rfind(". "), text.rfind("! "), text.rfind("? "))
    return text[: cut + 1] if cut > 0 else text
