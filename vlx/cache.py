"""Where vlx keeps what it computes once: ``$VLX_CACHE``, else ``~/.cache/vlx``."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache folder (not created here): ``$VLX_CACHE``, else ``~/.cache/vlx``."""
    root = os.environ.get("VLX_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "vlx"
