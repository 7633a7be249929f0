"""``vlx ask``: answer a question about an image with an MLLM and explain each answer token: a map
(any registered method, optionally MSEA-aggregated), the context words it leaned on (ARC),
the regions that carry the map (the superpixel stage) in words, and faithfulness metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from vlx.errors import UsageError
from vlx.mllm.adapter import MLLM
from vlx.mllm.arc import arc_relevance
from vlx.mllm.context import AnswerContext, AnswerMap
from vlx.mllm.methods import MLLM_METHODS, get_mllm_method
from vlx.mllm.metrics import RandomComparison
from vlx.types import AttributionMap, ClassTarget, ImageInput, MetricResult, Region


@dataclass
class TokenExplanation:
    """One explained answer token: its map, probability, context relevance and regions.

    ``relevance``: ``(context word, RBO in [0, 1])`` pairs, most relevant first (empty without
    ARC); ``regions``: superpixel regions of the map (``Region.id`` 0 holds the most);
    ``sentence``: the words that say where the token looked; ``metrics``: deletion / insertion
    (``mllm-deletion``, ``mllm-insertion``, each with the random maps' mean AUC as
    ``details["random"]``) and ``comparison`` the same next to each random map.
    """

    index: int
    token_id: int
    text: str
    probability: float
    map: AnswerMap
    relevance: list[tuple[str, float]] = field(default_factory=list)
    regions: list[Region] = field(default_factory=list)
    sentence: str = ""
    metrics: list[MetricResult] = field(default_factory=list)
    comparison: RandomComparison | None = None

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "token_id": self.token_id, "text": self.text, "probability": self.probability,
                "method": self.map.method, "seconds": self.map.seconds, "sentence": self.sentence,
                "relevance": [{"word": w, "rbo": r} for w, r in self.relevance],
                "regions": [r.to_json() for r in self.regions], "metrics": [m.to_json() for m in self.metrics],
                "better_than_random": None if self.comparison is None else self.comparison.better_than_random,
                "details": _jsonable(self.map.details)}


@dataclass
class AskResult:
    """The answer and its per-token explanations; ``to_json`` is JSON-serialisable.

    ``pieces``: the text of every answer token (explained or not); ``max_new_tokens``: the
    generation limit (an answer that long may be cut off); ``method``: the map method asked for.
    """

    image: ImageInput
    question: str
    model: str
    answer: str
    tokens: list[TokenExplanation]
    timing_s: dict[str, float]
    pieces: list[str] = field(default_factory=list)
    max_new_tokens: int = 0
    method: str = ""

    @property
    def hit_limit(self) -> bool:
        """The answer is as long as the generation limit allows: it may be cut off."""
        return self.max_new_tokens > 0 and len(self.pieces) >= self.max_new_tokens

    def to_json(self) -> dict[str, Any]:
        return {"image": {"id": self.image.id, "path": self.image.path, "height": self.image.size_hw[0],
                          "width": self.image.size_hw[1]},
                "question": self.question, "model": self.model, "answer": self.answer,
                "method": self.method, "pieces": list(self.pieces), "max_new_tokens": self.max_new_tokens,
                "hit_limit": self.hit_limit, "tokens": [t.to_json() for t in self.tokens],
                "timing_s": dict(self.timing_s)}


def ask(model: MLLM, image: ImageInput, question: str, method: str = "tam", tokens: Sequence[int] | None = None,
        msea: bool = False, scales: Sequence[float] = (1.0, 0.75, 0.5), aggregation: str = "mean",
        arc: bool = False, metrics: bool = False, max_new_tokens: int = 16, max_tokens: int = 12,
        regions: bool = True, n_random: int = 3, steps: int = 10, relevance: bool = True,
        **options: Any) -> AskResult:
    """Answer ``question`` about ``image`` and explain answer ``tokens`` (default: every word-like
    token of the answer, at most ``max_tokens``).

    ``method``: a name in ``MLLM_METHODS``; ``msea``: aggregate over ``scales``; ``relevance``:
    the context relevance vector (ARC; read from the cached forward pass, nearly free); ``arc``:
    the same, and for ``tam`` use it to weight the interference;
    ``metrics``: deletion / insertion per token next to ``n_random`` random maps at ``steps``
    steps (``vlx.mllm.metrics.compare_maps_with_random``: ``2 (steps + 1)`` forward passes per
    token plus ``2 (steps + 1) n_random`` shared by all tokens);
    ``options``: passed to the method (e.g. ``layer=`` for llavacam).
    """
    if method not in MLLM_METHODS:
        MLLM_METHODS.get(method)
    if not question.strip():
        raise UsageError("the question is empty; ask something about the image.")
    t0 = time.perf_counter()
    ctx = AnswerContext(model, image, question, max_new_tokens=max_new_tokens)
    t_answer = time.perf_counter() - t0
    words = model.decode_tokens(ctx.answer_ids)
    if tokens is None:
        tokens = [i for i, w in enumerate(words) if any(ch.isalnum() for ch in w)][:max_tokens] or [0]
    bad = [t for t in tokens if not 0 <= t < len(ctx.answer_ids)]
    if bad:
        raise UsageError(f"answer token {bad[0]} does not exist; the answer has {len(ctx.answer_ids)} tokens.")
    tokens = list(tokens)
    if arc and method == "tam":
        options.setdefault("weights", "arc")
    m = get_mllm_method(method, **options)
    t1 = time.perf_counter()
    if msea:
        from vlx.mllm.msea import msea as run_msea

        maps = run_msea(ctx, m, tokens, scales, aggregation)
    else:
        maps = m.explain(ctx, tokens)
    t_maps = time.perf_counter() - t1
    with torch.no_grad():
        probs = ctx.output().logits[0].float().softmax(-1)
    t2 = time.perf_counter()
    comparisons: list[RandomComparison | None] = [None] * len(tokens)
    if metrics:
        from vlx.mllm.metrics import compare_maps_with_random

        comparisons = list(compare_maps_with_random(ctx, maps, n_random=n_random, steps=steps))
    t_metrics = time.perf_counter() - t2
    out, t_regions, t_arc = [], 0.0, 0.0
    for t, amap, comp in zip(tokens, maps, comparisons):
        c = ctx.answer_ids[t]
        te = TokenExplanation(t, c, words[t], float(probs[ctx.position(t), c]), amap, comparison=comp)
        t3 = time.perf_counter()
        if arc or relevance:
            te.relevance = context_relevance(ctx, t)
        t4 = time.perf_counter()
        if regions:
            te.regions, te.sentence = _regions(image, amap, c)
        t_arc, t_regions = t_arc + t4 - t3, t_regions + time.perf_counter() - t4
        if comp is not None:
            te.metrics = list(comp.metrics())
        out.append(te)
    timing = {"answer": t_answer, "maps": t_maps}
    timing.update({k: v for k, v, on in (("context", t_arc, arc or relevance), ("regions", t_regions, regions),
                                         ("metrics", t_metrics, metrics)) if on})
    timing["total"] = time.perf_counter() - t0
    return AskResult(image, question, model.name, "".join(words).strip(), out, timing, list(words), max_new_tokens,
                     m.name if not msea else f"msea({m.name})")


def context_relevance(ctx: AnswerContext, t: int, k: int = 50, p: float = 0.9) -> list[tuple[str, float]]:
    """ARC: ``(context word, RBO)`` for the text context of answer token ``t``, most relevant
    first; RBO in ``[0, 1]`` of top-``k`` next-token rankings."""
    tc = ctx.text_context(t)
    if not len(tc.ids):
        return []
    rel = arc_relevance(ctx.output().logits[0], tc.score_positions, ctx.position(t), k, p)
    words = ctx.model.decode_tokens([int(i) for i in tc.ids])
    pairs = [(w.strip(), float(r)) for w, r in zip(words, rel)]
    return sorted(pairs, key=lambda x: -x[1])


def _regions(image: ImageInput, amap: AnswerMap, token_id: int) -> tuple[list[Region], str]:
    from vlx.regions.superpixels import SuperpixelRegions

    values = np.abs(amap.values) if amap.signed else amap.values
    am = AttributionMap(values.astype(np.float32), amap.raw, amap.method, ClassTarget(token_id, amap.text.strip()))
    regs = SuperpixelRegions(n_segments=32, coverage=0.5, max_regions=3).regions(image, am)
    if not regs:
        return [], f"'{amap.text.strip()}': the map is empty."
    parts = [f"the {r.position} region ({r.attribution_mass:.0%} of the map on {r.area_fraction:.0%} of the image)"
             for r in regs]
    return regs, f"'{amap.text.strip()}' looked mostly at " + "; ".join(parts) + "."


def _jsonable(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: _jsonable(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [_jsonable(v) for v in d]
    if isinstance(d, (np.floating, np.integer)):
        return d.item()
    if isinstance(d, np.ndarray):
        return d.tolist()
    return d
