"""Few-shot episodes built offline from real pictures, with exact ground-truth masks.

Every picture comes from ``skimage.data`` or scikit-learn's ``load_sample_images`` (both ship
with the packages; nothing is downloaded). A *category* is one source picture: an *instance* of
it is a random crop (scale, position, flip, brightness jitter) cut out with a random blob shape
and pasted on a background, so the ground-truth mask is exactly the pasted shape.

Two kinds of scene (see ``docs/fewshot-episodes.md``):

* ``object``: a photo category (cat, coffee, astronaut, flower, china, rocket, tissue, coins)
  pasted on a real texture (brick, grass, gravel), tinted at random;
* ``texture``: a texture category pasted on another texture (texture-vs-texture scenes).

A query may also hold a *distractor*: an instance of another category, not in the mask. Support
shots hold the target instance (in the mask) and, with ``support_distractor``, a distractor
outside it. Everything is seeded: the same seed gives the same episode, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np

from vlx.types import ImageInput

Kind = Literal["object", "texture"]

# category -> (loader name, crop box x0, y0, x1, y1 in the source picture, exclusive end)
PHOTO_BOXES: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "cat": ("chelsea", (110, 10, 350, 290)),
    "coffee": ("coffee", (90, 30, 510, 390)),
    "astronaut": ("astronaut", (130, 10, 340, 260)),
    "flower": ("flower", (100, 30, 560, 420)),
    "china": ("china", (60, 120, 600, 427)),
    "rocket": ("rocket", (230, 10, 420, 420)),
    "tissue": ("immunohistochemistry", (0, 0, 512, 512)),
    "coins": ("coins", (0, 0, 384, 303)),
}
TEXTURES: tuple[str, ...] = ("brick", "grass", "gravel")
TINTS: tuple[tuple[float, float, float], ...] = (
    (1.0, 0.85, 0.7), (0.75, 0.95, 0.7), (0.85, 0.85, 0.9), (0.95, 0.8, 0.8), (0.8, 0.9, 1.0))


@dataclass(frozen=True)
class Episode:
    """One 1-way K-shot episode.

    Attributes:
        query: the query image, RGB uint8 ``(H, W, 3)``.
        query_mask: ground truth, bool ``(H, W)``, ``True`` on the category's pixels.
        supports: K support images, RGB uint8 ``(H, W, 3)`` each.
        support_masks: K bool ``(H, W)`` masks of the category in each support image.
        category: the category segmented (a picture or texture name).
        kind: ``object`` (photo on texture) or ``texture`` (texture on texture).
        distractors: per support image, bool ``(H, W)`` mask of the distractor instance outside
            the support mask (all ``False`` when there is none).
        seed: the seed it was built from.
    """

    query: ImageInput
    query_mask: np.ndarray
    supports: tuple[ImageInput, ...]
    support_masks: tuple[np.ndarray, ...]
    category: str
    kind: Kind
    distractors: tuple[np.ndarray, ...] = field(default=())
    seed: int = 0

    @property
    def shots(self) -> int:
        return len(self.supports)


@lru_cache(maxsize=32)
def _picture(name: str) -> np.ndarray:
    """A source picture as RGB uint8 ``(H, W, 3)``."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_images

        data = load_sample_images()
        idx = [i for i, f in enumerate(data.filenames) if f.endswith(f"{name}.jpg")][0]
        img = np.asarray(data.images[idx])
    else:
        from skimage import data

        img = np.asarray(getattr(data, name)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3].astype(np.uint8))


def _resize(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(img).resize((hw[1], hw[0]), Image.BILINEAR))


