"""Reading images: every odd-but-valid mode becomes RGB uint8 once, every bad file a one-line
error (InputError) that says what is wrong."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from vlx.errors import InputError
from vlx.types import ImageInput

DEFAULT_MAX_PIXELS = 80_000_000


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInput:
    """Read an image file as RGB uint8 ``(H, W, 3)``.

    Grayscale, RGBA/LA (composited on white), palette, 16-bit and float, CMYK and bilevel images
    are converted; EXIF orientation is applied. Raises ``InputError`` with one line for a
    missing path, a directory, an empty file, a file that is not an image, a truncated or
    corrupt image, or one with more than ``max_pixels`` pixels.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file; check the path.")
    if p.is_dir():
        raise InputError(f"{p}: is a directory; pass image files (e.g. {p}/*.jpg).")
    if not os.access(p, os.R_OK):
        raise InputError(f"{p}: permission denied; make the file readable.")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: the file is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                w, h = im.size
                if w * h > max_pixels:
                    raise InputError(
                        f"{p}: {w}x{h} is {w * h:,} pixels, over the limit of {max_pixels:,}; "
                        "downscale it or raise --max-pixels."
                    )
                im.load()
                im = ImageOps.exif_transpose(im)
                pixels = to_rgb_array(im)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise InputError(f"{p}: image too large ({e}); downscale it or raise --max-pixels.") from e
    except UnidentifiedImageError as e:
        raise InputError(f"{p}: not an image file vlx can read (PIL does not recognise it).") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InputError(f"{p}: the image is truncated or corrupt ({e}).") from e
    return ImageInput(pixels=pixels, path=str(p), id=p.stem or "image")


def to_rgb_array(im: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to RGB uint8 ``(H, W, 3)``.

    Alpha is composited onto white; 16-bit and float images are rescaled by their range.
    """
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        if mode.startswith("I;16") or (mode == "I" and hi > 255):
            scale = 65535.0 if hi > 255 else 255.0
            g = np.clip(a / scale * 255.0, 0, 255)
        elif mode == "F" and hi <= 1.0 and lo >= 0.0:
            g = a * 255.0
        else:
            g = (a - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(a)
        g = g.round().astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(background, rgba)
    rgb = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def from_array(pixels: np.ndarray, id: str = "image") -> ImageInput:
    """Wrap an in-memory array: uint8 or float in ``[0, 1]``, ``(H, W)``, ``(H, W, 1|3|4)``."""
    a = np.asarray(pixels)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise InputError(f"expected an image array of shape (H, W[, 1|3|4]); got {a.shape}.")
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and a.max() <= 1.0:
            a = a * 255.0
        a = np.clip(a, 0, 255).round().astype(np.uint8)
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3] * alpha + 255.0 * (1 - alpha)).round().astype(np.uint8)
    return ImageInput(pixels=np.ascontiguousarray(a), id=id)
