"""A generator of bad and odd inputs for robustness tests: what real folders contain.

Each ``make(kind, folder, seed)`` writes one case and returns a ``Case`` that says whether vlx
must explain it (``ok``) or report it as one error line containing one of ``expect``.

Kinds: zero-byte, truncated, not-an-image, corrupt-header, wrong-extension (a real PNG named
``.jpg``: fine), decompression-bomb (a PNG header claiming 100,000 × 100,000 pixels), odd modes
(``mode-L``, ``mode-LA``, ``mode-P``, ``mode-RGBA``, ``mode-CMYK``, ``mode-1``, ``mode-I16``,
``mode-F``: all fine), unreadable (mode 000: an error, except for root, who can read it anyway;
see ``unreadable_is_enforced``), symlink-loop (two links pointing at each other), dangling-symlink,
dir-loop (a folder link back to its parent: a scan must not recurse forever) and
unicode-name (spaces and non-ASCII in the name: fine).
"""

from __future__ import annotations

import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

GOOD_KINDS = ("wrong-extension", "mode-L", "mode-LA", "mode-P", "mode-RGBA", "mode-CMYK", "mode-1", "mode-I16",
              "mode-F", "unicode-name")
BAD_KINDS = ("zero-byte", "truncated", "not-an-image", "corrupt-header", "decompression-bomb", "unreadable",
             "symlink-loop", "dangling-symlink")
KINDS = BAD_KINDS + GOOD_KINDS + ("dir-loop",)


@dataclass(frozen=True)
class Case:
    """One generated input. ``path``: the file (or folder link) written; ``ok``: vlx must explain
    it; ``expect``: when not ok, the error line must contain one of these; ``scanned``: whether a
    folder scan lists it as an item (a folder link is not an item); ``also``: further items the case creates, with the same outcome."""

    kind: str
    path: Path
    ok: bool
    expect: tuple[str, ...] = ()
    scanned: bool = True
    also: tuple[Path, ...] = ()


def unreadable_is_enforced() -> bool:
    """Whether a mode-000 file is unreadable here (not for root, who bypasses permissions)."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "probe"
        p.write_bytes(b"x")
        p.chmod(0)
        try:
            with open(p, "rb"):
                return False
        except PermissionError:
            return True
        finally:
            p.chmod(0o600)


def random_image(seed: int, size: tuple[int, int] = (48, 64)) -> Image.Image:
    """A smooth random RGB picture (compresses like a photo, not like noise)."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((w, h), Image.BILINEAR)
    noise = rng.integers(0, 24, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(np.asarray(im, dtype=np.uint8) // 2 + noise)


def make(kind: str, folder: str | Path, seed: int = 0) -> Case:
    """Write one case of ``kind`` into ``folder`` (file names carry the seed, so cases coexist)."""
    d = Path(folder)
    d.mkdir(parents=True, exist_ok=True)
    im = random_image(seed)
    stem = f"{kind}-{seed}"
    if kind.startswith("mode-"):
        return _mode(kind, d, stem, im)
    if kind == "zero-byte":
        p = d / f"{stem}.jpg"
        p.write_bytes(b"")
        return Case(kind, p, False, ("empty",))
    if kind == "truncated":
        p = d / f"{stem}.png"
        big = random_image(seed, (160, 200))
        tmp = d / f".{stem}.full.png"
        big.save(tmp)
        data = tmp.read_bytes()
        tmp.unlink()
        cut = int(len(data) * (0.2 + 0.6 * np.random.default_rng(seed).random()))
        p.write_bytes(data[:cut])
        return Case(kind, p, False, ("truncated or corrupt", "not an image"))
    if kind == "not-an-image":
        p = d / f"{stem}.png"
        p.write_text("this is text, not a picture\n" * (1 + seed % 7), encoding="utf-8")
        return Case(kind, p, False, ("not an image",))
    if kind == "corrupt-header":
        p = d / f"{stem}.png"
        p.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes([23 + seed % 200]) * 100)
        return Case(kind, p, False, ("not an image", "truncated or corrupt"))
    if kind == "decompression-bomb":
        p = d / f"{stem}.png"
        p.write_bytes(png_header_only(100_000, 100_000))
        return Case(kind, p, False, ("over the limit", "too large"))
    if kind == "wrong-extension":
        p = d / f"{stem}.jpg"
        im.save(p, format="PNG")
        return Case(kind, p, True)
    if kind == "unicode-name":
        p = d / f"my café 猫 photo {seed} (copy).png"
        im.save(p)
        return Case(kind, p, True)
    if kind == "unreadable":
        p = d / f"{stem}.png"
        im.save(p)
        p.chmod(0)
        enforced = unreadable_is_enforced()
        return Case(kind, p, not enforced, ("permission denied",) if enforced else ())
    if kind == "symlink-loop":
        a, b = d / f"{stem}-a.jpg", d / f"{stem}-b.jpg"
        os.symlink(b.name, a)
        os.symlink(a.name, b)
        return Case(kind, a, False, ("symlink loop",), also=(b,))
    if kind == "dangling-symlink":
        p = d / f"{stem}.jpg"
        os.symlink(f"no-such-{stem}.jpg", p)
        return Case(kind, p, False, ("dangling symlink",))
    if kind == "dir-loop":
        sub = d / f"{stem}-dir"
        sub.mkdir()
        im.save(sub / "inside.png")
        os.symlink("..", sub / "loop")
        return Case(kind, sub / "inside.png", True)
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")


def _mode(kind: str, d: Path, stem: str, im: Image.Image) -> Case:
    mode = kind[len("mode-"):]
    if mode == "I16":
        p = d / f"{stem}.png"
        Image.fromarray((np.asarray(im.convert("L"), dtype=np.uint16) * 257)).save(p)
    elif mode == "F":
        p = d / f"{stem}.tif"
        Image.fromarray(np.asarray(im.convert("L"), dtype=np.float32) / 255.0).save(p)
    else:
        ext = {"CMYK": "jpg", "1": "bmp"}.get(mode, "png")
        p = d / f"{stem}.{ext}"
        im.convert(mode).save(p)
    return Case(kind, p, True)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width × height`` RGB pixels, followed by a tiny IDAT and IEND:
    opening it is cheap, decoding it would need ``3 × width × height`` bytes."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def make_corpus(folder: str | Path, kinds: tuple[str, ...] = KINDS, seed: int = 0) -> list[Case]:
    """One case of each kind in ``folder``."""
    return [make(k, folder, seed) for k in kinds]
