"""Write the ``vlx ask`` page and its data: ``report.html`` (self-contained, in the design of the
explanation report: ``vlx.report.ask``) and ``answer.json``. Both files are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

from vlx.mllm.ask import AskResult


def write_ask_report(result: AskResult, out_dir: str | Path) -> Path:
    """Write ``report.html`` and ``answer.json`` to ``out_dir``; returns the HTML path."""
    from vlx.report.ask import render_ask
    from vlx.report.writer import atomic_write

    out = Path(out_dir)
    atomic_write(out / "report.html", render_ask(result).encode("utf-8"))
    atomic_write(out / "answer.json", (json.dumps(result.to_json(), indent=2) + "\n").encode("utf-8"))
    return out / "report.html"
