"""The report's image encoders: PNG is lossless at the size kept, and only the longer side is
capped (checked by decoding with Pillow, not by the encoder's own code)."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

from vlx.report.images import data_uri, png_bytes


def _decode(b: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(b)).convert("RGB"))


def test_png_is_lossless_below_the_cap():
    px = np.random.default_rng(0).integers(0, 256, (37, 53, 3), dtype=np.uint8)
    b = png_bytes(px)
    assert b[:8] == b"\x89PNG\r\n\x1a\n"
    assert np.array_equal(_decode(b), px)
    uri = data_uri(px)
    assert uri.startswith("data:image/png;base64,")
    assert np.array_equal(_decode(base64.b64decode(uri.split(",", 1)[1])), px)


def test_png_caps_the_longer_side_only():
    px = np.zeros((300, 1200, 3), dtype=np.uint8)
    assert _decode(png_bytes(px, max_side=600)).shape == (150, 600, 3)
    assert _decode(png_bytes(px, max_side=None)).shape == (300, 1200, 3)
    assert _decode(png_bytes(px, max_side=1200)).shape == (300, 1200, 3)
