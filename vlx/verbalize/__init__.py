"""Verbalizers (facts → text) and the verifier. The built-ins are in ``vlx.registry.VERBALIZERS``."""

from vlx.verbalize.facts import FactSheet
from vlx.verbalize.format import pct, percentages
from vlx.verbalize.verify import CheckResult, verify

__all__ = ["FactSheet", "pct", "percentages", "CheckResult", "verify"]
