"""Check a text against the fact sheet: every percentage, region reference and class name it
states must match the measured facts, and every other word must belong to the closed vocabulary of
claims vlx measures (``claims.py``), so a text that says anything nobody measured is rejected.

A percentage's kind is read from the words of its clause ("of the image" → area, "attribution"
→ mass, "blur"/"remove" → confidence after removal, "confidence" → the prediction's confidence)
and its region from the last region reference before it (a position such as "centre-left", or
"region 2" / "second region"); a percentage whose kind cannot be told must equal some fact.
Wrong numbers whose kind and region are known are corrected; a wrong region, a wrong class or a
missing class name cannot be corrected and rejects the text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from vlx.regions.geometry import COLS, ROWS
from vlx.verbalize.claims import score_of_name_before, unsupported_words
from vlx.verbalize.facts import FactSheet
from vlx.verbalize.format import pct

POSITIONS = tuple(sorted({"centre" if r == c == "centre" else f"{r}-{c}" for r in ROWS for c in COLS},
                         key=len, reverse=True))
_NUM = re.compile(r"(<\s*1|\d{1,3}(?:\.\d+)?)\s*(%|percent\b|per cent\b)", re.IGNORECASE)
_ORDINAL = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5}
_REGION_REF = re.compile(r"\bregion\s+(\d)\b|\b(first|second|third|fourth|fifth)\s+region\b", re.IGNORECASE)
_KINDS = (  # (kind, keywords); the keyword nearest to the number wins
    ("after", ("blur", "remov", "without", "hidden", "hiding", "mask", "occlud", "drop", "lower", "falls", "fall")),
    ("area", ("of the image", "image", "area", "covers", "covering", "size", "pixels")),
    ("mass", ("attribution", "holds", "evidence", "importance", "relevance", "share", "heat", "saliency")),
    ("confidence", ("confidence", "confident", "probability", "predict", "score", "likel", "chance")),
)
_STOP_LABEL_WORDS = {"image", "model", "region", "centre", "center", "photo", "picture"}


@dataclass
class CheckResult:
    """The verifier's verdict. ``status``: verified, corrected or rejected. ``claims``: how many
    checkable claims the text makes; ``correct``: how many matched before correction."""

    status: str
    text: str
    issues: list[str] = field(default_factory=list)
    claims: int = 0
    correct: int = 0

    @property
    def fidelity(self) -> float:
        """Share of the text's claims that matched the facts, in ``[0, 1]`` (1.0 with no claims)."""
        return self.correct / self.claims if self.claims else 1.0

    def to_json(self) -> dict:
        return {"status": self.status, "issues": list(self.issues), "claims": self.claims,
                "correct": self.correct, "fidelity": self.fidelity}


def normalize(text: str) -> str:
    """US spellings and spacing variants to the forms vlx writes ("center left" → "centre-left")."""
    t = re.sub(r"\bcenter\b", "centre", text, flags=re.IGNORECASE)
    t = re.sub(r"\bmiddle\b", "centre", t, flags=re.IGNORECASE)
    t = re.sub(r"\b(top|centre|bottom)[ -](left|centre|right)\b", r"\1-\2", t, flags=re.IGNORECASE)
    return t.replace("centre-centre", "centre")


CHECKED = ("every number, and what it measures (a probability, an area, an attribution share, the "
           "confidence with a region blurred out)", "the region each number is about", "every class and "
           "concept name", "the map's deletion check (the share blurred, the confidence after it, and after "
           "blurring a random share)", "every other word, against the vocabulary of what vlx measures")


