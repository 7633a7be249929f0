"""The explanation pipeline: predict → attribute → regions → causal check → describe → verbalize.

``Explainer`` loads the model once and explains many images; ``explain`` is the one-call form.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import vlx.attribute  # noqa: F401  (registers methods)
import vlx.describe  # noqa: F401
import vlx.regions  # noqa: F401
import vlx.verbalize  # noqa: F401
from vlx.attribute.base import attribute, get_method
from vlx.image import from_array, load_image
from vlx.models import DEFAULT_MODEL, ImageClassifier, load_classifier
from vlx.regions.causal import removal_scores
from vlx.registry import DESCRIBERS, SEGMENTERS, VERBALIZERS
from vlx.types import ClassTarget, Explanation, ImageInput, Prediction


class Explainer:
    """Explains predictions of one image classifier.

    Args:
        model: a model spec (``effnet-lite0``, ``hf:<id or folder>``, ...) or a loaded
            ``ImageClassifier``.
        method: a registered attribution method (see ``vlx methods``).
        layer: ``auto``, a dotted path (``blocks.-1.norm1``) or a module name; for layer methods.
        segmenter: a registered segmenter (``superpixels``).
        describer: a registered describer (``offline``), or ``None`` to skip descriptions.
        verbalizer: a registered verbalizer (``template``); ``style``: ``short`` or ``detailed``.
        device: ``auto|cpu|cuda|mps``.
        coverage: share of the positive attribution the selected regions must hold, ``(0, 1]``.
        top_k: how many predictions to report.
        method_options, segmenter_options: keyword options for the method and segmenter.
    """

    def __init__(self, model: str | ImageClassifier = DEFAULT_MODEL, method: str = "gradcam", layer: str | None = None,
                 segmenter: str = "superpixels", describer: str | None = "offline", verbalizer: str = "template",
                 style: str = "short", device: str = "auto", coverage: float = 0.5, top_k: int = 5,
                 method_options: dict[str, Any] | None = None,
                 segmenter_options: dict[str, Any] | None = None) -> None:
        t0 = time.perf_counter()
        self.model = model if isinstance(model, ImageClassifier) else load_classifier(model, device)
        self.load_seconds = time.perf_counter() - t0
        self.method = get_method(method, **(method_options or {}))
        self.layer = self.model.layer(layer)[0] if self.method.needs_layer else None
        self.segmenter = SEGMENTERS.get(segmenter)(coverage=coverage, **(segmenter_options or {}))
        self.describer = DESCRIBERS.get(describer)() if describer else None
        self.verbalizer = VERBALIZERS.get(verbalizer)(style=style)
        self.top_k = top_k

    def explain(self, image: ImageInput | str | Path | np.ndarray, target: int | str | None = None) -> Explanation:
        """Explain one image. ``target``: a class index or name; ``None`` explains the top class.

        Returns an ``Explanation`` whose map is at the image's resolution.
        """
        img = _as_image(image)
        timing: dict[str, float] = {}
        t = time.perf_counter()
        probs = self._probabilities(img)
        k = min(self.top_k, probs.numel())
        top = probs.topk(k)
        idx = tuple(int(i) for i in top.indices)
        prediction = Prediction(idx, tuple(self.model.label(i) for i in idx), tuple(float(s) for s in top.values))
        ti = idx[0] if target is None else self.model.class_index(target)
        tgt = ClassTarget(ti, self.model.label(ti))
        score = float(probs[ti])
        timing["predict"] = time.perf_counter() - t

        t = time.perf_counter()
        amap = attribute(self.model, img, tgt, self.method, self.layer)
        timing["attribute"] = time.perf_counter() - t

        t = time.perf_counter()
        regions = self.segmenter.regions(img, amap)
        after = removal_scores(self.model, img, [r.mask for r in regions], ti)
        regions = [dataclasses.replace(r, score_after_removal=a) for r, a in zip(regions, after)]
        timing["regions"] = time.perf_counter() - t

        if self.describer is not None:
            t = time.perf_counter()
            descs = self.describer.describe(self.model, img, regions)
            regions = [dataclasses.replace(r, description=d) for r, d in zip(regions, descs)]
            timing["describe"] = time.perf_counter() - t

        t = time.perf_counter()
        verbal = self.verbalizer.verbalize(self.model.display_name, prediction, ti, tgt.label, score,
                                           amap.method, regions)
        timing["verbalize"] = time.perf_counter() - t
        timing["total"] = sum(timing.values())
        return Explanation(image=img, model=self.model.name, prediction=prediction, target=tgt, target_score=score,
                           attribution=amap, regions=tuple(regions), verbalization=verbal, timing_s=timing)

    @torch.no_grad()
    def _probabilities(self, img: ImageInput) -> torch.Tensor:
        return self.model.logits(self.model.to_input(img)).float().softmax(-1)[0].cpu()


def explain(image: ImageInput | str | Path | np.ndarray, model: str | ImageClassifier = DEFAULT_MODEL,
            method: str = "gradcam", target: int | str | None = None, **options: Any) -> Explanation:
    """One-call form: ``vlx.explain("cat.jpg")`` explains the embedded default's top class."""
    return Explainer(model, method, **options).explain(image, target)


def _as_image(image: ImageInput | str | Path | np.ndarray) -> ImageInput:
    if isinstance(image, ImageInput):
        return image
    if isinstance(image, np.ndarray):
        return from_array(image)
    return load_image(image)
