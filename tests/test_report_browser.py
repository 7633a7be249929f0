"""The reports in a real browser (headless Chromium): every image decodes, the text is there,
the screenshot shows pictures, the index sorts, and the PDF prints. Skipped only where Chromium
is not installed (.ci/run installs Debian's chromium)."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vlx.attribute.base import attribute, get_method
from vlx.batch import run_batch
from vlx.pipeline import Explainer
from vlx.report import FewShotEpisode, ReportExtras, SupportShot, TokenMap, render_comparison, render_html, write_explanation
from vlx.report.pdf import find_chromium, html_to_pdf, run_chromium
from vlx.testing import planted_classifier
from vlx.testing.badfiles import random_image
from vlx.types import Verbalization

needs_chromium = pytest.mark.skipif(find_chromium() is None,
                                    reason="Chromium is not installed (apt-get install chromium; .ci/run installs it)")

# a script-bearing string injected into text fields that reach the page; if it ran, the probe would
# report window.vlxExtra == "pwned"
SCRIPT = "<script>window.vlxExtra = 'pwned';</script>"

PROBE = """<script>
window.addEventListener("load", function () {
  %s
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {w: i.naturalWidth, h: i.naturalHeight, complete: i.complete, alt: i.alt}; });
  var p = document.createElement("pre"); p.id = "vlx-probe";
  p.textContent = JSON.stringify({imgs: imgs, extra: window.vlxExtra || null});
  document.body.appendChild(p);
});
</script>"""


def probe(page: Path, action: str = "") -> tuple[dict, str]:
    """Load a copy of ``page`` (same folder, so relative images resolve) with a script that
    records each image's natural size after load; returns (probe data, DOM text)."""
    copy = page.with_name(".probe-" + page.name)
    copy.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE % action + "</body>"), encoding="utf-8")
    p = run_chromium(["--virtual-time-budget=10000", "--dump-dom", copy.as_uri()], timeout=120)
    dom = p.stdout.decode("utf-8", errors="replace")
    m = re.search(r'<pre id="vlx-probe">(.*?)</pre>', dom, re.S)
    assert m, f"no probe output (exit {p.returncode}): {p.stderr.decode(errors='replace')[-500:]}"
    return json.loads(html.unescape(m.group(1))), dom


def screenshot(page: Path, out: Path, size: str = "1280,1600") -> np.ndarray:
    p = run_chromium([f"--window-size={size}", f"--screenshot={out}", page.as_uri()], timeout=120)
    assert p.returncode == 0 and out.exists(), p.stderr.decode(errors="replace")[-500:]
    return np.asarray(Image.open(out).convert("RGB"), dtype=np.float32)


@pytest.fixture(scope="module")
def report(effnet, chelsea, tmp_path_factory) -> tuple[Path, object]:
    ex = Explainer(effnet, "gradcam")
    e = ex.explain(chelsea)
    alt = Verbalization("The model sees a <b>cat</b> at 99% top-right.", "short", "llm", e.verbalization.facts, False,
                        {"status": "rejected", "issues": ["states 99% as confidence " + SCRIPT], "llm": "smollm2"})
    e = dataclasses.replace(e, alternatives=(alt,))
    maps = {"saliency": attribute(effnet, chelsea, e.target, get_method("saliency"), None)}
    h, w = chelsea.size_hw
    yy, xx = np.mgrid[:h, :w]
    blob = np.exp(-((xx - 150) ** 2 + (yy - 150) ** 2) / 5000.0)
    shot = SupportShot(chelsea.pixels, xx < 200, 0.7, blob, "support <1>")
    extras = ReportExtras(maps=maps, token_maps=(TokenMap("cat", 3, blob, 0.9, (("animal", 0.5),)),),
                          episode=FewShotEpisode(chelsea.pixels, xx < 250, (shot,), 0))
    folder = tmp_path_factory.mktemp("report")
    return write_explanation(e, folder, extras=extras)["html"], e


