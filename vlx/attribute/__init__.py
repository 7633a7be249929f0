"""Attribution methods. Importing this package registers every built-in method."""

from vlx.attribute import cam, gradient, perturb  # noqa: F401  (registers the built-in methods)
from vlx.attribute.base import AttributionMethod, attribute, get_method, upsample

__all__ = ["AttributionMethod", "attribute", "get_method", "upsample"]
