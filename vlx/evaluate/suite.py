"""The localisation suite: real object photos composited onto real textures and scenes, each with
a known ground-truth box and mask, kept only where the classifier still recognises the object.

How an item is made (``compose``), for candidate number ``k`` and seed ``s``:

1. the object is ``OBJECTS[k % len(OBJECTS)]`` (so classes stay balanced); a generator seeded
   with ``(s, k)`` draws everything else;
2. a background is drawn from ``BACKGROUNDS``; a random square crop of it (half to all of its
   shorter side, maybe mirrored) is resized to ``CANVAS × CANVAS``;
3. the object's hand-chosen crop is scaled so that its patch covers 8–35 % of the canvas (maybe
   mirrored) and pasted at a random place inside the canvas, through its footprint (the crop
   rectangle, the ellipse inscribed in it, or a hand-drawn polygon);
4. the ground-truth mask is the footprint, the box its bounding box (XYXY, exclusive end);
5. the item is kept only when the classifier's top-1 class is in the object's accepted set.

Items are numbered in candidate order, so the first ``n`` items of a larger build equal a build of
``n``. The suite is cached as PNGs plus ``manifest.json`` (``cache_dir()/localisation-v1/...``) and
extended on demand. See ``docs/localisation-suite.md`` (the suite's card).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw

from vlx.errors import UsageError
from vlx.models.classifier import ImageClassifier
from vlx.types import ImageInput

SUITE_NAME = "localisation"
SUITE_VERSION = "localisation-v1"
CANVAS = 320
DEFAULT_SEED = 0
DEFAULT_SIZE = 30
AREA_RANGE = (0.08, 0.35)


@dataclass(frozen=True)
class SuiteObject:
    """One object photo: ``source`` names a bundled image, ``crop_xyxy`` the object's box in it,
    ``shape`` the footprint (``rect``, ``ellipse``, or a polygon of ``(x, y)`` points in source
    pixels), ``accepted`` the ImageNet classes that count as recognising it."""

    name: str
    source: str
    crop_xyxy: tuple[int, int, int, int]
    accepted: tuple[int, ...]
    shape: str | tuple[tuple[int, int], ...] = "rect"


_MOTO_OUTLINE = ((92, 200), (140, 160), (300, 150), (400, 145), (470, 115), (505, 95), (560, 110), (585, 160),
                 (545, 205), (580, 260), (640, 300), (685, 370), (680, 430), (630, 455), (570, 430), (530, 390),
                 (470, 370), (345, 385), (340, 440), (315, 440), (300, 385), (260, 380), (220, 400), (160, 400),
                 (122, 350), (120, 250), (92, 235))

OBJECTS: tuple[SuiteObject, ...] = (
    SuiteObject("cat", "chelsea", (30, 0, 400, 300), (281, 282, 283, 284, 285)),
    SuiteObject("espresso", "coffee", (165, 10, 430, 315), (967, 968, 504)),
    SuiteObject("space shuttle", "astronaut", (350, 0, 480, 285), (812,)),
    SuiteObject("helmet", "astronaut", (275, 345, 512, 512), (518, 560), "ellipse"),
    SuiteObject("motorcycle", "motorcycle", (88, 92, 690, 458), (665, 670), _MOTO_OUTLINE),
    SuiteObject("pagoda", "china", (55, 25, 360, 395), (698, 442, 663)),
)

# name -> (source image, crop XYXY or None for all of it, RGB tint applied to grey textures)
BACKGROUNDS: dict[str, tuple[str, tuple[int, int, int, int] | None, tuple[float, float, float]]] = {
    "brick": ("brick", None, (1.0, 0.72, 0.58)),
    "grass": ("grass", None, (0.72, 1.0, 0.55)),
    "gravel": ("gravel", None, (1.0, 0.95, 0.88)),
    "moon": ("moon", None, (1.0, 1.0, 1.0)),
    "hubble": ("hubble_deep_field", None, (1.0, 1.0, 1.0)),
    "tissue": ("immunohistochemistry", None, (1.0, 1.0, 1.0)),
    "lakeside": ("china", (400, 0, 640, 427), (1.0, 1.0, 1.0)),
    "launch-site": ("rocket", (0, 0, 290, 427), (1.0, 1.0, 1.0)),
}


def _sources() -> dict[str, Callable[[], np.ndarray]]:
    from skimage import data

    def sklearn(i: int) -> Callable[[], np.ndarray]:
        def load() -> np.ndarray:
            from sklearn.datasets import load_sample_images

            return load_sample_images().images[i]
        return load

    return {"chelsea": data.chelsea, "coffee": data.coffee, "astronaut": data.astronaut, "rocket": data.rocket,
            "motorcycle": lambda: data.stereo_motorcycle()[0], "brick": data.brick, "grass": data.grass,
            "gravel": data.gravel, "moon": data.moon, "hubble_deep_field": data.hubble_deep_field,
            "immunohistochemistry": data.immunohistochemistry, "china": sklearn(0)}


@lru_cache(maxsize=None)
def source_image(name: str) -> np.ndarray:
    """A bundled picture (skimage.data or scikit-learn's sample images) as RGB uint8 ``(H, W, 3)``;
    grey pictures are repeated over three channels."""
    a = np.asarray(_sources()[name]())
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3].astype(np.uint8))


def footprint(obj: SuiteObject, size_wh: tuple[int, int]) -> np.ndarray:
    """The object's footprint at patch size ``(w, h)``: boolean ``(h, w)``."""
    w, h = size_wh
    canvas = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    if obj.shape == "rect":
        return np.ones((h, w), dtype=bool)
    if obj.shape == "ellipse":
        draw.ellipse((0, 0, w - 1, h - 1), fill=1)
    else:
        x0, y0, x1, y1 = obj.crop_xyxy
        sx, sy = w / (x1 - x0), h / (y1 - y0)
        draw.polygon([((x - x0) * sx, (y - y0) * sy) for x, y in obj.shape], fill=1)
    return np.asarray(canvas, dtype=bool)


@dataclass(frozen=True)
class Composite:
    """One composed picture before the classifier's check. ``pixels``: RGB uint8
    ``(CANVAS, CANVAS, 3)``; ``mask``: boolean ``(CANVAS, CANVAS)``; ``box_xyxy``: the mask's
    bounding box, exclusive end."""

    candidate: int
    obj: SuiteObject
    background: str
    pixels: np.ndarray
    mask: np.ndarray
    box_xyxy: tuple[int, int, int, int]


def _background(name: str, rng: np.random.Generator) -> np.ndarray:
    src, crop, tint = BACKGROUNDS[name]
    a = source_image(src)
    if crop is not None:
        a = a[crop[1]:crop[3], crop[0]:crop[2]]
    h, w = a.shape[:2]
    side = int(rng.uniform(0.5, 1.0) * min(h, w))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    im = Image.fromarray(a[y:y + side, x:x + side]).resize((CANVAS, CANVAS), Image.Resampling.LANCZOS)
    out = np.asarray(im).astype(np.float32) * np.asarray(tint, dtype=np.float32)
    out = np.clip(out, 0, 255).astype(np.uint8)
    return out[:, ::-1] if rng.random() < 0.5 else out


def compose(candidate: int, seed: int = DEFAULT_SEED) -> Composite:
    """Compose candidate number ``candidate`` (``>= 0``) for ``seed``; deterministic."""
    if candidate < 0:
        raise ValueError(f"candidate must be >= 0, got {candidate}")
    obj = OBJECTS[candidate % len(OBJECTS)]
    rng = np.random.default_rng([int(seed), int(candidate)])
    bg_name = sorted(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    canvas = _background(bg_name, rng).copy()
    x0, y0, x1, y1 = obj.crop_xyxy
    patch = source_image(obj.source)[y0:y1, x0:x1]
    area = rng.uniform(*AREA_RANGE) * CANVAS * CANVAS
    scale = min(np.sqrt(area / (patch.shape[0] * patch.shape[1])), 0.9 * CANVAS / max(patch.shape[:2]))
    w, h = max(8, round(patch.shape[1] * scale)), max(8, round(patch.shape[0] * scale))
    resized = np.asarray(Image.fromarray(patch).resize((w, h), Image.Resampling.LANCZOS))
    fp = footprint(obj, (w, h))
    if rng.random() < 0.5:
        resized, fp = resized[:, ::-1], fp[:, ::-1]
    px, py = int(rng.integers(0, CANVAS - w + 1)), int(rng.integers(0, CANVAS - h + 1))
    mask = np.zeros((CANVAS, CANVAS), dtype=bool)
    mask[py:py + h, px:px + w] = fp
    canvas[py:py + h, px:px + w][fp] = resized[fp]
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Composite(candidate, obj, bg_name, np.ascontiguousarray(canvas), mask, box)


@dataclass(frozen=True)
class SuiteItem:
    """One kept item. ``image``: RGB uint8 ``(CANVAS, CANVAS, 3)``; ``mask``: boolean ground truth
    of the same size; ``box_xyxy``: its bounding box (exclusive end); ``target``: the classifier's
    top-1 class (one of ``accepted``), the class the methods explain; ``probability``: its
    softmax probability in ``[0, 1]``."""

    id: str
    image: ImageInput
    mask: np.ndarray
    box_xyxy: tuple[int, int, int, int]
    object: str
    background: str
    target: int
    label: str
    probability: float
    accepted: tuple[int, ...]


@dataclass(frozen=True)
class Suite:
    """A built suite: its items, the seed, the model that checked them, and how many candidates
    were tried (``attempts``) to keep ``len(items)``. ``folder``: where it is cached."""

    name: str
    version: str
    seed: int
    model: str
    items: tuple[SuiteItem, ...]
    attempts: int
    folder: Path


def cache_dir() -> Path:
    """Where suites are cached: ``$VLX_CACHE/suites``, else ``~/.cache/vlx/suites``."""
    from vlx.cache import cache_root

    return cache_root() / "suites"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def build_suite(model: ImageClassifier, n_items: int = DEFAULT_SIZE, seed: int = DEFAULT_SEED,
                folder: str | os.PathLike | None = None, max_attempts: int | None = None) -> Suite:
    """Build (or load from the cache, extending it when it holds fewer) the first ``n_items`` items.

    Args:
        model: an ImageNet-1k classifier (1000 labels); it checks every item.
        n_items: items to return (``>= 1``).
        seed: the suite's seed.
        folder: the cache root (default ``cache_dir()``); the suite lives in
            ``folder/localisation-v1/seed<seed>-<model>/``.
        max_attempts: candidates to try before giving up (default ``20 * n_items + 50``).

    Raises UsageError for a model without 1000 classes or one that recognises too few objects.
    """
    if n_items < 1:
        raise UsageError(f"the suite needs at least one item, got {n_items}.")
    if len(model.labels) != 1000:
        raise UsageError(f"the localisation suite needs an ImageNet-1k classifier; {model.name!r} has "
                         f"{len(model.labels)} classes.")
    root = Path(folder) if folder is not None else cache_dir()
    where = root / SUITE_VERSION / f"seed{int(seed)}-{_slug(model.name)}"
    limit = max_attempts if max_attempts is not None else 20 * n_items + 50
    manifest = _extend_manifest(model, where, n_items, int(seed), limit)
    if len(manifest["items"]) < n_items:
        raise UsageError(f"only {len(manifest['items'])} of {n_items} suite items were recognised by "
                         f"{model.name!r} in {manifest['next_candidate']} tries; use a smaller --limit.")
    items = _read_items(where, manifest, n_items)
    last = manifest["items"][n_items - 1]["candidate"]
    return Suite(SUITE_NAME, SUITE_VERSION, int(seed), model.name, tuple(items), int(last) + 1, where)


# -- the cache: folder/manifest.json + item_<k>.png + item_<k>_mask.png ------------------------

def _empty_manifest(model: ImageClassifier, seed: int) -> dict:
    return {"suite": SUITE_NAME, "version": SUITE_VERSION, "seed": seed, "model": model.name, "canvas": CANVAS,
            "next_candidate": 0, "items": [], "rejected": []}


def _load_manifest(where: Path, model: ImageClassifier, seed: int) -> dict:
    path = where / "manifest.json"
    if not path.exists():
        return _empty_manifest(model, seed)
    m = json.loads(path.read_text())
    expected = (SUITE_VERSION, seed, model.name, CANVAS)
    if (m.get("version"), m.get("seed"), m.get("model"), m.get("canvas")) != expected:
        raise UsageError(f"the suite cache {where} was built differently ({m.get('version')}, seed {m.get('seed')}, "
                         f"{m.get('model')}); delete that folder or pass another --cache-dir.")
    return m


def _write_manifest(where: Path, manifest: dict) -> None:
    tmp = where / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(where / "manifest.json")


def _extend_manifest(model: ImageClassifier, where: Path, n_items: int, seed: int, limit: int) -> dict:
    """Compose and check candidates until the manifest holds ``n_items`` items or ``limit``
    candidates were tried; each new item is written at once (nothing is lost if interrupted)."""
    import torch

    where.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(where, model, seed)
    while len(manifest["items"]) < n_items and manifest["next_candidate"] < limit:
        comp = compose(manifest["next_candidate"], seed)
        with torch.no_grad():
            probs = model.logits(model.to_input(comp.pixels)).float().softmax(-1)[0]
        top = int(probs.argmax())
        record = {"candidate": comp.candidate, "object": comp.obj.name, "background": comp.background,
                  "predicted": top, "label": model.label(top), "probability": float(probs[top])}
        if top in comp.obj.accepted:
            stem = f"item_{len(manifest['items']):04d}"
            Image.fromarray(comp.pixels).save(where / f"{stem}.png")
            Image.fromarray(comp.mask.astype(np.uint8) * 255).save(where / f"{stem}_mask.png")
            manifest["items"].append({**record, "id": stem, "box_xyxy": list(comp.box_xyxy),
                                      "accepted": list(comp.obj.accepted)})
        else:
            manifest["rejected"].append(record)
        manifest["next_candidate"] = comp.candidate + 1
        _write_manifest(where, manifest)
    return manifest


def _read_items(where: Path, manifest: dict, n_items: int) -> list[SuiteItem]:
    out = []
    for rec in manifest["items"][:n_items]:
        pixels = np.asarray(Image.open(where / f"{rec['id']}.png").convert("RGB"), dtype=np.uint8)
        mask = np.asarray(Image.open(where / f"{rec['id']}_mask.png")) > 127
        out.append(SuiteItem(rec["id"], ImageInput(np.ascontiguousarray(pixels), str(where / f"{rec['id']}.png"),
                                                   rec["id"]),
                             mask, tuple(rec["box_xyxy"]), rec["object"], rec["background"], int(rec["predicted"]),
                             rec["label"], float(rec["probability"]), tuple(rec["accepted"])))
    return out
