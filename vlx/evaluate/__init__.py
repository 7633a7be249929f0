"""Measure explanations: faithfulness (deletion, insertion, ROAD, region deletion), localisation
(pointing game, energy pointing game), sanity (cascading model randomisation) and complexity
(sparseness, entropy). Importing this package registers every metric in
``vlx.registry.METRICS``; ``evaluate`` runs several on one map."""

from vlx.evaluate import complexity, deletion, pointing, road, sanity  # noqa: F401  (registers metrics)
from vlx.evaluate.base import Metric
from vlx.evaluate.complexity import Complexity, Sparseness, entropy, gini
from vlx.evaluate.deletion import Deletion, Insertion, pixel_curve, pixel_curve_loop
from vlx.evaluate.pointing import EnergyPointingGame, PointingGame, box_mask
from vlx.evaluate.regions import region_deletion, region_deletion_curve
from vlx.evaluate.road import Road, RoadLeRF, RoadMoRF, impute, road_curve
from vlx.evaluate.runner import DEFAULT_METRICS, default_metrics, evaluate
from vlx.evaluate.sanity import ModelRandomisation, parameterised_layers, spearman

__all__ = [
    "Metric", "evaluate", "default_metrics", "DEFAULT_METRICS",
    "Deletion", "Insertion", "pixel_curve", "pixel_curve_loop",
    "Road", "RoadMoRF", "RoadLeRF", "road_curve", "impute",
    "PointingGame", "EnergyPointingGame", "box_mask",
    "ModelRandomisation", "parameterised_layers", "spearman",
    "Sparseness", "Complexity", "gini", "entropy",
    "region_deletion", "region_deletion_curve",
]
