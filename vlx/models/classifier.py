"""The image-classifier adapter: one object that turns images into tensors, tensors into logits,
and knows which layer to explain, so that methods never see model-specific details."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vlx.device import default_batch_size, fast_layout
from vlx.errors import UsageError
from vlx.models.layers import find_default_layer, resolve_layer
from vlx.types import ImageInput, Prediction


@dataclass
class Preprocess:
    """Resize the whole image to ``size`` (no crop, so maps stay aligned with the input), then
    ``(x * scale - mean) / std`` per channel, with ``x`` in ``[0, 1]``."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    scale: float = 1.0

    def __call__(self, pixels: np.ndarray | Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
        """RGB uint8 ``(H, W, 3)`` (or a list of them) → float ``(B, 3, h, w)`` on ``device``."""
        arrays = [pixels] if isinstance(pixels, np.ndarray) and pixels.ndim == 3 else list(pixels)
        out = []
        for a in arrays:
            t = torch.from_numpy(np.array(a, dtype=np.uint8, copy=True)).to(device).permute(2, 0, 1)[None].float() / 255.0
            out.append(F.interpolate(t, size=self.size, mode="bilinear", align_corners=False, antialias=True))
        x = torch.cat(out) * self.scale
        mean = torch.tensor(self.mean, device=device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, device=device).view(1, 3, 1, 1)
        return (x - mean) / std


class ImageClassifier:
    """A classifier behind one interface.

    Attributes:
        module: the ``nn.Module`` (in eval mode, on ``device``).
        name: the spec it was loaded from (``effnet-lite0``, ``hf:...``).
        display_name: a name for text ("EfficientNet-Lite0").
        labels: class names, index → name.
        preprocess: images → model input.
        default_layer: dotted path of the layer CAM methods use when none is given.
        default_method: the attribution method ``vlx explain`` uses when none is given (``--method
            auto``): ``gradcam`` unless the adapter has evidence for another.
        method_layers: layer specs for methods that need their own when the layer is ``auto``
            (``{"fusedcam": "_bn1,_blocks.10"}``); other methods use ``default_layer``.
    """

    def __init__(self, module: nn.Module, name: str, display_name: str, labels: Sequence[str],
                 preprocess: Preprocess, device: torch.device, default_layer: str | None = None,
                 default_method: str = "gradcam", method_layers: dict[str, str] | None = None) -> None:
        self.module = fast_layout(module.eval().to(device), device)
        self.name = name
        self.display_name = display_name
        self.labels = list(labels)
        self.preprocess = preprocess
        self.device = device
        self._default_layer = default_layer
        self.default_method = default_method
        self.method_layers = dict(method_layers or {})
        self.batch_size = default_batch_size(device)   # inputs per forward pass when a caller gives none

    # -- model space -------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        return self.preprocess.size

    def to_input(self, images: ImageInput | np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Images (RGB uint8) → model input ``(B, 3, h, w)`` on the model's device."""
        if isinstance(images, ImageInput):
            images = images.pixels
        return self.preprocess(images, self.device)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Model input ``(B, 3, h, w)`` → logits ``(B, C)``, unwrapping tuples and ModelOutputs."""
        return unwrap_logits(self.module(x))

    @torch.no_grad()
    def predict(self, image: ImageInput, k: int = 5) -> Prediction:
        """Top-k classes with softmax probabilities for one image."""
        p = self.logits(self.to_input(image)).float().softmax(-1)[0]
        k = min(k, p.numel())
        top = p.topk(k)
        idx = [int(i) for i in top.indices]
        return Prediction(tuple(idx), tuple(self.label(i) for i in idx), tuple(float(s) for s in top.values))

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        """Softmax probabilities ``(B, C)`` for model inputs, in chunks of ``batch_size``
        (default ``self.batch_size``)."""
        bs = batch_size or self.batch_size
        return torch.cat([self.logits(x[i:i + bs]).float().softmax(-1) for i in range(0, x.shape[0], bs)])

    # -- labels --------------------------------------------------------------------------------
    def label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else f"class {index}"

    def short_label(self, index: int) -> str:
        """The first synonym of a label ("tabby, tabby cat" → "tabby")."""
        return self.label(index).split(",")[0].strip()

    def class_index(self, spec: str | int) -> int:
        """A class index from an int, a digit string, or a class name (case-insensitive; a label's
        comma-separated synonyms count; a unique substring is accepted)."""
        n = len(self.labels)
        if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().lstrip("-").isdigit()):
            i = int(spec)
            if not 0 <= i < n:
                raise UsageError(f"class index {i} is out of range; this model has classes 0..{n - 1}.")
            return i
        q = spec.strip().lower()
        for pass_ in ("exact", "synonym", "substring"):
            hits = []
            for i, lab in enumerate(self.labels):
                low = lab.lower()
                if pass_ == "exact" and low == q:
                    hits.append(i)
                elif pass_ == "synonym" and q in [s.strip() for s in low.split(",")]:
                    hits.append(i)
                elif pass_ == "substring" and q in low:
                    hits.append(i)
            if len(hits) == 1 or (hits and pass_ != "substring"):
                return hits[0]
            if len(hits) > 1:
                names = "; ".join(self.labels[i] for i in hits[:5])
                raise UsageError(f"class name {spec!r} is ambiguous ({names}...); give the full name or an index.")
        import difflib
        close = difflib.get_close_matches(q, [l.lower() for l in self.labels], n=3, cutoff=0.6)
        hint = f" Did you mean: {'; '.join(close)}?" if close else ""
        raise UsageError(f"unknown class {spec!r} for {self.display_name}.{hint} Pass a class index or a name.")

    # -- layers --------------------------------------------------------------------------------
    def layer(self, spec: str | None = "auto") -> tuple[str, nn.Module]:
        """Resolve ``auto``/``None``, a dotted path (``blocks.-1.norm1``) or a module name to
        ``(dotted name, module)``."""
        if spec in (None, "", "auto"):
            if self._default_layer is None:
                self._default_layer = find_default_layer(self.module, self.to_input(
                    np.zeros((*self.input_size, 3), np.uint8)))
            spec = self._default_layer
        return resolve_layer(self.module, spec)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "display_name": self.display_name, "classes": len(self.labels),
                "input_size": list(self.input_size), "default_layer": self.layer("auto")[0]}


def unwrap_logits(out: Any) -> torch.Tensor:
    """Find the logits in a model output: a tensor, a tuple/list (first item), a dict or a
    transformers ``ModelOutput`` (``logits`` field, else the first tensor)."""
    if isinstance(out, torch.Tensor):
        return out
    if hasattr(out, "logits") and isinstance(out.logits, torch.Tensor):
        return out.logits
    if isinstance(out, dict):
        if isinstance(out.get("logits"), torch.Tensor):
            return out["logits"]
        out = list(out.values())
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise TypeError(f"cannot find logits in a model output of type {type(out).__name__}")
