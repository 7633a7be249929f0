"""Attribution methods (registered in ``vlx.registry.METHODS``, loaded on first lookup)."""

from vlx.attribute.base import AttributionMethod, attribute, get_method, upsample

__all__ = ["AttributionMethod", "attribute", "get_method", "upsample"]
