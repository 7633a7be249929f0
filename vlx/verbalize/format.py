"""How numbers are written in text, in one place, so verbalizers and checkers agree."""

from __future__ import annotations

import re

PCT_RE = re.compile(r"(<\s*1|\d{1,3})%")


def pct(value: float) -> str:
    """A share in ``[0, 1]`` as a whole percentage ("46%"); non-zero values under 1% read "<1%"."""
    if 0 < value < 0.005:
        return "<1%"
    return f"{round(value * 100)}%"


def percentages(text: str) -> list[str]:
    """Every percentage written in ``text``, in order ("46%", "<1%")."""
    return [m.group(0).replace(" ", "") for m in PCT_RE.finditer(text)]
