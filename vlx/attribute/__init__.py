"""Attribution methods over score functions (registered in ``vlx.registry.METHODS``, loaded on
first lookup)."""

from vlx.attribute.base import AttributionMethod, FunctionScorer, Scorer, attribute, get_method, upsample

__all__ = ["AttributionMethod", "FunctionScorer", "Scorer", "attribute", "get_method", "upsample"]
