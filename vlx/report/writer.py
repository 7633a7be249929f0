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
from vlx.types import Explanation


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_explanation(expl: Explanation, folder: str | Path, coverage: float = 0.5) -> dict[str, Path]:
    """Write the three files of one explanation into ``folder``; returns their paths by kind."""
    folder = Path(folder)
    paths = {"json": folder / "explanation.json", "map": folder / "map.npy", "html": folder / "report.html"}
    buf = io.BytesIO()
    np.save(buf, expl.attribution.values.astype(np.float32))
    atomic_write(paths["map"], buf.getvalue())
    atomic_write(paths["json"], (json.dumps(expl.to_json(), indent=2) + "\n").encode("utf-8"))
    atomic_write(paths["html"], render_html(expl, coverage).encode("utf-8"))
    return paths
