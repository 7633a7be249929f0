"""Image loading: odd-but-valid modes are converted to RGB uint8; bad files raise one-line
InputErrors that name the file and the problem."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vlx.errors import InputError
from vlx.image import from_array, load_image


def _save(tmp_path, name, im, **kw):
    p = tmp_path / name
    im.save(p, **kw)
    return p


def test_rgb_roundtrip(tmp_path, rng):
    a = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    img = load_image(_save(tmp_path, "x.png", Image.fromarray(a)))
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (20, 30, 3)
    assert np.array_equal(img.pixels, a)
    assert img.id == "x"


@pytest.mark.parametrize("mode", ["L", "1", "P", "CMYK", "LA", "I"])
def test_odd_modes_become_rgb(tmp_path, mode, rng):
    a = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    im = Image.fromarray(a).convert(mode)
    ext = "tiff" if mode in ("CMYK", "I") else "png"
    img = load_image(_save(tmp_path, f"x.{ext}", im))
    assert img.pixels.shape == (16, 24, 3) and img.pixels.dtype == np.uint8


def test_rgba_is_composited_on_white(tmp_path):
    a = np.zeros((8, 8, 4), np.uint8)
    a[..., 0] = 255          # red, fully transparent on the left half
    a[:, 4:, 3] = 255
    img = load_image(_save(tmp_path, "x.png", Image.fromarray(a, "RGBA")))
    assert (img.pixels[:, :4] == 255).all()                      # transparent → white
    assert (img.pixels[:, 4:] == [255, 0, 0]).all()               # opaque red stays red


def test_16bit_is_rescaled(tmp_path):
    a = np.full((8, 8), 65535, np.uint16)
    a[:, :4] = 0
    img = load_image(_save(tmp_path, "x.png", Image.fromarray(a)))
    assert img.pixels[:, 4:].min() == 255 and img.pixels[:, :4].max() == 0


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((10, 20, 3), np.uint8)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° on display
    p = tmp_path / "r.jpg"
    im.save(p, exif=exif)
    assert load_image(p).pixels.shape == (20, 10, 3)


def test_missing(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        load_image(tmp_path)


def test_zero_bytes(tmp_path):
    p = tmp_path / "empty.jpg"
    p.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        load_image(p)


def test_not_an_image(tmp_path):
    p = tmp_path / "notes.jpg"
    p.write_text("hello, I am text pretending to be a JPEG\n" * 20)
    with pytest.raises(InputError, match="not an image"):
        load_image(p)


def test_truncated(tmp_path, rng):
    p = _save(tmp_path, "t.jpg", Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)), quality=95)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or corrupt"):
        load_image(p)


def test_pixel_limit(tmp_path):
    p = _save(tmp_path, "big.png", Image.new("RGB", (200, 100)))
    with pytest.raises(InputError, match="over the limit"):
        load_image(p, max_pixels=10_000)
    assert load_image(p, max_pixels=20_000).size_hw == (100, 200)


def test_unreadable(unprivileged):
    """A file its user cannot read: ``load_image`` names it and says "permission denied", and the
    CLI reports that in one line and exits 2. Runs as an unprivileged user (root reads anything)."""
    import sys

    run, folder = unprivileged
    p = _save(folder, "x.png", Image.new("RGB", (4, 4)))
    p.chmod(0)
    code = ("from vlx.image import load_image\nfrom vlx.errors import InputError\n"
            f"try:\n    load_image({str(p)!r})\nexcept InputError as e:\n    print('InputError:', e)\n")
    r = run([sys.executable, "-c", code])
    assert r.returncode == 0 and r.stdout.startswith("InputError:") and "permission" in r.stdout, r
    assert str(p) in r.stdout and r.stdout.count("\n") == 1
    r = run([sys.executable, "-m", "vlx.cli", "explain", str(p), "--out", str(folder / "out")])
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "permission denied" in lines[0] and "x.png" in lines[0], r


def test_errors_are_one_line(tmp_path):
    p = tmp_path / "bad.png"
    p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 50)
    with pytest.raises(InputError) as e:
        load_image(p)
    assert "\n" not in str(e.value) and str(p) in str(e.value)


def test_from_array_accepts_float_gray_and_rgba():
    assert from_array(np.ones((5, 6))).pixels.max() == 255
    assert from_array(np.zeros((5, 6, 4), np.uint8)).pixels.min() == 255   # transparent → white
    with pytest.raises(InputError):
        from_array(np.zeros((5,)))
