"""Quantified visual traits of a region, as "Explaining Prototypes" reports them: hue,
saturation, brightness, contrast, texture and shape (elongation, compactness), and a short
phrase that names the striking ones ("elongated, high-contrast, fine texture").

Every trait is a plain float with a documented range, so it can be stored, compared and
checked against the text."""

from __future__ import annotations

import numpy as np

#: Trait names and their ranges, in the order they are stored.
TRAIT_RANGES: dict[str, str] = {
    "hue": "mean hue in degrees, [0, 360); circular mean weighted by saturation",
    "saturation": "mean HSV saturation, [0, 1]",
    "brightness": "mean luminance, [0, 1]",
    "contrast": "standard deviation of luminance, [0, 0.5]",
    "texture": "mean Sobel gradient magnitude of luminance inside the region, [0, ~1.4]",
    "elongation": "major / minor axis length of the region's ellipse, >= 1 (1 = round)",
    "compactness": "4·pi·area / perimeter², (0, ~1] (1 = disk, near 0 = thin or ragged)",
}

# Thresholds for the words, set on skimage's photos (cat fur: texture ~0.2, contrast ~0.15).
ELONGATED, COMPACT, RAGGED = 2.5, 0.6, 0.2
HIGH_CONTRAST, LOW_CONTRAST = 0.2, 0.05
FINE_TEXTURE, SMOOTH = 0.12, 0.03
VIVID, MUTED = 0.55, 0.15

_HUES = ((15, "red"), (40, "orange"), (70, "yellow"), (165, "green"), (195, "teal"), (255, "blue"),
         (290, "purple"), (340, "pink"), (360, "red"))


def hue_name(hue_degrees: float) -> str:
    """The colour word of a hue angle in degrees (any real number; taken modulo 360)."""
    h = float(hue_degrees) % 360.0
    return next(name for edge, name in _HUES if h < edge)


def region_traits(pixels: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Measure the traits of ``TRAIT_RANGES`` for one region.

    Args:
        pixels: RGB uint8 ``(H, W, 3)``.
        mask: boolean ``(H, W)``; must hold at least one pixel.

    Returns:
        ``{trait: value}`` with the keys and ranges of ``TRAIT_RANGES``.
    """
    from skimage.color import rgb2hsv

    if mask.shape != pixels.shape[:2]:
        raise ValueError(f"mask {mask.shape} does not match the image {pixels.shape[:2]}")
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("region_traits needs a mask with at least one pixel")
    # Work on the region's box (plus a 1 px border for gradients and perimeters).
    y0, y1 = max(0, ys.min() - 1), min(mask.shape[0], ys.max() + 2)
    x0, x1 = max(0, xs.min() - 1), min(mask.shape[1], xs.max() + 2)
    box = pixels[y0:y1, x0:x1]
    m = mask[y0:y1, x0:x1].astype(bool)
    rgb = box.astype(np.float32) / 255.0
    lum = rgb @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)
    hsv = rgb2hsv(box)
    h, s = hsv[..., 0][m] * 2 * np.pi, hsv[..., 1][m]
    weight = s if float(s.sum()) > 1e-6 else np.ones_like(s)
    hue = float(np.degrees(np.arctan2((weight * np.sin(h)).sum(), (weight * np.cos(h)).sum())) % 360.0)
    traits = {
        "hue": hue,
        "saturation": float(s.mean()),
        "brightness": float(lum[m].mean()),
        "contrast": float(lum[m].std()),
        "texture": _texture(lum, m),
    }
    traits.update(_shape(m))
    return traits


def _texture(lum: np.ndarray, m: np.ndarray) -> float:
    """Mean Sobel gradient magnitude inside the region, away from its border (so the edge
    between the region and its surroundings does not count as texture)."""
    from scipy import ndimage
    from skimage.filters import sobel

    grad = sobel(lum) * 4.0  # skimage's sobel is normalised by 4; undo it: a 0→1 step gives ~1
    inner = ndimage.binary_erosion(m, iterations=2)
    sel = inner if inner.sum() >= 4 else m
    return float(grad[sel].mean())


def _shape(m: np.ndarray) -> dict[str, float]:
    """Elongation and compactness of the region (all its pixels taken as one shape)."""
    from skimage.measure import regionprops

    props = regionprops(m.astype(np.uint8))[0]
    major, minor = float(props.axis_major_length), float(props.axis_minor_length)
    elongation = max(major, 1.0) / max(minor, 1.0)
    perimeter = float(props.perimeter)
    area = float(props.area)
    compactness = min(1.0, 4 * np.pi * area / perimeter ** 2) if perimeter > 0 else 1.0
    return {"elongation": max(1.0, elongation), "compactness": float(compactness)}


def traits_phrase(traits: dict[str, float]) -> str:
    """A few words for the striking traits, e.g. ``"elongated, high-contrast, fine texture"``;
    ``""`` when nothing stands out. Reads the keys of ``TRAIT_RANGES`` that are present."""
    words: list[str] = []
    if traits.get("elongation", 1.0) >= ELONGATED:
        words.append("elongated")
    elif traits.get("compactness", 0.0) >= COMPACT:
        words.append("compact")
    elif traits.get("compactness", 1.0) < RAGGED:
        words.append("ragged")
    if "saturation" in traits:
        if traits["saturation"] < MUTED:
            words.append("muted")
        else:
            vivid = "vivid " if traits["saturation"] >= VIVID else ""
            words.append(f"{vivid}{hue_name(traits.get('hue', 0.0))} hue")
    if "contrast" in traits:
        if traits["contrast"] >= HIGH_CONTRAST:
            words.append("high-contrast")
        elif traits["contrast"] < LOW_CONTRAST:
            words.append("low-contrast")
    if "texture" in traits:
        if traits["texture"] >= FINE_TEXTURE:
            words.append("fine texture")
        elif traits["texture"] < SMOOTH:
            words.append("smooth")
    return ", ".join(words)
