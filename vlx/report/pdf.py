"""PDF export of the HTML reports, from the same content.

Two engines, tried in this order by ``engine="auto"``:

* ``chromium``: headless Chromium's ``--print-to-pdf`` (Debian: ``apt-get install chromium``;
  also ``google-chrome``; or set ``VLX_CHROMIUM`` to the browser's path). It renders exactly what
  the browser shows, with the report's ``@media print`` styles. Preferred.
* ``weasyprint``: the ``pdf`` extra (``pip install 'vlx[pdf]'``; needs Pango on the system).

Without either, ``PdfUnavailable`` says what to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from vlx.errors import VlxError

if TYPE_CHECKING:
    from vlx.types import Explanation

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
# Quiet, sandbox-free (containers run as root), offline: nothing is fetched or phoned home.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")


class PdfUnavailable(VlxError):
    """No PDF engine on this machine."""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable (``VLX_CHROMIUM`` first), or ``None``."""
    env = os.environ.get("VLX_CHROMIUM")
    if env:
        return env if Path(env).exists() else shutil.which(env)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def run_chromium(args: list[str], timeout: float = 120.0) -> subprocess.CompletedProcess:
    """Run headless Chromium with vlx's flags and a fresh throw-away profile, plus ``args``."""
    exe = find_chromium()
    if exe is None:
        raise PdfUnavailable("Chromium not found; install it (apt-get install chromium) or set VLX_CHROMIUM.")
    with tempfile.TemporaryDirectory(prefix="vlx-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)


def html_to_pdf(html_path: str | Path, pdf_path: str | Path, engine: str = "auto", timeout: float = 120.0) -> Path:
    """Print ``html_path`` to ``pdf_path`` (A4) with ``engine`` (``auto``, ``chromium``,
    ``weasyprint``); returns ``pdf_path``. The PDF is written atomically."""
    src, dst = Path(html_path).resolve(), Path(pdf_path)
    if not src.is_file():
        raise VlxError(f"{src}: no such HTML file to print.")
    if engine not in ("auto", "chromium", "weasyprint"):
        raise VlxError(f"unknown PDF engine {engine!r}; choose auto, chromium or weasyprint.")
    use_chromium = engine == "chromium" or (engine == "auto" and find_chromium() is not None)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    os.close(fd)
    try:
        if use_chromium:
            _chromium_pdf(src, Path(tmp), timeout)
        else:
            _weasyprint_pdf(src, Path(tmp), engine)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dst


def _chromium_pdf(src: Path, dst: Path, timeout: float) -> None:
    p = run_chromium(["--no-pdf-header-footer", "--run-all-compositor-stages-before-draw",
                      f"--print-to-pdf={dst}", src.as_uri()], timeout)
    if p.returncode != 0 or dst.stat().st_size == 0:
        tail = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise VlxError(f"Chromium could not print {src.name} to PDF (exit {p.returncode}): {tail[0]}")


def _weasyprint_pdf(src: Path, dst: Path, engine: str) -> None:
    try:
        import weasyprint
    except (ImportError, OSError) as e:    # OSError: the package is there but Pango is not
        hint = "install Chromium (apt-get install chromium) or the pdf extra (pip install 'vlx[pdf]')"
        what = "weasyprint is not usable" if engine == "weasyprint" else "no PDF engine found"
        raise PdfUnavailable(f"{what} ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); {hint}.") \
            from e
    weasyprint.HTML(filename=str(src)).write_pdf(str(dst))


def write_pdf(expl: "Explanation", pdf_path: str | Path, coverage: float = 0.5, engine: str = "auto") -> Path:
    """Render an ``Explanation``'s report and print it to ``pdf_path``."""
    from vlx.report.html import render_html

    with tempfile.TemporaryDirectory(prefix="vlx-pdf-") as tmp:
        html = Path(tmp) / "report.html"
        html.write_text(render_html(expl, coverage), encoding="utf-8")
        return html_to_pdf(html, pdf_path, engine)
