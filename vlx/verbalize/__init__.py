"""Verbalizers (facts → text). Importing this package registers the built-in ones."""

from vlx.verbalize import template  # noqa: F401
from vlx.verbalize.format import pct, percentages

__all__ = ["pct", "percentages"]
