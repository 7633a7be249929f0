"""Measure explanations: faithfulness (deletion, insertion, ROAD, region deletion), localisation
(pointing game, energy pointing game), sanity (cascading model randomisation) and complexity
(sparseness, entropy). Metrics are registered in ``vlx.registry.METRICS`` (loaded on first
lookup); ``evaluate`` runs several on one map; ``run_grid`` runs methods × images × metrics;
``build_suite`` / ``run_leaderboard`` rank every method on the localisation suite; ``tables``
renders the results (terminal, Markdown, CSV, JSON, PNG curves).

Names are imported lazily, so importing one module (``vlx.evaluate.text``) does not load the
suite, the leaderboard or the tables."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Metric": "base",
    "Complexity": "complexity", "Sparseness": "complexity", "entropy": "complexity", "gini": "complexity",
    "Deletion": "deletion", "Insertion": "deletion", "pixel_curve": "deletion", "pixel_curve_loop": "deletion",
    "EnergyPointingGame": "pointing", "PointingGame": "pointing", "box_mask": "pointing",
    "GridItem": "leaderboard", "GridRow": "leaderboard", "Leaderboard": "leaderboard", "MethodScore": "leaderboard",
    "run_grid": "leaderboard", "run_leaderboard": "leaderboard", "summarise": "leaderboard",
    "region_deletion": "regions", "region_deletion_curve": "regions",
    "Road": "road", "RoadLeRF": "road", "RoadMoRF": "road", "impute": "road", "road_curve": "road",
    "DEFAULT_METRICS": "runner", "default_metrics": "runner", "evaluate": "runner",
    "ModelRandomisation": "sanity", "parameterised_layers": "sanity", "spearman": "sanity",
    "Suite": "suite", "SuiteItem": "suite", "build_suite": "suite", "compose": "suite",
    "curves_png": "tables", "grid_table": "tables", "leaderboard_table": "tables", "to_csv": "tables",
    "to_markdown": "tables",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vlx.evaluate.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vlx.evaluate' has no attribute {name!r}")
