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
from vlx.attribute.base import attribute, get_method, resolve_layers
from vlx.evaluate.text import text_metrics
from vlx.image import from_array, load_image
from vlx.models import DEFAULT_MODEL, ImageClassifier, load_classifier
from vlx.regions.factory import make_refiner, make_segmenter
from vlx.regions.scoring import score_regions
from vlx.describe import make_describer
from vlx.registry import VERBALIZERS
from vlx.models.imagenet_groups import imagenet_group, is_imagenet
from vlx.types import ClassTarget, ContrastTarget, Explanation, ImageInput, Prediction
from vlx.verbalize.facts import FactSheet
from vlx.verbalize.template import TemplateVerbalizer, short_name


class Explainer:
    """Explains predictions of one image classifier.

    Args:
        model: a model spec (``effnet-lite0``, ``hf:<id or folder>``, ...) or a loaded
            ``ImageClassifier``.
        method: a registered attribution method (see ``vlx methods``).
        layer: ``auto``, a dotted path (``blocks.-1.norm1``) or a module name; for layer methods.
        segmenter: a registered segmenter (``superpixels``, ``felzenszwalb``) or a SAM spec
            (``hf:<SAM id or folder>``, ``sam:vit_b=/path/to/checkpoint.pth``).
        refine: ``none``, ``superpixels``, ``felzenszwalb`` or ``sam``: replace the map by its
            region-refined copy (attribution averaged inside segments) before regions are cut.
        shapley: also compute Shapley values with the regions as players (``Region.shapley_value``).
        labels, prompt_template: the label set and prompt (default ``"a photo of a {}."``) of a
            zero-shot model (``clip:hf:<id or folder>``, ``open_clip:<arch>=<weights>``); see
            ``load_classifier``. ``layer`` may be a comma-separated list for CAM methods.
        describer: a describer spec (``offline``, ``clip:hf:<id or folder>``, ``vlm:hf:<id or folder>``,
            ``vlm-outline:hf:<...>``; see ``vlx.describe.spec``), or ``None`` to skip descriptions.
        verbalizer: ``template`` (faithful by construction) or ``llm`` (an LM's text, verified
            against the facts; the template text is kept as an alternative); ``style``: ``short``
            or ``detailed``; ``llm``: the LM for ``llm`` (``smollm2`` or ``hf:<id or folder>``).
        device: ``auto|cpu|cuda|mps``.
        coverage: share of the positive attribution the selected regions must hold, ``(0, 1]``.
        top_k: how many predictions to report.
        method_options, segmenter_options: keyword options for the method and segmenter.
    """

    def __init__(self, model: str | ImageClassifier = DEFAULT_MODEL, method: str = "gradcam", layer: str | None = None,
                 segmenter: str = "superpixels", describer: str | None = "offline", verbalizer: str = "template",
                 style: str = "short", device: str = "auto", coverage: float = 0.5, top_k: int = 5,
                 llm: str = "smollm2",
                 method_options: dict[str, Any] | None = None,
                 segmenter_options: dict[str, Any] | None = None, refine: str = "none",
                 shapley: bool = False, labels: str | list[str] | None = None,
                 prompt_template: str | None = None) -> None:
        t0 = time.perf_counter()
        self.model = model if isinstance(model, ImageClassifier) else load_classifier(
            model, device, labels=labels, prompt_template=prompt_template)
        self.load_seconds = time.perf_counter() - t0
        self.method = get_method(method, **(method_options or {}))
        self.layer = resolve_layers(self.model, layer) if self.method.needs_layer else None
        self.segmenter = make_segmenter(segmenter, coverage, self.model.device, **(segmenter_options or {}))
        self.refiner = make_refiner(refine, self.segmenter)
        self.shapley = shapley
        self.describer = make_describer(describer, self.model.device)
        vcls = VERBALIZERS.get(verbalizer)
        self.verbalizer = vcls(style=style, llm=llm, device=device) if verbalizer == "llm" else vcls(style=style)
        self.template = self.verbalizer if verbalizer == "template" else TemplateVerbalizer(style)
        self.top_k = top_k

    def explain(self, image: ImageInput | str | Path | np.ndarray, target: int | str | None = None,
                contrast: int | str | None = None) -> Explanation:
        """Explain one image. ``target``: a class index or name; ``None`` explains the top class.
        ``contrast``: another class, to explain "target and not contrast" (the logit difference).

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
        if contrast is None:
            tgt = ClassTarget(ti, self.model.label(ti))
        else:
            oi = self.model.class_index(contrast)
            tgt = ContrastTarget(ti, oi, self.model.label(ti), self.model.label(oi))
        score = float(probs[ti])
        timing["predict"] = time.perf_counter() - t

        t = time.perf_counter()
        amap = attribute(self.model, img, tgt, self.method, self.layer)
        timing["attribute"] = time.perf_counter() - t
        if self.refiner.kind != "none":
            t = time.perf_counter()
            amap = self.refiner.refine(img, amap)
            timing["refine"] = time.perf_counter() - t

        t = time.perf_counter()
        regions = self.segmenter.regions(img, amap)
        regions = score_regions(self.model, img, regions, ti, shapley=self.shapley)
        timing["regions"] = time.perf_counter() - t

        if self.describer is not None:
            t = time.perf_counter()
            descs = self.describer.describe(self.model, img, regions, label=short_name(tgt.label))
            regions = [dataclasses.replace(r, description=d) for r, d in zip(regions, descs)]
            timing["describe"] = time.perf_counter() - t

        t = time.perf_counter()
        other = tgt.other if isinstance(tgt, ContrastTarget) else None
        sheet = FactSheet(
            model=self.model.display_name, prediction=prediction, target_index=ti,
            target_label=short_name(tgt.label), target_score=score, method=amap.method, regions=tuple(regions),
            other_index=other, other_label=None if other is None else short_name(self.model.label(other)),
            other_score=None if other is None else float(probs[other]),
            group=imagenet_group(ti) if is_imagenet(self.model.labels) else None, labels=tuple(self.model.labels))
        self.last_sheet = sheet
        verbal = self.verbalizer.verbalize(sheet)
        alternatives = () if self.template is self.verbalizer else (self.template.verbalize(sheet),)
        metrics = tuple(text_metrics(verbal.text, sheet))
        timing["verbalize"] = time.perf_counter() - t
        timing["total"] = sum(timing.values())
        return Explanation(image=img, model=self.model.name, prediction=prediction, target=tgt, target_score=score,
                           attribution=amap, regions=tuple(regions), verbalization=verbal, timing_s=timing,
                           alternatives=alternatives, metrics=metrics)

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
