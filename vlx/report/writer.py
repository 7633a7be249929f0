"""Write an explanation to a folder: ``explanation.json``, ``map.npy`` (float32 ``(H, W)`` at the
input's resolution) and ``report.html``. Each file is written atomically (temp file + rename),
so a crash never leaves a half-written file."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from vlx.report.html import render_html
from vlx.report.images import jpeg_bytes, overlay
from vlx.report.sections import ReportExtras
from vlx.types import Explanation


def atomic_write(path: Path, data: bytes, durable: bool = True) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.
    ``durable``: ``fsync`` the data before the rename, so a power cut never leaves an empty file
    under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_explanation(expl: Explanation, folder: str | Path, coverage: float = 0.5,
                      extras: ReportExtras | None = None) -> dict[str, Path]:
    """Write the three files of one explanation into ``folder``; returns their paths by kind.
    ``extras``: optional report sections (method comparison, token maps, few-shot episode)."""
    folder = Path(folder)
    paths = {"json": folder / "explanation.json", "map": folder / "map.npy", "html": folder / "report.html"}
    buf = io.BytesIO()
    np.save(buf, expl.attribution.values.astype(np.float32))
    atomic_write(paths["map"], buf.getvalue())
    atomic_write(paths["json"], (json.dumps(expl.to_json(), indent=2) + "\n").encode("utf-8"))
    atomic_write(paths["html"], render_html(expl, coverage, extras).encode("utf-8"))
    return paths


def write_thumbnail(expl: Explanation, path: str | Path, max_side: int = 160) -> Path:
    """Write a small JPEG of the attribution overlay (for batch index pages) atomically."""
    path = Path(path)
    atomic_write(path, jpeg_bytes(overlay(expl.image.pixels, expl.attribution.normalized()), max_side))
    return path
