"""Regions that carry a decision: attribution map → (SAM prompts → masks | superpixels) →
disjoint regions with attribution and causal scores; region-refined maps. Importing this
package registers the built-in segmenters (``superpixels``, ``felzenszwalb``, ``sam``)."""

from vlx.regions.causal import blurred, removal_scores
from vlx.regions.factory import SEGMENTER_SPECS, make_refiner, make_segmenter
from vlx.regions.geometry import bbox_xyxy, position_words
from vlx.regions.prompts import MapPrompts, map_prompts
from vlx.regions.refine import Refiner, mask_partition, refine_map, segment_mean
from vlx.regions.sam import SamRegions, automatic_masks
from vlx.regions.scoring import causal_scores, region_from_mask, score_regions, shapley_values
from vlx.regions.select import select_masks
from vlx.regions.superpixels import FelzenszwalbRegions, SuperpixelRegions, superpixel_labels

__all__ = [
    "blurred", "removal_scores", "bbox_xyxy", "position_words",
    "make_segmenter", "make_refiner", "SEGMENTER_SPECS",
    "MapPrompts", "map_prompts", "Refiner", "refine_map", "mask_partition", "segment_mean",
    "SamRegions", "automatic_masks", "causal_scores", "score_regions", "shapley_values", "region_from_mask",
    "select_masks", "SuperpixelRegions", "FelzenszwalbRegions", "superpixel_labels",
]