def verify(text: str, sheet: FactSheet) -> CheckResult:
    """Check ``text`` against ``sheet``; returns the verdict and, when ``corrected``, the text
    with each wrong number replaced by the measured one. What is checked is ``CHECKED``."""
    from vlx.verbalize.template import method_display_name

    t = normalize(text)
    issues: list[str] = []
    claims = correct = 0
    for word in unsupported_words(t, sheet, method_display_name(sheet.method)):
        claims += 1
        issues.append(f"says {word!r}, which is not a fact vlx measured")
    positions = [r.position for r in sheet.regions]

    refs = _region_refs(t, positions)
    for start, _, cands in refs:
        claims += 1
        if not cands:
            issues.append(f"names a region that was not measured near {t[start:start + 30]!r}")
        else:
            correct += 1

    if not _mentions(t, sheet.target_label):
        issues.append(f"does not name the explained class {sheet.target_label!r}")
    claims += 1
    wrong_classes = _wrong_classes(t, sheet)
    claims += len(wrong_classes)
    for name in wrong_classes:
        issues.append(f"names class {name!r}, which is not among the facts")
    correct += 1 if _mentions(t, sheet.target_label) else 0

    replacements: list[tuple[int, int, str]] = []
    for m in _NUM.finditer(t):
        claims += 1
        stated = m.group(1).replace(" ", "")
        map_kind = _map_kind(t, m.start(), m.end())
        if map_kind is not None:
            value = _map_expected(sheet, map_kind)
            if value is None:
                issues.append(f"states {stated}% about a deletion check of the map, which was not measured")
            elif _same(stated, value):
                correct += 1
            else:
                issues.append(f"states {stated}% as {_MAP_KINDS[map_kind]}; the measured value is {pct(value)}")
                replacements.append((m.start(), m.end(), pct(value)))
            continue
        kind = _kind(t, m.start(), m.end())
        cands = _region_before(refs, m.start())
        named = score_of_name_before(t, m.start(), sheet) if kind is None else []
        if kind is None and not named:
            kind = _kind(t, m.start(), m.end(), bounds=r"[.;!?]")      # a keyword elsewhere in the sentence
        if named:
            expected, kind = named, "probability"
        elif kind is None:
            issues.append(f"states {stated}% without saying what it measures")
            continue
        elif kind == "confidence" and not sheet.is_top and sheet.prediction.scores:
            expected = [sheet.target_score, sheet.prediction.scores[0]]   # the explained or the top class
        else:
            expected = [v for v in (_expected(sheet, kind, r) for r in cands) if v is not None]
        ok = any(_same(stated, v) for v in expected)
        if ok:
            correct += 1
            continue
        # a probability is the prediction's, whatever region was named before it
        where = "the prediction" if kind in ("confidence", "probability") else "region " + " or ".join(map(str, cands))
        shown = list(dict.fromkeys(pct(v) for v in expected))   # each value as the reader sees it, once
        issues.append(f"states {stated}% as {kind} of {where}"
                      + (f"; the measured value is {' or '.join(shown)}" if shown else ""))
        if len(shown) == 1:
            replacements.append((m.start(), m.end(), shown[0]))

    if not issues:
        return CheckResult("verified", text, [], claims, correct)
    if len(replacements) == len(issues):                # every issue is a wrong number with one measured value
        fixed = t
        for s, e, new in sorted(replacements, reverse=True):
            fixed = fixed[:s] + new + fixed[e:]
        return CheckResult("corrected", fixed, issues, claims, correct)
    return CheckResult("rejected", text, issues, claims, correct)


_MAP_KINDS = {"fraction": "the share of the image blurred in the map's deletion check",
              "before": "the confidence before blurring", "after": "the confidence after blurring what the map "
              "ranks highest", "random_after": "the confidence after blurring a random share"}
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def _map_kind(text: str, start: int, end: int) -> str | None:
    """The kind of a number in a sentence about the map's deletion check (one that says what the
    map "ranks highest" or blurs "a random" share), or ``None`` for a number elsewhere.

    ``fraction``: followed by "of the image" or right after "random"; ``before``: right after
    "from"; otherwise ``random_after`` in a clause that says "random", else ``after``."""
    ends = [m.end() for m in _SENTENCE_END.finditer(text, 0, start)]
    s0 = ends[-1] if ends else 0
    nxt = _SENTENCE_END.search(text, end)
    sentence = text[s0:nxt.end() if nxt else len(text)].lower()
    if not re.search(r"\branks? highest\b|\brandom\b", sentence):
        return None
    left, right = text[s0:start].lower(), text[end:].lower()
    if re.match(r"\s*of the (?:image|picture|photo)\b", right) or re.search(r"\brandom\s*$", left):
        return "fraction"
    if re.search(r"\bfrom\s*$", left):
        return "before"
    clause = re.split(r"[;,]|\bwhile\b|\bwhereas\b", left)[-1] + re.split(r"[;,.]|\bwhile\b|\bwhereas\b", right)[0]
    return "random_after" if re.search(r"\brandom", clause) else "after"


def _map_expected(sheet: FactSheet, kind: str) -> float | None:
    m = sheet.map_check
    if m is None:
        return None
    return {"fraction": m.fraction, "before": sheet.target_score, "after": m.after, "random_after": m.random_after}[kind]


def _mentions(text: str, label: str) -> bool:
    names = [s.strip() for s in label.split(",") if s.strip()]
    return any(re.search(rf"\b{re.escape(n)}\b", text, re.IGNORECASE) for n in names)


def _allowed_names(sheet: FactSheet) -> list[str]:
    names = [sheet.target_label, *sheet.prediction.labels]
    if sheet.other_label:
        names.append(sheet.other_label)
    if sheet.group:
        names.append(sheet.group)
    for r in sheet.regions:
        if r.description is not None:
            names.extend(r.description.labels)
    return names


def _wrong_classes(text: str, sheet: FactSheet) -> list[str]:
    """Class names of the model that the text mentions but the facts do not contain."""
    t = text.lower()
    for name in sorted({s.strip().lower() for n in _allowed_names(sheet) for s in n.split(",")}, key=len, reverse=True):
        if name:
            t = re.sub(rf"\b{re.escape(name)}\b", " ", t)
    found = []
    for syn in candidate_synonyms(t, tuple(sheet.labels)):
        if len(syn) >= 4 and syn not in _STOP_LABEL_WORDS and re.search(rf"\b{re.escape(syn)}\b", t):
            found.append(syn)
    return sorted(set(found))


