"""Attribution methods. Importing this package registers every built-in method."""

from vlx.attribute import cam  # noqa: F401  (registers the CAM family)
from vlx.attribute.base import AttributionMethod, attribute, get_method, upsample

__all__ = ["AttributionMethod", "attribute", "get_method", "upsample"]
