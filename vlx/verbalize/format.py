"""How numbers are written in text, in one place, so verbalizers and checkers agree."""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal

PCT_RE = re.compile(r"(<\s*1|\d{1,3})%")


def pct(value: float) -> str:
    """A share in ``[0, 1]`` as a whole percentage, rounded half up on the value as written
    (0.468 → "47%", 0.285 → "29%", 0.005 → "1%"); non-zero values that round to 0 read "<1%"."""
    whole = int((Decimal(repr(float(value))) * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    if whole == 0 and value > 0:
        return "<1%"
    return f"{whole}%"


def percentages(text: str) -> list[str]:
    """Every percentage written in ``text``, in order ("46%", "<1%")."""
    return [m.group(0).replace(" ", "") for m in PCT_RE.finditer(text)]
