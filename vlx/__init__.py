"""vlx: explain image models and vision-language models in pictures and in words, and measure
how far each explanation can be trusted.

Quick start::

    import vlx
    expl = vlx.explain("cat.jpg")              # embedded EfficientNet-Lite0, Grad-CAM
    print(expl.verbalization.text)
    vlx.write_explanation(expl, "out/cat")     # report.html, explanation.json, map.npy

Names are imported lazily, so ``import vlx`` (and ``vlx --help``) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "explain": "vlx.pipeline", "Explainer": "vlx.pipeline", "ExplainConfig": "vlx.config",
    "explain_files": "vlx.run",
    "load_image": "vlx.image", "from_array": "vlx.image",
    "load_classifier": "vlx.models",
    "render_html": "vlx.report", "render_comparison": "vlx.report", "write_explanation": "vlx.report",
    "write_pdf": "vlx.report.pdf", "run_batch": "vlx.batch", "BatchOptions": "vlx.batch",
    "explain_episode": "vlx.fewshot.api",
    "AttributionMap": "vlx.types", "ClassTarget": "vlx.types", "ContrastTarget": "vlx.types",
    "Explanation": "vlx.types", "ImageInput": "vlx.types", "MetricResult": "vlx.types", "Region": "vlx.types",
    "RegionDescription": "vlx.types", "Verbalization": "vlx.types",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'vlx' has no attribute {name!r}")
