"""The packages' public names: ``vlx.evaluate`` exports lazily (``__getattr__``), the others
import eagerly; each name is the submodule's own object, an unknown one a one-line AttributeError.
The expected names are written out here (the API's contract), not read from the package."""

from __future__ import annotations

import importlib

import pytest

EVALUATE = {
    "Metric": "base",
    "Complexity": "complexity",
    "Sparseness": "complexity",
    "entropy": "complexity",
    "gini": "complexity",
    "Deletion": "deletion",
    "Insertion": "deletion",
    "pixel_curve": "deletion",
    "pixel_curve_loop": "deletion",
    "GridItem": "leaderboard",
    "GridRow": "leaderboard",
    "Leaderboard": "leaderboard",
    "MethodScore": "leaderboard",
    "run_grid": "leaderboard",
    "run_leaderboard": "leaderboard",
    "summarise": "leaderboard",
    "EnergyPointingGame": "pointing",
    "PointingGame": "pointing",
    "box_mask": "pointing",
    "region_deletion": "regions",
    "region_deletion_curve": "regions",
    "Road": "road",
    "RoadLeRF": "road",
    "RoadMoRF": "road",
    "impute": "road",
    "road_curve": "road",
    "DEFAULT_METRICS": "runner",
    "default_metrics": "runner",
    "evaluate": "runner",
    "ModelRandomisation": "sanity",
    "parameterised_layers": "sanity",
    "spearman": "sanity",
    "Suite": "suite",
    "SuiteItem": "suite",
    "build_suite": "suite",
    "compose": "suite",
    "curves_png": "tables",
    "grid_table": "tables",
    "leaderboard_table": "tables",
    "to_csv": "tables",
    "to_markdown": "tables",
}
EAGER = {
    "vlx.attribute": ["AttributionMethod", "FunctionScorer", "Scorer", "attribute", "get_method", "upsample"],
    "vlx.verbalize": ["FactSheet", "pct", "percentages", "CheckResult", "verify"],
}


def test_evaluate_exports_each_name_from_its_module_lazily():
    import vlx.evaluate as ev

    assert sorted(ev.__all__) == sorted(EVALUATE)
    for name, mod in EVALUATE.items():
        assert getattr(ev, name) is getattr(importlib.import_module(f"vlx.evaluate.{mod}"), name), name
    with pytest.raises(AttributeError, match=r"^module 'vlx.evaluate' has no attribute 'Nope'$"):
        ev.Nope


def test_eager_packages_export_their_names():
    for pkg, names in EAGER.items():
        m = importlib.import_module(pkg)
        assert sorted(m.__all__) == sorted(names) and all(getattr(m, n) is not None for n in names), pkg
    import vlx.regions as r

    assert len(r.__all__) == 23 and all(callable(getattr(r, n)) or n == "SEGMENTER_SPECS" for n in r.__all__)
