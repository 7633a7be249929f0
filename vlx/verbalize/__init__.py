"""Verbalizers (facts → text) and the verifier. Importing this package registers the built-ins."""

from vlx.verbalize import llm, template  # noqa: F401
from vlx.verbalize.facts import FactSheet
from vlx.verbalize.format import pct, percentages
from vlx.verbalize.verify import CheckResult, verify

__all__ = ["FactSheet", "pct", "percentages", "CheckResult", "verify"]
