"""The bundled example photos for the benchmarks: ``examples/images``, sorted, without the
ground-truth masks stored beside them (``*_mask*``)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "images"


def bundled_photos() -> list[Path]:
    """Paths of the bundled photos, sorted by name (masks left out)."""
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file() and "_mask" not in p.stem)
