"""The ``vlx ask`` page, in the design of the explanation report (the same stylesheet, header,
cards, tables and footer): the answer with a chip per explained token that switches the map,
the regions the map falls on, the context words the token leaned on (ARC) as a bar chart, the
map's deletion / insertion next to random maps with a verdict in words, and the timing.

Self-contained (PNGs as data URIs) and rendered with Jinja2 autoescaping, so the question, the
answer and the model's words can never inject markup. ``ask_page_data`` turns an ``AskResult``
into template data (formatting only; it measures nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from vlx.report.html import _env, _points, ramp_css
from vlx.report.images import REGION_COLORS, data_uri, outline_regions, overlay
from vlx.verbalize.format import pct

if TYPE_CHECKING:
    from vlx.mllm.ask import AskResult, TokenExplanation
    from vlx.mllm.metrics import RandomComparison

MLLM_METHOD_NAMES = {"tam": "TAM", "llavacam": "LLaVA-CAM", "attention": "Attention", "rollout": "Attention rollout",
                     "gradxinput": "Gradient × input", "occlusion": "Occlusion"}
DEMO_NOTE = ("The demo model is EfficientNet-Lite0's patch classes read as words by SmolLM2-135M, a composition "
             "never trained as an MLLM: a target for trying vlx, not evidence that a method is faithful.")


def method_name(method: str) -> str:
    """"tam" → "TAM"; "msea(tam)" → "TAM (MSEA)"; unknown names unchanged."""
    if method.startswith("msea(") and method.endswith(")"):
        return f"{method_name(method[5:-1])} (MSEA)"
    return MLLM_METHOD_NAMES.get(method, method)


def render_ask(result: "AskResult", max_side: int = 640) -> str:
    """The page of one ``AskResult`` as one HTML string with everything embedded."""
    from vlx import __version__

    return _env().get_template("ask.html.j2").render(ramp=ramp_css(), version=__version__,
                                                     **ask_page_data(result, max_side))


def ask_page_data(result: "AskResult", max_side: int = 640) -> dict[str, Any]:
    """Template data of the page: header facts, answer pieces (explained ones link to a token
    panel), one panel per explained token, the summary table and the timing."""
    h, w = result.image.size_hw
    explained = {t.index: k for k, t in enumerate(result.tokens)}
    pieces = result.pieces or [t.text for t in result.tokens]
    timing = dict(result.timing_s)
    return {
        "question": result.question, "answer": result.answer, "model": result.model,
        "model_display": "the demo MLLM" if result.model == "demo" else result.model,
        "demo_note": DEMO_NOTE if result.model == "demo" else "",
        "method_display": method_name(result.method or (result.tokens[0].map.method if result.tokens else "")),
        "image": {"id": result.image.id, "width": w, "height": h, "src": data_uri(result.image.pixels, max_side)},
        "pieces": [{"text": p, "lead": p[:len(p) - len(p.lstrip())], "word": p.strip(), "panel": explained.get(i)}
                   for i, p in enumerate(pieces)],
        "n_pieces": len(pieces), "max_new_tokens": result.max_new_tokens, "hit_limit": result.hit_limit,
        "panels": [_panel(result, k, t, max_side) for k, t in enumerate(result.tokens)],
        "measured": any(t.comparison is not None for t in result.tokens),
        "timing": [(k, f"{v:.2f}") for k, v in timing.items() if k != "total"],
        "total_s": f"{timing.get('total', 0.0):.2f}",
    }


def _panel(result: "AskResult", k: int, t: "TokenExplanation", max_side: int) -> dict[str, Any]:
    px = result.image.pixels
    word = t.text.strip() or repr(t.text)
    rel = t.relevance[:8]
    top = max((r for _, r in rel), default=0.0)
    return {
        "k": k, "index": t.index, "word": word, "probability": pct(t.probability),
        "method": method_name(t.map.method), "seconds": f"{t.map.seconds:.2f}", "sentence": t.sentence,
        "map_src": data_uri(overlay(px, t.map.normalized()), max_side),
        "regions_src": data_uri(outline_regions(px, [r.mask for r in t.regions]), max_side) if t.regions else None,
        "regions": [{"n": r.id + 1, "color": REGION_COLORS[r.id % len(REGION_COLORS)], "position": r.position,
                     "mass": pct(r.attribution_mass), "area": pct(r.area_fraction)} for r in t.regions],
        "relevance": [{"word": x or "·", "value": f"{r:.2f}", "width": round(160 * r / top) if top > 0 else 0}
                      for x, r in rel],
        "n_context": len(t.relevance),
        "trust": trust(t.comparison, word, method_name(t.map.method)) if t.comparison is not None else None,
    }


def trust(c: "RandomComparison", word: str, method: str) -> dict[str, Any]:
    """Template data for one token map's measurement against random maps: a verdict sentence,
    one row per curve (this map, the random maps' mean and range, the verdict, the curves as
    SVG points)."""
    rows = []
    for name, value, rnd, curve, rcurves, higher in (
            ("Deletion", c.deletion, c.random_deletion, c.deletion_curve, c.random_deletion_curves, False),
            ("Insertion", c.insertion, c.random_insertion, c.insertion_curve, c.random_insertion_curves, True)):
        mean = float(np.mean(rnd))
        better = value > mean if higher else value < mean
        rows.append({"name": name, "value": f"{value:.3f}", "random": f"{mean:.3f}",
                     "range": f"{min(rnd):.3f}–{max(rnd):.3f}", "arrow": "↑" if higher else "↓",
                     "better": "higher is better" if higher else "lower is better",
                     "verdict": "better than random" if better else "no better than random",
                     "css": "ok" if better else "bad", "better_than_random": better,
                     "points": _points(c.fractions, curve) if curve else "",
                     "random_points": _points(c.fractions, np.mean(rcurves, axis=0).tolist()) if rcurves else ""})
    return {"sentence": verdict_sentence(c, word, method), "rows": rows, "n_random": len(c.random_deletion),
            "steps": len(c.fractions) - 1 if c.fractions else None, "baseline": c.baseline,
            "better_than_random": c.better_than_random, "verdict": c.verdict,
            "css": "ok" if c.better_than_random else "bad" if c.verdict.startswith("no") else "warn"}


def verdict_sentence(c: "RandomComparison", word: str, method: str) -> str:
    """One plain sentence on whether the map beats random maps, with the numbers it rests on."""
    n = len(c.random_deletion)
    maps = f"{n} random map{'s' if n != 1 else ''}"
    dele = (f"deletion AUC {c.deletion:.3f} against {float(np.mean(c.random_deletion)):.3f} for {maps}, "
            f"lower is better")
    ins = f"insertion AUC {c.insertion:.3f} against {float(np.mean(c.random_insertion)):.3f}, higher is better"
    d_ok, i_ok = c.deletion_margin > 0, c.insertion_margin > 0
    if d_ok and i_ok:
        return (f"{method} does better than a random map for “{word}”: removing the pixels it ranks first lowers "
                f"the token's probability faster than removing them in a random order, and restoring them first "
                f"raises it faster ({dele}; {ins}).")
    if not d_ok and not i_ok:
        return (f"{method} does no better than a random map for “{word}”: removing the pixels it ranks first "
                f"lowers the token's probability no faster than removing them in a random order, and restoring "
                f"them first raises it no faster ({dele}; {ins}). Do not read this map as where the answer came "
                f"from.")
    good, bad = ("deletion", "insertion") if d_ok else ("insertion", "deletion")
    return (f"{method} beats a random map for “{word}” on {good} but does no better than random on {bad} "
            f"({dele}; {ins}): read the map with care.")


__all__ = ["render_ask", "ask_page_data", "trust", "verdict_sentence", "method_name"]
