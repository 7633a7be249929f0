"""A self-contained HTML page (or section) for ``vlx ask``: the answer with every explained token
clickable to show its map, the context words it leaned on and the regions in words. PNGs are
embedded as base64; every string goes through Jinja2 autoescaping."""

from __future__ import annotations

import json
from pathlib import Path

from jinja2 import Environment

from vlx.mllm.ask import AskResult
from vlx.report.images import data_uri, overlay

_SECTION = """
<section class="vlx-ask">
  <h2>{{ r.question }}</h2>
  <p class="answer">Answer ({{ r.model }}):
  {% for t in tokens %}<button class="tok" onclick="vlxShow({{ loop.index0 }})">{{ t.text }}</button>{% endfor %}</p>
  <p class="full">{{ r.answer }}</p>
  {% for t in tokens %}
  <figure class="tokmap" id="vlx-tok-{{ loop.index0 }}" {% if not loop.first %}hidden{% endif %}>
    <img src="{{ t.png }}" alt="map of {{ t.text }}">
    <figcaption><b>{{ t.text }}</b> · p = {{ '%.3f'|format(t.probability) }} · {{ t.method }}
      ({{ '%.2f'|format(t.seconds) }} s)<br>{{ t.sentence }}
      {% if t.relevance %}<br>Leans on: {% for w, v in t.relevance %}{{ w }} ({{ '%.2f'|format(v) }})
      {%- if not loop.last %}, {% endif %}{% endfor %}{% endif %}
      {% for m in t.metrics %}<br>{{ m.name }} = {{ '%.3f'|format(m.value) }}
      ({{ 'higher' if m.higher_is_better else 'lower' }} is better){% endfor %}
    </figcaption>
  </figure>
  {% endfor %}
</section>
<script>function vlxShow(i){document.querySelectorAll('.tokmap').forEach(function(f,j){f.hidden=(i!==j);});}</script>
"""

_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>vlx ask: {{ r.question }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}
.tok{margin:2px;padding:2px 6px;border:1px solid #888;border-radius:4px;background:#f4f4f4;cursor:pointer}
.tokmap img{max-width:100%}.full{color:#555}</style></head><body>{{ section }}
<p><small>Maps: normalised per token. Demo model: a composition for integration, not proof of faithfulness.</small></p>
</body></html>"""

_ENV = Environment(autoescape=True)


def ask_section(result: AskResult, max_side: int = 640) -> str:
    """The HTML section (a ``<section>`` and a small script) for one ``AskResult``."""
    from markupsafe import Markup

    tokens = []
    for t in result.tokens:
        png = data_uri(overlay(result.image.pixels, t.map.normalized()), max_side)
        tokens.append({"text": t.text, "probability": t.probability, "method": t.map.method, "seconds": t.map.seconds,
                       "sentence": t.sentence, "relevance": t.relevance[:5], "metrics": t.metrics,
                       "png": Markup(png) if png.startswith("data:image/png;base64,") else ""})
    return _ENV.from_string(_SECTION).render(r=result, tokens=tokens)


def write_ask_report(result: AskResult, out_dir: str | Path) -> Path:
    """Write ``report.html`` (self-contained) and ``answer.json`` to ``out_dir``; returns the
    HTML path."""
    from markupsafe import Markup

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html = _ENV.from_string(_PAGE).render(r=result, section=Markup(ask_section(result)))
    (out / "report.html").write_text(html, encoding="utf-8")
    (out / "answer.json").write_text(json.dumps(result.to_json(), indent=2), encoding="utf-8")
    return out / "report.html"
