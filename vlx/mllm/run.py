"""``vlx ask`` on a file: load the image and the MLLM, answer and explain, write the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from vlx.mllm.adapter import MLLM
from vlx.mllm.ask import AskResult, ask
from vlx.registry import MLLM_METHODS
from vlx.types import ImageInput


def ask_file(image: str | Path | ImageInput, question: str, model: str | MLLM = "demo", method: str = "tam",
             out_dir: str | Path = "vlx-ask", device: str = "auto", **options: Any) -> tuple[AskResult, Path]:
    """``vlx ask``: load the image and the MLLM (a spec for ``vlx.mllm.load.load_mllm``, or an
    ``MLLM`` object), answer and explain (``options`` as for ``ask``), and write
    ``out_dir/<image id>/{report.html, answer.json}``. Returns the result and the report's path."""
    from vlx.image import load_image
    from vlx.mllm.load import load_mllm
    from vlx.mllm.report import write_ask_report

    MLLM_METHODS.get(method)
    img = image if isinstance(image, ImageInput) else load_image(image)
    m = model if isinstance(model, MLLM) else load_mllm(model, device)
    result = ask(m, img, question, method, **options)
    return result, write_ask_report(result, Path(out_dir) / img.id)


def summary_lines(result: AskResult) -> list[str]:
    """The human summary of an answer: the answer, then one line per explained token."""
    lines = [f"{result.image.id}: {result.answer}"]
    for t in result.tokens:
        lean = f" | leans on: {', '.join(w for w, _ in t.relevance[:3])}" if t.relevance else ""
        lines.append(f"  {t.text.strip()!r} p={t.probability:.2f}: {t.sentence}{lean}")
        c = t.comparison
        if c is not None:
            lines.append(f"    map {c.verdict}: deletion {c.deletion:.3f} vs {np.mean(c.random_deletion):.3f}, "
                         f"insertion {c.insertion:.3f} vs {np.mean(c.random_insertion):.3f} "
                         f"({len(c.random_deletion)} random maps)")
    return lines