def blob_mask(rng: np.random.Generator, size: int, area: tuple[float, float] = (0.12, 0.3)) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """A random smooth blob (a perturbed, rotated ellipse) inside a ``size``×``size`` image.

    Returns ``(mask, box)``: bool ``(size, size)`` and its XYXY box (exclusive end)."""
    frac = rng.uniform(*area)
    aspect = rng.uniform(0.6, 1.6)
    ry = np.sqrt(frac * size * size / np.pi / aspect)
    rx = ry * aspect
    ry, rx = min(ry, 0.45 * size), min(rx, 0.45 * size)
    cy = rng.uniform(ry + 2, size - ry - 2)
    cx = rng.uniform(rx + 2, size - rx - 2)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    theta = rng.uniform(0, np.pi)
    dy, dx = yy - cy, xx - cx
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / rx
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / ry
    ang = np.arctan2(v, u)
    wobble = 1.0 + sum(rng.uniform(-0.12, 0.12) * np.cos(k * ang + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    mask = np.hypot(u, v) <= wobble
    ys, xs = np.nonzero(mask)
    return mask, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _texture(name: str, rng: np.random.Generator, size: int, tinted: bool = True) -> np.ndarray:
    """A random ``size``×``size`` crop of a texture, tinted, RGB uint8."""
    src = _picture(name)
    side = int(rng.integers(int(0.5 * src.shape[0]), src.shape[0] + 1))
    y = int(rng.integers(0, src.shape[0] - side + 1))
    x = int(rng.integers(0, src.shape[1] - side + 1))
    crop = _resize(src[y:y + side, x:x + side], (size, size)).astype(np.float32)
    tint = np.array(TINTS[int(rng.integers(len(TINTS)))] if tinted else (1.0, 1.0, 1.0), np.float32)
    return np.clip(crop * tint, 0, 255).astype(np.uint8)


def _instance(category: str, rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``size``×``size`` RGB view of a category: a jittered crop of its picture or texture."""
    if category in TEXTURES:
        return _texture(category, rng, size, tinted=False)
    name, (x0, y0, x1, y1) = PHOTO_BOXES[category]
    src = _picture(name)
    bw, bh = x1 - x0, y1 - y0
    s = rng.uniform(0.7, 1.0)
    cw, ch = int(bw * s), int(bh * s)
    cx = x0 + int(rng.integers(0, bw - cw + 1))
    cy = y0 + int(rng.integers(0, bh - ch + 1))
    crop = src[cy:cy + ch, cx:cx + cw]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    crop = _resize(np.ascontiguousarray(crop), (size, size)).astype(np.float32)
    return np.clip(crop * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)


def _paste(canvas: np.ndarray, category: str, mask: np.ndarray, box: tuple[int, int, int, int],
           rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    view = _instance(category, rng, side)
    region = mask[y0:y1, x0:x1]
    canvas[y0:y1, x0:x1][region] = view[: y1 - y0, : x1 - x0][region]


def _scene(category: str, background: str, rng: np.random.Generator, size: int,
           distractor: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(image, target mask, distractor mask)`` for one scene."""
    canvas = _texture(background, rng, size)
    mask, box = blob_mask(rng, size)
    other = np.zeros_like(mask)
    if distractor is not None:
        for _ in range(50):
            cand, cbox = blob_mask(rng, size, (0.08, 0.16))
            if not (cand & mask).any():
                other = cand
                _paste(canvas, distractor, other, cbox, rng)
                break
    _paste(canvas, category, mask, box, rng)
    return canvas, mask, other


def make_episode(seed: int, shots: int = 2, size: int = 192, kind: Kind | None = None,
                 query_distractor: bool = True, support_distractor: bool = False,
                 category: str | None = None) -> Episode:
    """Build one seeded 1-way ``shots``-shot episode of ``size``×``size`` images.

    ``kind`` picks the scene kind (``None``: object for even seeds, texture for odd ones);
    ``category`` the category (``None``: drawn from the seed; it must fit the kind); with
    ``query_distractor`` the query also holds an instance of another category (not in the
    ground truth); with ``support_distractor`` every support image holds one too."""
    rng = np.random.default_rng(seed)
    kind = kind or ("object" if seed % 2 == 0 else "texture")
    if kind not in ("object", "texture"):
        raise ValueError(f"kind must be 'object' or 'texture', got {kind!r}")
    cats = list(PHOTO_BOXES) if kind == "object" else list(TEXTURES)
    drawn = cats[int(rng.integers(len(cats)))]
    category = category or drawn
    if category not in cats:
        raise ValueError(f"category {category!r} is not a {kind} category; choose one of {cats}")
    if kind == "object":
        pool = [c for c in cats if c != category]
        backgrounds = list(TEXTURES)
    else:
        pool = list(PHOTO_BOXES)
        backgrounds = [t for t in TEXTURES if t != category]

    def one(distract: bool, tag: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        bg = backgrounds[int(rng.integers(len(backgrounds)))]
        d = pool[int(rng.integers(len(pool)))] if distract else None
        return _scene(category, bg, rng, size, d)

    q, qm, _ = one(query_distractor, "query")
    sups = [one(support_distractor, f"shot{k}") for k in range(shots)]
    return Episode(
        query=ImageInput(q, id=f"ep{seed}-query"), query_mask=qm,
        supports=tuple(ImageInput(s[0], id=f"ep{seed}-shot{k}") for k, s in enumerate(sups)),
        support_masks=tuple(s[1] for s in sups), category=category, kind=kind,
        distractors=tuple(s[2] for s in sups), seed=seed)


def episode_suite(n: int = 8, shots: int = 2, size: int = 192, seed: int = 0) -> list[Episode]:
    """``n`` episodes with seeds ``seed .. seed + n - 1``: object and texture kinds alternate and
    each kind cycles through its categories (objects in ``PHOTO_BOXES`` order, then textures)."""
    objects, textures = list(PHOTO_BOXES), list(TEXTURES)
    return [make_episode(seed + i, shots=shots, size=size, kind="object" if i % 2 == 0 else "texture",
                         category=objects[(i // 2) % len(objects)] if i % 2 == 0 else textures[(i // 2) % len(textures)])
            for i in range(n)]


def make_two_region_episode(seed: int, size: int = 192) -> Episode:
    """A 1-shot ``object`` episode whose single support mask covers two blobs of equal size, one
    of the query's category (left half) and one of another category (right half); the query holds
    only the first. ``support_masks[0]`` is the union; ``distractors[0]`` the non-matching blob.
    An explainer should put most of its in-mask mass on the matching blob."""
    rng = np.random.default_rng(seed)
    cats = list(PHOTO_BOXES)
    category, other = (cats[i] for i in rng.choice(len(cats), size=2, replace=False))
    q, qm, _ = _scene(category, TEXTURES[int(rng.integers(len(TEXTURES)))], rng, size, None)
    canvas = _texture(TEXTURES[int(rng.integers(len(TEXTURES)))], rng, size)
    yy, xx = np.mgrid[0:size, 0:size]
    r = 0.2 * size
    masks = []
    for cx, cat in ((0.25 * size, category), (0.75 * size, other)):
        m = (yy - size / 2) ** 2 + (xx - cx) ** 2 <= r * r
        ys, xs = np.nonzero(m)
        _paste(canvas, cat, m, (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1), rng)
        masks.append(m)
    return Episode(query=ImageInput(q, id=f"two{seed}-query"), query_mask=qm,
                   supports=(ImageInput(canvas, id=f"two{seed}-shot0"),), support_masks=(masks[0] | masks[1],),
                   category=category, kind="object", distractors=(masks[1],), seed=seed)
