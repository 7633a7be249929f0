"""Reports: self-contained HTML, JSON and the map as ``.npy``."""

from vlx.report.html import render_html
from vlx.report.writer import atomic_write, write_explanation

__all__ = ["render_html", "atomic_write", "write_explanation"]
