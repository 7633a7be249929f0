"""Regions that carry a decision. Importing this package registers the built-in segmenters."""

from vlx.regions import superpixels  # noqa: F401
from vlx.regions.causal import blurred, removal_scores
from vlx.regions.geometry import bbox_xyxy, position_words

__all__ = ["blurred", "removal_scores", "bbox_xyxy", "position_words"]
