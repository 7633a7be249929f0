"""Measure explanations: faithfulness (deletion, insertion, ROAD, region deletion), localisation
(pointing game, energy pointing game), sanity (cascading model randomisation) and complexity
(sparseness, entropy). Importing this package registers every metric in
``vlx.registry.METRICS``; ``evaluate`` runs several on one map; ``run_grid`` runs methods ×
images × metrics; ``build_suite`` / ``run_leaderboard`` rank every method on the localisation
suite; ``tables`` renders the results (terminal, Markdown, CSV, JSON, PNG curves)."""

from vlx.evaluate import complexity, deletion, pointing, road, sanity  # noqa: F401  (registers metrics)
from vlx.evaluate.base import Metric
from vlx.evaluate.complexity import Complexity, Sparseness, entropy, gini
from vlx.evaluate.deletion import Deletion, Insertion, pixel_curve, pixel_curve_loop
from vlx.evaluate.pointing import EnergyPointingGame, PointingGame, box_mask
from vlx.evaluate.leaderboard import (
    GridItem, GridRow, Leaderboard, MethodScore, run_grid, run_leaderboard, summarise,
)
from vlx.evaluate.regions import region_deletion, region_deletion_curve
from vlx.evaluate.road import Road, RoadLeRF, RoadMoRF, impute, road_curve
from vlx.evaluate.runner import DEFAULT_METRICS, default_metrics, evaluate
from vlx.evaluate.sanity import ModelRandomisation, parameterised_layers, spearman
from vlx.evaluate.suite import Suite, SuiteItem, build_suite, compose
from vlx.evaluate.tables import curves_png, grid_table, leaderboard_table, to_csv, to_markdown

__all__ = [
    "Metric", "evaluate", "default_metrics", "DEFAULT_METRICS",
    "Deletion", "Insertion", "pixel_curve", "pixel_curve_loop",
    "Road", "RoadMoRF", "RoadLeRF", "road_curve", "impute",
    "PointingGame", "EnergyPointingGame", "box_mask",
    "ModelRandomisation", "parameterised_layers", "spearman",
    "Sparseness", "Complexity", "gini", "entropy",
    "region_deletion", "region_deletion_curve",
    "GridItem", "GridRow", "Leaderboard", "MethodScore", "run_grid", "run_leaderboard", "summarise",
    "Suite", "SuiteItem", "build_suite", "compose",
    "curves_png", "grid_table", "leaderboard_table", "to_csv", "to_markdown",
]
