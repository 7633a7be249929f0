"""Other ways to say each template sentence, with the same slots: the grammar that constrained LLM
decoding chooses from (``llm.py``).

Every phrasing states exactly the facts of the template sentence it replaces, with the numbers and
names left as slots (``[CLASS]``, ``[R1_SHARE]``, ...), so whichever one a language model prefers,
the filled-in text says only what was measured; ``llm.py`` still verifies the result. A sentence
the grammar does not know (contrast, top class, descriptions) keeps its template wording only.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?<=[.])\s+(?=[A-Z\[])")
_PREDICTS = re.compile(r"^\[MODEL\] predicts \[CLASS\] \(\[CONF\]\)\.$")
_REGION = re.compile(r"^(?P<head>The region|A second region|A third region|A fourth region|A fifth region)"
                     r"(?:,)? at the \[R(?P<n>\d)_POS\](?:, | \()\[R(?P=n)_AREA\] of the image(?:,|\),)"
                     r" holds \[R(?P=n)_SHARE\](?P<what> of the .+? attribution(?: for .+? rather than .+?)?)?"
                     r"(?:; blurring it (?P<verb>lowers the confidence to|raises the confidence to|"
                     r"leaves the confidence at) \[R(?P=n)_AFTER\])?\.$")
_MAP = re.compile(r"^Blurring the \[MAP_FRAC\] of the image the map ranks highest (?P<top>(?:lowers|raises) the "
                  r"confidence from \[CONF\] to \[MAP_AFTER\]|leaves the confidence at \[CONF\]); blurring a random "
                  r"\[MAP_FRAC\] (?P<rnd>(?:lowers|raises) it to \[RANDOM_AFTER\]|leaves it unchanged)\.$")
_ORDINAL = {"The region": "first", "A second region": "second", "A third region": "third",
            "A fourth region": "fourth", "A fifth region": "fifth"}
_AFTER = {  # the template's verb → the same change said in other words
    "lowers the confidence to": ("blurring it lowers the confidence to", "with it blurred out, the confidence falls to",
                                 "blurring it out drops the confidence to"),
    "raises the confidence to": ("blurring it raises the confidence to", "with it blurred out, the confidence rises to"),
    "leaves the confidence at": ("blurring it leaves the confidence at", "with it blurred out, the confidence stays at"),
}


def sentences(text: str) -> list[str]:
    """The sentences of a template text, in order (split after a full stop)."""
    return [s for s in _SENTENCE.split(text.strip()) if s]


def alternatives(sentence: str) -> list[str]:
    """Phrasings of one slotted template sentence; the template's own wording comes first."""
    if _PREDICTS.match(sentence):
        return [sentence,
                "[MODEL] predicts [CLASS], with a probability of [CONF].",
                "[MODEL] gives [CLASS] a probability of [CONF].",
                "For this image, [MODEL] predicts [CLASS] with [CONF] confidence."]
    m = _MAP.match(sentence)
    if m:
        top, rnd = m.group("top"), m.group("rnd")
        return [sentence,
                f"Blurring the [MAP_FRAC] of the image that the map ranks highest {top}, while blurring a random "
                f"[MAP_FRAC] {rnd}.",
                f"When the [MAP_FRAC] of the image the map ranks highest is blurred, that {top.split(' ', 1)[0]} "
                f"{top.split(' ', 1)[1]}; blurring a random [MAP_FRAC] {rnd}."]
    m = _REGION.match(sentence)
    if not m:
        return [sentence]
    n, what = m.group("n"), m.group("what") or " of the attribution"
    pos, area, share, after = (f"[R{n}_{k}]" for k in ("POS", "AREA", "SHARE", "AFTER"))
    ordinal = _ORDINAL[m.group("head")]
    bodies = [
        f"The {ordinal} region, at the {pos}, covers {area} of the image and holds {share}{what}",
        f"The {pos} region covers {area} of the image and holds {share}{what}",
        f"At the {pos}, a region that covers {area} of the image holds {share}{what}",
    ]
    if ordinal == "first":
        bodies.append(f"The region at the {pos} holds {share}{what} and covers {area} of the image")
    if m.group("verb") is None:
        return [sentence, *(b + "." for b in bodies)]
    tails = _AFTER[m.group("verb")]
    return [sentence, *(f"{b}; {t} {after}." for b in bodies for t in tails)]
