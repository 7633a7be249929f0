"""One call from arrays (or files) to an explained few-shot episode, and writing it to disk."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from vlx.errors import InputError
from vlx.fewshot.diagnose import Diagnosis, diagnose
from vlx.fewshot.explain import SupportAttribution, explain_support
from vlx.fewshot.inputs import EpisodeInputs, prepare, query_prediction
from vlx.fewshot.metrics import fewshot_metrics
from vlx.fewshot.protocol import FewShotModel
from vlx.types import MetricResult


@dataclass(frozen=True)
class FewShotResult:
    """An explained episode. ``prediction``: bool ``(H, W)`` query foreground at the query size;
    ``probability``: float32 ``(H, W)`` in ``[0, 1]``; ``timing_s``: seconds per stage."""

    prediction: np.ndarray
    probability: np.ndarray
    attribution: SupportAttribution
    diagnosis: Diagnosis
    metrics: tuple[MetricResult, ...]
    model: str
    timing_s: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "explainer": self.attribution.method, "signed": self.attribution.signed,
                "level_weights": list(self.attribution.level_weights),
                "predicted_area_fraction": float(self.prediction.mean()),
                "diagnosis": self.diagnosis.to_json(), "metrics": [m.to_json() for m in self.metrics],
                "timing_s": dict(self.timing_s)}


def explain_episode(model: FewShotModel, query: np.ndarray, supports: Sequence[np.ndarray],
                    masks: Sequence[np.ndarray], method: str = "affinity-masked",
                    query_mask: np.ndarray | None = None, metrics: bool = True, steps: int = 10,
                    seed: int = 0) -> FewShotResult:
    """Segment the query, explain it over the support pixels, diagnose the shots and (with
    ``metrics``) measure the explanation. Images are RGB uint8 ``(H, W, 3)``; masks bool/float
    ``(H_k, W_k)``; ``query_mask`` (optional ground truth, bool ``(H, W)``) becomes the IoU
    reference, else the model's own prediction is."""
    t = {}
    t0 = time.perf_counter()
    inputs: EpisodeInputs = prepare(model, query, supports, masks)
    with torch.no_grad():
        out = model.forward(inputs.query, inputs.support, inputs.masks)
    pred = query_prediction(out, inputs.query_hw)[0].cpu().numpy()
    prob = torch.nn.functional.interpolate(out.foreground_probability()[:, None], size=inputs.query_hw,
                                           mode="bilinear", align_corners=False)[0, 0].cpu().numpy()
    t["segment"] = time.perf_counter() - t0
    attr = explain_support(model, query, supports, masks, method, seed=seed, inputs=inputs)
    t["explain"] = attr.seconds
    t0 = time.perf_counter()
    diag = diagnose(model, inputs, attr, query_mask)
    t["diagnose"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ms = tuple(fewshot_metrics(model, inputs, attr, query_mask, steps=steps, seed=seed)) if metrics else ()
    t["metrics"] = time.perf_counter() - t0
    return FewShotResult(pred, prob.astype(np.float32), attr, diag, ms, model.name, t)


def load_mask(path: str | os.PathLike, hw: tuple[int, int]) -> np.ndarray:
    """Read a mask file as bool ``(H, W)``: any image mode, grey level ``>= 0.5`` of its maximum
    is foreground. Raises ``InputError`` when it is unreadable, not ``hw`` in size, or empty."""
    from vlx.image import load_image

    img = load_image(path)
    grey = img.pixels.astype(np.float32).mean(2)
    if grey.shape != tuple(hw):
        raise InputError(f"{path}: mask is {grey.shape[1]}x{grey.shape[0]} but its image is {hw[1]}x{hw[0]}; "
                         "give a mask of the image's size.")
    top = float(grey.max())
    if top <= 0:
        raise InputError(f"{path}: the mask is empty (all black); mark the object's pixels.")
    return grey >= 0.5 * top


def write_result(result: FewShotResult, out_dir: str | Path, query: np.ndarray, supports: Sequence[np.ndarray],
                 masks: Sequence[np.ndarray], names: Sequence[str] = (), query_mask: np.ndarray | None = None,
                 title: str = "episode") -> dict[str, Path]:
    """Write ``report.html``, ``result.json``, ``support_maps.npz`` (``shot1``.. float32 maps at
    each support's size) and ``prediction.png`` into ``out_dir``; return their paths."""
    from PIL import Image

    from vlx.fewshot.report import render_report, write_report

    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    html = render_report(query, result.prediction, supports, masks, result.attribution, result.diagnosis,
                         result.metrics, result.model, query_mask, names, title)
    paths = {"report": write_report(d / "report.html", html), "json": d / "result.json",
             "maps": d / "support_maps.npz", "prediction": d / "prediction.png"}
    data = result.to_json()
    data["supports"] = list(names)
    paths["json"].write_text(json.dumps(data, indent=2), encoding="utf-8")
    np.savez_compressed(paths["maps"], **{f"shot{k + 1}": m for k, m in enumerate(result.attribution.maps)})
    Image.fromarray((result.prediction * 255).astype(np.uint8)).save(paths["prediction"])
    return paths


def parse_support(spec: str) -> tuple[Path, Path]:
    """``IMG:MASK`` → two paths (split at the last ``:``); a one-line ``UsageError`` otherwise."""
    from vlx.errors import UsageError

    img, sep, mask = spec.rpartition(":")
    if not sep or not img or not mask:
        raise UsageError(f"--support {spec!r}: give each support as IMG:MASK, e.g. --support cat.jpg:cat_mask.png")
    return Path(img), Path(mask)


def run_files(supports: Sequence[str], query: str | os.PathLike, out_dir: str | os.PathLike,
              method: str = "affinity-masked", query_mask: str | os.PathLike | None = None,
              metrics: bool = True, device: str = "auto", steps: int = 10) -> tuple[FewShotResult, dict[str, Path]]:
    """Files → an explained episode written to ``out_dir`` (what ``vlx fewshot`` runs).
    Bad files, sizes or masks raise ``InputError``; bad options ``UsageError``."""
    from vlx.errors import UsageError
    from vlx.fewshot.explain import FEWSHOT_EXPLAINERS
    from vlx.fewshot.matching import MatchingSegmenter
    from vlx.image import load_image

    if not supports:
        raise UsageError("give at least one --support IMG:MASK.")
    FEWSHOT_EXPLAINERS.get(method)
    pairs = [parse_support(s) for s in supports]
    q = load_image(query)
    imgs = [load_image(p) for p, _ in pairs]
    masks = [load_mask(m, img.size_hw) for (_, m), img in zip(pairs, imgs)]
    gt = load_mask(query_mask, q.size_hw) if query_mask is not None else None
    model = MatchingSegmenter(device=device)
    sup = [i.pixels for i in imgs]
    result = explain_episode(model, q.pixels, sup, masks, method, gt, metrics, steps)
    paths = write_result(result, out_dir, q.pixels, sup, masks, [p.name for p, _ in pairs], gt, q.id)
    return result, paths