@functools.lru_cache(maxsize=8)
def _synonyms(labels: tuple[str, ...]) -> tuple[tuple[str, frozenset[str]], ...]:
    """Every comma-separated synonym of every label, lower-cased, in label order, with its words."""
    return tuple((syn, frozenset(re.findall(r"\w+", syn))) for label in labels
                 for syn in (s.strip().lower() for s in label.split(",")))


def candidate_synonyms(lowered_text: str, labels: tuple[str, ...]) -> list[str]:
    """The synonyms of ``labels`` (in label order) that can occur in ``lowered_text`` as whole
    words: those whose every word is a word of the text. A whole-word match implies that, so this
    only skips labels that cannot match (1000 ImageNet labels → a handful of regex searches)."""
    words = set(re.findall(r"\w+", lowered_text))
    return [syn for syn, w in _synonyms(labels) if w <= words]


def _region_refs(text: str, positions: list[str]) -> list[tuple[int, int, tuple[int, ...]]]:
    """``(start, end, candidate region numbers)`` for every region reference, in text order; the
    candidates are empty for a region that was not measured. A position shared by several regions
    has several candidates; a position right after "the third region" in the same sentence only
    restates that region and is not a reference of its own."""
    n_regions = len(positions)
    refs: list[tuple[int, int, tuple[int, ...]]] = []
    for m in _REGION_REF.finditer(text):
        n = int(m.group(1)) if m.group(1) else _ORDINAL[m.group(2).lower()]
        refs.append((m.start(), m.end(), (n,) if 1 <= n <= n_regions else ()))
    numbered = list(refs)
    taken = [(s, e) for s, e, _ in refs]
    for pos in POSITIONS:
        for m in re.finditer(rf"\b{re.escape(pos)}\b", text, re.IGNORECASE):
            if any(s <= m.start() < e for s, e in taken):
                continue
            taken.append((m.start(), m.end()))
            cands = tuple(i + 1 for i, p in enumerate(positions) if p == pos.lower())
            if any(0 <= m.start() - e <= 40 and not re.search(r"[.;!?]", text[e:m.start()]) and c and
                   set(c) <= set(cands) for _, e, c in numbered):
                continue                                 # "A third region, at the centre (...)"
            refs.append((m.start(), m.end(), cands))
    return sorted(refs)


def _region_before(refs, offset: int) -> tuple[int, ...]:
    """Candidates of the last region reference before ``offset`` (region 1 when there is none)."""
    before = [c for s, _, c in refs if s < offset and c]
    return before[-1] if before else (1,)


def _clause(text: str, start: int, end: int, bounds: str) -> tuple[str, str]:
    """The words of the clause before and after a number, bounded by the pattern ``bounds``."""
    left = re.split(bounds, text[:start])[-1].lower()
    right = re.split(bounds, text[end:])[0].lower()
    return left, right


def _kind(text: str, start: int, end: int, bounds: str = r"[.;,()\u2014]") -> str | None:
    left, right = _clause(text, start, end, bounds)
    best: tuple[int, str] | None = None
    for kind, words in _KINDS:
        for w in words:
            i = left.rfind(w)
            if i >= 0:
                d = len(left) - i
                best = min(best, (d, kind)) if best else (d, kind)
            j = right.find(w)
            if j >= 0:
                best = min(best, (j + 1, kind)) if best else (j + 1, kind)
    if best is None:
        return None
    if best[1] == "confidence" and _removal_in_sentence(text, start, end):
        return "after"                                  # "when it is blurred out, the confidence became 4%"
    return best[1]


def _removal_in_sentence(text: str, start: int, end: int) -> bool:
    left = re.split(r"[.;!?]\s", text[:start])[-1].lower()
    right = re.split(r"[.;!?]\s", text[end:])[0].lower()
    return any(w in left or w in right for w in dict(_KINDS)["after"])


def _expected(sheet: FactSheet, kind: str, region: int) -> float | None:
    """The measured value a number of ``kind`` about ``region`` (1-based) should state."""
    if kind == "confidence":
        return sheet.target_score            # of the top class; verify() adds the top class's when they differ
    if not 1 <= region <= len(sheet.regions):
        return None
    r = sheet.regions[region - 1]
    return {"area": r.area_fraction, "mass": r.attribution_mass, "after": r.score_after_removal}[kind]


def _same(stated: str, value: float) -> bool:
    """Whether a stated percentage ("46", "<1", "45.8") matches a share in ``[0, 1]``."""
    if stated.startswith("<"):
        return value < 0.01
    s = float(stated)
    if "." in stated:
        return abs(value * 100 - s) <= 0.05 + 1e-9 * s
    return pct(value) == f"{int(s)}%" or abs(value * 100 - s) <= 0.5 + 1e-9