@needs_chromium
def test_report_images_load_and_text_is_there(report):
    page, e = report
    data, dom = probe(page)
    n_img = page.read_text().count("<img ")
    assert len(data["imgs"]) == n_img >= 3 + len(e.regions) + 2 + 1 + 2
    for img in data["imgs"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
    big = [i for i in data["imgs"] if i["alt"] in ("input image chelsea", "attribution overlay", "regions")]
    assert [(i["w"], i["h"]) for i in big] == [(451, 300)] * 3
    assert html.escape(e.verbalization.text, quote=False) in dom
    assert data["extra"] is None and "&lt;script&gt;window.vlxExtra" in dom      # shown as text, never run
    for needle in ("Regions", "Other wordings", "rejected", "Methods compared", "Saliency", "Answer tokens",
                   "Few-shot episode", "Top predictions", "&lt;b&gt;cat&lt;/b&gt;", "support &lt;1&gt;"):
        assert needle in dom, needle


@needs_chromium
def test_report_screenshot_shows_the_pictures(report, tmp_path):
    page, _ = report
    shot = screenshot(page, tmp_path / "report.png")
    assert shot.shape[1] == 1280
    band = shot[250:650]                         # the row of the three figures
    cols = band.std(axis=0).mean(axis=1)         # per-column variation along the band
    assert (cols > 25).mean() > 0.5, "the figure row looks empty"
    assert len(np.unique(band.reshape(-1, 3).astype(np.uint8), axis=0)) > 5000


@needs_chromium
def test_index_thumbnails_load_and_the_table_sorts(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i in range(4):
        random_image(i, (40, 48)).save(d / f"pic {i}.png")
    (d / "broken.jpg").write_bytes(b"")
    run_batch(d, tmp_path / "out", explainer=Explainer(planted_classifier(size=32)))
    click = ("document.querySelectorAll('th.sortable')[3].click();"   # confidence, ascending
             "window.vlxExtra = Array.prototype.map.call(document.querySelectorAll('#items tbody tr'),"
             " function (r) { return parseFloat(r.cells[4].dataset.v); });")
    data, dom = probe(tmp_path / "out" / "index.html", click)
    assert len(data["imgs"]) == 4 and all(i["w"] > 0 for i in data["imgs"])
    assert data["extra"] == sorted(data["extra"]) and len(data["extra"]) == 4
    assert "broken.jpg" in dom and "empty" in dom


@needs_chromium
def test_pdf_export(report, tmp_path):
    page, _ = report
    pdf = html_to_pdf(page, tmp_path / "report.pdf", engine="chromium")
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 50_000


def test_optional_sections_render_only_when_present(chelsea):
    e = Explainer(planted_classifier(size=32)).explain(chelsea)
    page = render_html(e)
    for absent in ("Other wordings", "Methods compared", "Answer tokens", "Few-shot episode"):
        assert absent not in page


@needs_chromium
def test_comparison_page_loads(tmp_path):
    model = planted_classifier(size=32)
    img = Explainer(model).explain(np.asarray(random_image(3, (64, 64)))).image
    from vlx.types import ClassTarget

    maps = {m: attribute(model, img, ClassTarget(0, "class 0"), get_method(m), model.layer(None)[0]
                         if get_method(m).needs_layer else None) for m in ("gradcam", "saliency", "occlusion")}
    page = tmp_path / "compare.html"
    page.write_text(render_comparison(img, maps), encoding="utf-8")
    data, dom = probe(page)
    assert len(data["imgs"]) == 4 and all(i["w"] == 64 for i in data["imgs"])
    assert "Grad-CAM" in dom and "Saliency" in dom


def test_script_bearing_text_is_escaped_in_every_field(chelsea):
    """Markup in any text that reaches the report (image id, class names, other wordings and their
    issues, token and support labels) arrives escaped: the page holds no script but its own."""
    model = planted_classifier(size=32)
    model.labels[0] = "class " + SCRIPT
    try:
        e = Explainer(model).explain(dataclasses.replace(chelsea, id="cat " + SCRIPT))
    finally:
        model.labels[0] = "class 0"
    alt = Verbalization("Another " + SCRIPT, "short", "llm", e.verbalization.facts, False,
                        {"status": "rejected", "issues": ["bad " + SCRIPT], "llm": "x"})
    e = dataclasses.replace(e, alternatives=(alt,))
    h, w = chelsea.size_hw
    blob = np.ones((h, w))
    extras = ReportExtras(token_maps=(TokenMap("tok " + SCRIPT, 3, blob, 0.9, (("animal", 0.5),)),),
                          episode=FewShotEpisode(chelsea.pixels, blob > 0, (SupportShot(chelsea.pixels, blob > 0, 0.7,
                                                                                         blob, "sup " + SCRIPT),), 0))
    page = render_html(e, extras=extras)
    assert "window.vlxExtra" in page and "<script>window.vlxExtra" not in page
    n = page.count("&lt;script&gt;window.vlxExtra")
    assert n >= 6, n                                  # id, class name, wording, issue, token, support label


@needs_chromium
def test_ask_page_chips_switch_the_map(tmp_path):
    """The ``vlx ask`` page in Chromium: every image decodes, it wears the explain report's design
    (the same header), and clicking the second token's chip shows that token's panel and map and
    hides the first's."""
    from vlx.mllm.ask import ask
    from vlx.mllm.report import write_ask_report
    from vlx.testing.tiny_mllm import PlantedMLLM, planted_image

    res = ask(PlantedMLLM(), planted_image(), "what colour has it? " + SCRIPT, "tam", tokens=[0, 1], arc=True,
              metrics=True, n_random=2, steps=4)
    page = write_ask_report(res, tmp_path)
    state = ("function vlxState() { return {"
             " shown: Array.prototype.filter.call(document.querySelectorAll('section.tokpanel'),"
             "   function (p) { return !p.hidden && p.offsetHeight > 0; }).map(function (p) { return p.id; }),"
             " pressed: Array.prototype.map.call(document.querySelectorAll('button.tokchip'),"
             "   function (c) { return c.getAttribute('aria-pressed'); }),"
             " map: Array.prototype.filter.call(document.querySelectorAll('img.tokmap'),"
             "   function (i) { return i.offsetWidth > 0; }).map(function (i) { return i.alt; }),"
             " header: getComputedStyle(document.querySelector('header.top')).backgroundImage }; }"
             "var before = vlxState(); document.querySelectorAll('button.tokchip')[1].click();"
             "window.vlxExtra = {before: before, after: vlxState()};")
    data, dom = probe(page, state)
    assert len(data["imgs"]) == page.read_text().count("<img ") >= 1 + 2 + 1    # input, two maps, regions
    for img in data["imgs"]:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, img
    before, after = data["extra"]["before"], data["extra"]["after"]
    assert before["shown"] == ["tok-0"] and before["pressed"] == ["true", "false"] and before["map"] == ["map of token red"]
    assert after["shown"] == ["tok-1"] and after["pressed"] == ["false", "true"] and after["map"] == ["map of token ."]
    assert "linear-gradient" in before["header"]                 # the explain report's header
    assert "&lt;script&gt;window.vlxExtra" in dom                  # the question is shown as text, never run
    for needle in ("Context relevance", "How far to trust this map", "no better than random", "All explained tokens"):
        assert needle in dom, needle
