"""The explanation pipeline: predict → attribute → regions → causal check → describe → verbalize.

``Explainer`` loads the model once and explains many images; ``explain`` is the one-call form.
Each image becomes model input once; that tensor feeds the prediction, the attribution and the
causal region scores. ``explain_many`` stacks images into one forward/backward for the
prediction, CAM and gradient methods, and one batched pass for the causal scores.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vlx.attribute.base import get_method, resolve_layers, sampling_info, upsample
from vlx.evaluate.map_check import SENTENCE_FRACTION, MapCheck, measure_map
from vlx.config import DEFAULT_MODEL, ExplainConfig, check_fields
from vlx.image import from_array, load_image
from vlx.models import ImageClassifier, load_classifier
from vlx.models.imagenet_groups import imagenet_group, is_imagenet
from vlx.registry import SEGMENTERS, VERBALIZERS, check_options
from vlx.regions.causal import blurred_input, composite_probs, soft_masks
from vlx.regions.factory import make_refiner, make_segmenter
from vlx.types import (AttributionMap, ClassTarget, ContrastTarget, Explanation, ImageInput, MetricResult,
                       Prediction)
from vlx.verbalize.facts import FactSheet, MapFacts

ImageLike = ImageInput | str | Path | np.ndarray
ClassSpec = int | str | None


class Explainer:
    """Explains predictions of one image classifier.

    ``Explainer(config)`` with an ``ExplainConfig``, or ``Explainer(model, method, **options)``
    with the config's fields as keyword options (``layer``, ``segmenter``, ``refine``,
    ``shapley``, ``labels``, ``prompt_template``, ``describer``, ``verbalizer``, ``style``,
    ``llm``, ``device``, ``coverage``, ``top_k``, ``metrics``, ``method_options``, ``segmenter_options``; see
    ``vlx.config.ExplainConfig``). ``model`` may also be a loaded ``ImageClassifier``; then
    ``config`` (keyword) may still give the other options. An unknown option is a one-line
    ``UsageError``.
    """

    def __init__(self, model: str | ImageClassifier | ExplainConfig = DEFAULT_MODEL, method: str | None = None, *,
                 config: ExplainConfig | None = None, **options: Any) -> None:
        if isinstance(model, ExplainConfig):
            config, model = model, model.model
        check_fields(options)
        changes = {**options, **({"method": method} if method is not None else {})}
        if isinstance(model, str):
            changes["model"] = model
        cfg = (config or ExplainConfig()).replace(**changes)
        t0 = time.perf_counter()
        self.model = model if isinstance(model, ImageClassifier) else load_classifier(
            cfg.model, cfg.device, labels=cfg.labels, prompt_template=cfg.prompt_template)
        self.load_seconds = time.perf_counter() - t0
        if isinstance(model, ImageClassifier):
            cfg = cfg.replace(model=model.name)
        if cfg.method == "auto":
            cfg = cfg.replace(method=self.model.default_method)
        self.config = cfg.check()
        self.method = get_method(cfg.method, **cfg.method_options)
        self.layer = resolve_layers(self.model, cfg.layer, cfg.method) if self.method.needs_layer else None
        self.method.check_layer(self.layer)
        if cfg.segmenter in SEGMENTERS and cfg.segmenter != "sam":
            check_options(SEGMENTERS.get(cfg.segmenter), cfg.segmenter_options, f"segmenter {cfg.segmenter!r}")
        self.segmenter = make_segmenter(cfg.segmenter, cfg.coverage, self.model.device, **cfg.segmenter_options)
        self.refiner = make_refiner(cfg.refine, self.segmenter)
        self.shapley = cfg.shapley
        from vlx.describe.spec import make_describer

        self.describer = make_describer(cfg.describer, self.model.device)
        vcls = VERBALIZERS.get(cfg.verbalizer)
        self.verbalizer = vcls(style=cfg.style, llm=cfg.llm, device=cfg.device) if cfg.verbalizer == "llm" \
            else vcls(style=cfg.style)
        template = VERBALIZERS.get("template")
        self.template = self.verbalizer if isinstance(self.verbalizer, template) else template(cfg.style)
        self.top_k = cfg.top_k
        self.measure = cfg.metrics
        self._sanity: MetricResult | None = None

    def explain(self, image: ImageLike, target: ClassSpec = None, contrast: ClassSpec = None) -> Explanation:
        """Explain one image. ``target``: a class index or name; ``None`` explains the top class.
        ``contrast``: another class, to explain "target and not contrast" (the logit difference).

        Returns an ``Explanation`` whose map is at the image's resolution.
        """
        return self.explain_many([image], target, contrast)[0]

    def explain_many(self, images: Sequence[ImageLike], target: ClassSpec | Sequence[ClassSpec] = None,
                     contrast: ClassSpec | Sequence[ClassSpec] = None) -> list[Explanation]:
        """Explain several images; the same results as ``explain`` on each, within float tolerance.

        Images of equal model input size are stacked: one forward pass for the predictions, one
        forward/backward for CAM and gradient methods (other methods run per image), and one
        batched pass over every image's causal composites. ``target`` / ``contrast``: one class
        for all images or one per image (``None``: the top class / no contrast).
        """
        imgs = [_as_image(i) for i in images]
        targets = _per_image(target, len(imgs), "target")
        contrasts = _per_image(contrast, len(imgs), "contrast")
        out: list[Explanation | None] = [None] * len(imgs)
        t = time.perf_counter()
        xs = [self.model.to_input(img) for img in imgs]
        convert = (time.perf_counter() - t) / max(1, len(imgs))
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, x in enumerate(xs):
            groups.setdefault(tuple(x.shape[1:]), []).append(i)
        for idx in groups.values():
            x = torch.cat([xs[i] for i in idx])
            done = self._explain_group([imgs[i] for i in idx], x, [targets[i] for i in idx],
                                       [contrasts[i] for i in idx], convert)
            for i, e in zip(idx, done):
                out[i] = e
        return [e for e in out if e is not None]

    # -- stages, each over a group of images stacked into x (B, 3, h, w) -------------------------------
    def _explain_group(self, imgs: list[ImageInput], x: torch.Tensor, targets: list[ClassSpec],
                       contrasts: list[ClassSpec], convert: float) -> list[Explanation]:
        n = len(imgs)
        timing: list[dict[str, float]] = [{} for _ in imgs]

        t = time.perf_counter()
        probs = self.model.probabilities(x).cpu()
        preds, tgts = [], []
        for i in range(n):
            k = min(self.top_k, probs.shape[1])
            top = probs[i].topk(k)
            idx = tuple(int(j) for j in top.indices)
            preds.append(Prediction(idx, tuple(self.model.label(j) for j in idx), tuple(float(s) for s in top.values)))
            ti = idx[0] if targets[i] is None else self.model.class_index(targets[i])
            if contrasts[i] is None:
                tgts.append(ClassTarget(ti, self.model.label(ti)))
            else:
                oi = self.model.class_index(contrasts[i])
                tgts.append(ContrastTarget(ti, oi, self.model.label(ti), self.model.label(oi)))
        _share(timing, "predict", time.perf_counter() - t, convert)

        t = time.perf_counter()
        amaps = self._attribute(imgs, x, tgts)
        _share(timing, "attribute", time.perf_counter() - t)
        if self.refiner.kind != "none":
            for i in range(n):
                t = time.perf_counter()
                amaps[i] = self.refiner.refine(imgs[i], amaps[i])
                timing[i]["refine"] = time.perf_counter() - t

        regions = []
        for i in range(n):
            t = time.perf_counter()
            regions.append(self.segmenter.regions(imgs[i], amaps[i]))
            timing[i]["regions"] = time.perf_counter() - t
        t = time.perf_counter()
        base = torch.cat([blurred_input(x[i:i + 1], img.size_hw) for i, img in enumerate(imgs)])
        regions = self._causal(imgs, x, base, regions, [tg.primary for tg in tgts])
        _share(timing, "regions", time.perf_counter() - t)

        checks: list[tuple[MapCheck | None, MetricResult | None]] = [(None, None)] * n
        if self.measure:
            for i in range(n):
                t = time.perf_counter()
                checks[i] = self._measure(imgs[i], x[i:i + 1], base[i:i + 1], amaps[i], tgts[i].primary)
                timing[i]["metrics"] = time.perf_counter() - t
        return [self._words(imgs[i], probs[i], preds[i], tgts[i], amaps[i], regions[i], timing[i], *checks[i])
                for i in range(n)]

    def _measure(self, img: ImageInput, x: torch.Tensor, base: torch.Tensor, amap: AttributionMap, target: int
                 ) -> tuple[MapCheck, MetricResult]:
        """The map's deletion / insertion next to random maps (``vlx.evaluate.map_check``) and the
        model + method sanity check (computed on the first image, cached on disk)."""
        from vlx.evaluate.sanity_cache import cached_sanity

        raw_shape = amap.raw.shape if amap.raw.ndim == 2 else None       # random maps at the map's resolution
        check = measure_map(self.model, x, base, amap.values, target, raw_shape=raw_shape)
        if self._sanity is None:
            self._sanity = cached_sanity(self.model, img, amap, self.method, self.config.method_options, target)
        return check, self._sanity

    def _attribute(self, imgs: list[ImageInput], x: torch.Tensor, tgts: list[ClassTarget | ContrastTarget]
                   ) -> list[AttributionMap]:
        """Maps at each image's resolution. CAM and gradient methods get the whole stack with one
        target per sample; other (sampling) methods run image by image, so their seeded samples
        match a single-image run."""
        from vlx.attribute.cam import CAMBase
        from vlx.attribute.gradient import GradientBase

        t0 = time.perf_counter()
        same_kind = len({type(tg) for tg in tgts}) == 1
        if len(imgs) > 1 and same_kind and isinstance(self.method, (CAMBase, GradientBase)):
            raw = self.method.attribute(self.model, x, _stacked(tgts), layer=self.layer).detach()
            rows = [raw[i:i + 1] for i in range(len(imgs))]
            infos = [{} for _ in imgs]
        else:
            rows, infos = [], []
            for i, tg in enumerate(tgts):
                rows.append(self.method.attribute(self.model, x[i:i + 1], tg, layer=self.layer).detach())
                infos.append(sampling_info(self.method))
        seconds = (time.perf_counter() - t0) / len(imgs)
        return [AttributionMap(values=upsample(r, img.size_hw)[0].float().cpu().numpy().astype(np.float32),
                               raw=r[0].float().cpu().numpy().astype(np.float32), method=self.method.name,
                               target=tg, layer=self.layer, signed=self.method.signed, seconds=seconds,
                               sampling=info)
                for r, img, tg, info in zip(rows, imgs, tgts, infos)]

    def _causal(self, imgs: list[ImageInput], x: torch.Tensor, base: torch.Tensor, regions: list[list],
                target_index: list[int]) -> list[list]:
        """Fill ``score_after_removal`` / ``score_when_kept`` (and Shapley values) of every image's
        regions: all composites of all images in one batched pass over the stacked inputs. The
        "removed" content ``base`` is the model input blurred (``blurred_input``), not a second
        conversion of a blurred full-resolution copy."""
        size = tuple(x.shape[-2:])
        masks, rows, tix = [], [], []
        for i, regs in enumerate(regions):
            if regs:
                m = soft_masks([r.mask for r in regs], size, x.device)
                masks += [m, 1 - m]
                rows += [i] * (2 * len(regs))
                tix += [target_index[i]] * (2 * len(regs))
        if not masks:
            return regions
        sel = torch.tensor(rows, device=x.device)
        p = composite_probs(self.model, x[sel], base[sel], torch.cat(masks), tix)
        out, at = [], 0
        for i, regs in enumerate(regions):
            k = len(regs)
            after, kept = p[at:at + k], p[at + k:at + 2 * k]
            at += 2 * k
            phi = [None] * k
            if self.shapley and k:
                from vlx.regions.scoring import shapley_values

                phi = [float(v) for v in shapley_values(self.model, imgs[i], [r.mask for r in regs], target_index[i],
                                                        x=x[i:i + 1], baseline=base[i:i + 1])]
            out.append([dataclasses.replace(r, score_after_removal=float(a), score_when_kept=float(kk), shapley_value=s)
                        for r, a, kk, s in zip(regs, after, kept, phi)])
        return out

    def _words(self, img: ImageInput, probs: torch.Tensor, prediction: Prediction,
               tgt: ClassTarget | ContrastTarget, amap: AttributionMap, regions: list, timing: dict[str, float],
               check: MapCheck | None = None, sanity: MetricResult | None = None) -> Explanation:
        """Describe the regions, verbalize the facts and measure the text, for one image."""
        from vlx.evaluate.text import text_metrics
        from vlx.verbalize.template import short_name

        ti = tgt.primary
        if self.describer is not None:
            t = time.perf_counter()
            descs = self.describer.describe(self.model, img, regions, label=short_name(tgt.label))
            regions = [dataclasses.replace(r, description=d) for r, d in zip(regions, descs)]
            timing["describe"] = time.perf_counter() - t

        t = time.perf_counter()
        other = tgt.other if isinstance(tgt, ContrastTarget) else None
        score = float(probs[ti])
        sheet = FactSheet(
            model=self.model.display_name, prediction=prediction, target_index=ti,
            target_label=short_name(tgt.label), target_score=score, method=amap.method, regions=tuple(regions),
            other_index=other, other_label=None if other is None else short_name(self.model.label(other)),
            other_score=None if other is None else float(probs[other]),
            group=imagenet_group(ti) if is_imagenet(self.model.labels) else None, labels=tuple(self.model.labels),
            map_check=None if check is None else MapFacts(*check.after_deleting(SENTENCE_FRACTION)))
        self.last_sheet = sheet
        verbal = self.verbalizer.verbalize(sheet)
        alternatives = () if self.template is self.verbalizer else (self.template.verbalize(sheet),)
        metrics = tuple(text_metrics(verbal.text, sheet))
        if check is not None:
            metrics += check.metrics()
        if sanity is not None:
            metrics += (sanity,)
        timing["verbalize"] = time.perf_counter() - t
        timing["total"] = sum(timing.values())
        return Explanation(image=img, model=self.model.name, prediction=prediction, target=tgt, target_score=score,
                           attribution=amap, regions=tuple(regions), verbalization=verbal, timing_s=timing,
                           alternatives=alternatives, metrics=metrics)


def explain(image: ImageLike, model: str | ImageClassifier = DEFAULT_MODEL, method: str = "auto",
            target: int | str | None = None, **options: Any) -> Explanation:
    """One-call form: ``vlx.explain("cat.jpg")`` explains the embedded default's top class with the
    model's default method (``auto``)."""
    return Explainer(model, method, **options).explain(image, target)


def _as_image(image: ImageLike) -> ImageInput:
    if isinstance(image, ImageInput):
        return image
    if isinstance(image, np.ndarray):
        return from_array(image)
    return load_image(image)


def _per_image(spec: ClassSpec | Sequence[ClassSpec], n: int, what: str) -> list[ClassSpec]:
    if spec is None or isinstance(spec, (int, str)):
        return [spec] * n
    specs = list(spec)
    if len(specs) != n:
        raise ValueError(f"{what} has {len(specs)} entries for {n} images")
    return specs


def _stacked(tgts: list[ClassTarget | ContrastTarget]) -> ClassTarget | ContrastTarget:
    """One target with a per-sample index (and contrast class) for a stack of images."""
    if all(isinstance(t, ClassTarget) for t in tgts):
        return ClassTarget(tuple(t.index for t in tgts), tgts[0].label)
    return ContrastTarget(tuple(t.index for t in tgts), tuple(t.other for t in tgts), tgts[0].label,
                          tgts[0].other_label)


def _share(timing: list[dict[str, float]], stage: str, seconds: float, extra: float = 0.0) -> None:
    """Split a stage's time over the images it ran for."""
    for t in timing:
        t[stage] = t.get(stage, 0.0) + seconds / len(timing) + extra
