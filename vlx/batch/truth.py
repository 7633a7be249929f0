"""Ground truth of a manifest item, and what a batch measures with it.

Accepted forms of ``ground_truth``:

* a class index or name (``285``, ``"tabby"``): the record gets ``correct`` (top-1 equals it);
* a box ``[x0, y0, x1, y1]`` in pixels (XYXY, exclusive end) or ``{"box": [...]}``;
* ``{"mask": "mask.png"}``: a binary mask image the size of the input (non-zero = object),
  path relative to the manifest's folder;
* a dict combining ``class`` with ``box`` or ``mask``.

Boxes and masks add the pointing game and the energy pointing game to the explanation's metrics.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from vlx.errors import InputError
from vlx.types import Explanation

LOCALISATION_METRICS = ("pointing-game", "energy-pointing-game")


def parse_ground_truth(gt: Any) -> dict[str, Any]:
    """Normalise ``gt`` to a dict with optional keys ``class``, ``box``, ``mask``."""
    if gt is None:
        return {}
    if isinstance(gt, bool):
        raise InputError(f"ground_truth {gt!r}: expected a class, a box [x0, y0, x1, y1] or {{'mask': path}}.")
    if isinstance(gt, (int, str)):
        return {"class": gt}
    if isinstance(gt, list):
        return {"box": gt}
    if isinstance(gt, dict) and set(gt) <= {"class", "box", "mask"}:
        return dict(gt)
    raise InputError(f"ground_truth {str(gt)[:80]!r}: expected a class, a box [x0, y0, x1, y1] or {{'mask': path}}.")


def with_ground_truth(expl: Explanation, gt: Any, model: Any, base: Path) -> tuple[Explanation, dict[str, Any]]:
    """Return the explanation with localisation metrics added (when ``gt`` has a box or mask)
    and extra fields for the results record (``correct`` when ``gt`` names a class)."""
    spec = parse_ground_truth(gt)
    extras: dict[str, Any] = {}
    if "class" in spec:
        idx = model.class_index(spec["class"])
        extras["gt_class"] = idx
        extras["correct"] = expl.prediction.indices[0] == idx
    mask = _mask(spec, expl.image.size_hw, base)
    if mask is None:
        return expl, extras
    from vlx.registry import METRICS

    added = tuple(METRICS.get(name)()(model, expl.image, expl.attribution, expl.target.primary, gt_mask=mask)
                  for name in LOCALISATION_METRICS)
    return dataclasses.replace(expl, metrics=tuple(expl.metrics) + added), extras


def _mask(spec: dict[str, Any], size_hw: tuple[int, int], base: Path) -> np.ndarray | None:
    h, w = size_hw
    if "box" in spec:
        box = spec["box"]
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
            raise InputError(f"ground_truth box {str(box)[:80]}: expected [x0, y0, x1, y1] in pixels.")
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise InputError(f"ground_truth box {box} is empty or outside the {w}x{h} image.")
        m = np.zeros((h, w), dtype=bool)
        m[y0:y1, x0:x1] = True
        return m
    if "mask" in spec:
        from PIL import Image, UnidentifiedImageError

        p = Path(str(spec["mask"]))
        p = p if p.is_absolute() else base / p
        try:
            with Image.open(p) as im:
                m = np.asarray(im.convert("L")) > 0
        except (OSError, UnidentifiedImageError) as e:
            raise InputError(f"ground_truth mask {p}: cannot read it ({e}).") from e
        if m.shape != (h, w):
            raise InputError(f"ground_truth mask {p} is {m.shape[1]}x{m.shape[0]}; the image is {w}x{h}.")
        return m
    return None
