"""Attribution methods over score functions. Importing this package registers every built-in method."""

from vlx.attribute import cam, gradient, perturb, xrai  # noqa: F401  (registers the built-in methods)
from vlx.attribute.base import (AttributionMethod, FunctionScorer, Scorer, attribute, check_options, get_method,
                                upsample)

__all__ = ["AttributionMethod", "FunctionScorer", "Scorer", "attribute", "check_options", "get_method", "upsample"]
