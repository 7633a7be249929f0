"""The sanity check of a model + method pair, computed once and cached on disk.

A report shows whether its method passes cascading model randomisation (``sanity.py``) for its
model. The answer belongs to the pair, not to the image, so it is computed on the first image a
pair explains (fully randomised model only, ``repeats`` independent randomisations averaged) and
read back afterwards from ``cache_root()/sanity/<key>.json``. The key holds the model's name and a
fingerprint of its weights, the method's name and options, the layer, the check's settings and
vlx's version, so a retrained model or a changed method is checked again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from vlx.cache import cache_root
from vlx.models.classifier import ImageClassifier
from vlx.types import AttributionMap, ImageInput, MetricResult

REPEATS = 3
THRESHOLD = 0.5


def weights_fingerprint(module: torch.nn.Module) -> str:
    """SHA-1 of every parameter and buffer's bytes, in ``state_dict`` order (hex)."""
    h = hashlib.sha1()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes() if t.dtype != torch.bfloat16
                 else t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()


def sanity_key(model: ImageClassifier, method: str, options: Mapping[str, Any], layer: str | None,
               repeats: int = REPEATS, threshold: float = THRESHOLD, seed: int = 0) -> str:
    """The cache key of a model + method pair (hex SHA-1 of its description)."""
    from vlx import __version__

    desc = {"model": model.name, "weights": weights_fingerprint(model.module), "method": method,
            "options": sorted((k, repr(v)) for k, v in options.items()), "layer": layer, "repeats": repeats,
            "threshold": threshold, "seed": seed, "vlx": __version__}
    return hashlib.sha1(json.dumps(desc, sort_keys=True).encode()).hexdigest()


def cached_sanity(model: ImageClassifier, image: ImageInput, amap: AttributionMap, method: Any,
                  options: Mapping[str, Any], target_index: int, repeats: int = REPEATS,
                  threshold: float = THRESHOLD, seed: int = 0, folder: Path | None = None) -> MetricResult:
    """The model-randomisation result for ``model`` + ``method`` (an ``AttributionMethod``
    instance built with ``options``): read from the cache, or computed on ``image`` / ``amap``
    (the fully randomised model only) and stored. ``value``: Spearman correlation in ``[-1, 1]``
    of the map with the randomised model's map (lower is better); ``details``: ``passed``
    (value < ``threshold``), ``threshold``, ``repeats``, ``image`` (the image it was measured on),
    ``cached`` (read from the cache), ``spearman_runs``."""
    from vlx.evaluate.sanity import ModelRandomisation

    where = (folder or cache_root() / "sanity") / (sanity_key(model, method.name, options, amap.layer, repeats,
                                                               threshold, seed) + ".json")
    if where.exists():
        d = json.loads(where.read_text())
        return MetricResult("sanity", float(d["value"]), False, "sanity", {**d["details"], "cached": True})
    check = ModelRandomisation(method=method, every=10**9, threshold=threshold, repeats=repeats, seed=seed)
    r = check(model, image, amap, target_index)
    details = {"passed": bool(r.details["passed"]), "threshold": threshold, "repeats": repeats,
               "image": image.id, "spearman_runs": [float(np.ravel(c)[-1]) for c in r.details["spearman_runs"]]}
    where.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=where.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump({"model": model.name, "method": method.name, "layer": amap.layer, "value": float(r.value),
                   "details": details}, f)
    os.replace(tmp, where)
    return MetricResult("sanity", float(r.value), False, "sanity", {**details, "cached": False})
