"""Reports: self-contained HTML (one explanation, a method comparison, a batch index), PDF
(optional, see ``vlx.report.pdf``), JSON and the map as ``.npy``."""

from vlx.report.html import render_comparison, render_html
from vlx.report.index import render_index, write_index
from vlx.report.sections import FewShotEpisode, ReportExtras, SupportShot, TokenMap
from vlx.report.writer import atomic_write, write_explanation, write_thumbnail

__all__ = ["render_html", "render_comparison", "render_index", "write_index", "atomic_write", "write_explanation",
           "write_thumbnail", "ReportExtras", "TokenMap", "FewShotEpisode", "SupportShot"]
