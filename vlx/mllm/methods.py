"""Per-answer-token maps for MLLMs, registered in ``MLLM_METHODS``.

* ``tam``: TAM logit lens (``max(0, logit_c(h_i))`` at the last layer's image positions) with
  estimated causal inference (subtract the least-squares-scaled, weighted mean of the context
  tokens' maps; weights TAM's own or ARC's) and the rank Gaussian filter.
* ``llavacam``: Grad-CAM on the LLM's hidden states at the image positions of one layer.
* ``attention`` / ``rollout``: attention from the predicting position to the image tokens
  (mean over heads and layers) / attention rollout (residual-mixed, ``0.5 A + 0.5 I``).
* ``gradxinput``: gradient × input on the pixel tensor, summed over channels.
* ``occlusion``: fill each superpixel with the image's mean colour and measure the drop of the
  answer token's probability (batched).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import numpy as np
import torch

from vlx.mllm.adapter import stack_inputs
from vlx.mllm.arc import arc_relevance
from vlx.mllm.context import AnswerContext, AnswerMap
from vlx.mllm.filters import rank_gaussian_filter
from vlx.registry import MLLM_METHODS


class MLLMMethod:
    """Base of MLLM methods. ``explain`` returns one ``AnswerMap`` per requested answer token."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    needs_gradients: ClassVar[bool] = False
    signed: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        self.options = options

    def explain(self, ctx: AnswerContext, tokens: list[int]) -> list[AnswerMap]:
        t0 = time.perf_counter()
        raws = self.token_values(ctx, tokens)
        each = (time.perf_counter() - t0) / max(1, len(tokens))
        return [self._result(ctx, t, raw, each, det) for t, (raw, det) in zip(tokens, raws)]

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        """Per token: (values at the method's resolution, details)."""
        raise NotImplementedError

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        """Default: ``raw`` is one value per image token → ``(H, W)`` through the token layout."""
        r = np.asarray(raw, dtype=np.float32)
        return ctx.inputs.layout.to_image(r), r

    def _result(self, ctx: AnswerContext, t: int, raw: Any, seconds: float, details: dict) -> AnswerMap:
        values, flat = self.to_image(ctx, raw)
        return AnswerMap((t,), ctx.token_text((t,)), self.name, values, flat, self.signed, seconds, details)


def get_mllm_method(name: str, **options: Any) -> MLLMMethod:
    """Instantiate a registered MLLM method; an unknown name or option is a one-line UsageError."""
    return MLLM_METHODS.create(name, **options)


@MLLM_METHODS.register
class TAM(MLLMMethod):
    """TAM logit lens. Options: ``weights`` (``tam``: context tokens weighted by their own
    text-position score for the answer token; ``arc``: by ``1 - RBO``; ``none``: no
    subtraction), ``filter`` (rank Gaussian filter on, default ``True``), ``k``/``p`` for ARC."""

    name = "tam"
    summary = "logit lens at image tokens, minus context interference, rank Gaussian filter"

    def __init__(self, weights: str = "tam", filter: bool = True, k: int = 50, p: float = 0.9) -> None:
        super().__init__(weights=weights, filter=filter, k=k, p=p)

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        mode = self.options.get("weights", "tam")
        out = ctx.output()
        hs = out.hidden_states[-1][0]
        img = hs[ctx.image_positions]
        results = []
        for t in tokens:
            c = ctx.answer_ids[t]
            base = ctx.model.lens_logits(img, torch.tensor([c]))[:, 0].clamp(min=0)
            details: dict[str, Any] = {"weights": mode}
            if mode != "none":
                pos = ctx.context_positions(t)
                ids = ctx.inputs.input_ids[0, pos]
                pos, ids = pos[ids != c], ids[ids != c]
                if len(pos):
                    maps = ctx.model.lens_logits(img, ids).clamp(min=0)  # (N, J)
                    if mode == "arc":
                        w = 1 - arc_relevance(out.logits[0], pos, ctx.position(t), self.options.get("k", 50),
                                              self.options.get("p", 0.9))
                    else:
                        w = ctx.model.lens_logits(hs[pos], torch.tensor([c]))[:, 0].clamp(min=0)
                    if float(w.sum()) > 0:
                        inter = (maps * w[None]).sum(1) / w.sum()
                        alpha = float((base * inter).sum() / (inter * inter).sum().clamp(min=1e-12))
                        base = (base - max(0.0, alpha) * inter).clamp(min=0)
                        details.update(alpha=max(0.0, alpha), context_weights=[float(x) for x in w])
            results.append((base.detach().float().cpu().numpy(), details))
        return results

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        layout = ctx.inputs.layout
        grids = layout.grids(raw)
        if self.options.get("filter", True):
            grids = [rank_gaussian_filter(g) for g in grids]
        return layout.to_image(raw, grids=grids), np.asarray(raw, np.float32)


@MLLM_METHODS.register
class LLaVACAM(MLLMMethod):
    """Grad-CAM on the hidden states at image positions of ``layer`` (an index into the hidden
    states: 0 = embeddings, ``l`` = output of decoder layer ``l``; default the model's middle)."""

    name = "llavacam"
    summary = "Grad-CAM on the LLM's image-token hidden states at one layer"
    needs_gradients = True

    def __init__(self, layer: int | None = None) -> None:
        super().__init__(layer=layer)

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        layer = self.options.get("layer")
        layer = ctx.model.default_layer if layer is None else int(layer)
        if not 0 <= layer < ctx.model.num_layers:
            raise ValueError(f"llavacam layer {layer} must be in 0..{ctx.model.num_layers - 1}")
        inputs = _grad_inputs(ctx)
        out = ctx.model.forward(inputs, hidden_states=True)
        h = out.hidden_states[layer]
        results = []
        for i, t in enumerate(tokens):
            score = out.logits[0, ctx.position(t), ctx.answer_ids[t]]
            g = torch.autograd.grad(score, h, retain_graph=i < len(tokens) - 1)[0][0, ctx.image_positions]
            a = h[0, ctx.image_positions].detach()
            cam = (a * g.mean(0)).sum(-1).clamp(min=0)
            results.append((cam.float().cpu().numpy(), {"layer": layer}))
        return results


@MLLM_METHODS.register
class Attention(MLLMMethod):
    """Attention weights from the predicting position to the image tokens, mean over heads and
    over ``layers`` (``all`` or ``last``)."""

    name = "attention"
    summary = "raw attention to image tokens (mean over heads and layers)"

    def __init__(self, layers: str = "all") -> None:
        super().__init__(layers=layers)

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        att = ctx.output().attentions
        layers = att[-1:] if self.options.get("layers", "all") == "last" else att
        mean = torch.stack([a[0].float().mean(0) for a in layers]).mean(0)  # (T, T)
        return [(mean[ctx.position(t), ctx.image_positions].cpu().numpy(), {}) for t in tokens]


@MLLM_METHODS.register
class Rollout(MLLMMethod):
    """Attention rollout: ``r = e_p``, then ``r ← r (0.5 A_l + 0.5 I)`` (rows renormalised) from
    the last layer down; the image-token entries of ``r``."""

    name = "rollout"
    summary = "attention rollout to image tokens"

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        att = ctx.output().attentions
        tlen = att[0].shape[-1]
        rows = torch.zeros(len(tokens), tlen)
        rows[torch.arange(len(tokens)), torch.tensor([ctx.position(t) for t in tokens])] = 1.0
        eye = torch.eye(tlen)
        for a in reversed(att):
            mixed = 0.5 * a[0].float().mean(0).cpu() + 0.5 * eye
            rows = rows @ (mixed / mixed.sum(-1, keepdim=True))
        return [(rows[i, ctx.image_positions].numpy(), {}) for i in range(len(tokens))]


@MLLM_METHODS.register
class GradientXInput(MLLMMethod):
    """Gradient of the answer token's logit × the pixel tensor, summed over channels; mapped
    through the model's pixel layout (tiles, crops, merged-patch order)."""

    name = "gradxinput"
    summary = "gradient x input on pixel values"
    needs_gradients = True
    signed = True

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        inputs = _grad_inputs(ctx)
        x = inputs.pixels[inputs.pixel_key]
        out = ctx.model.forward(inputs)
        results = []
        for i, t in enumerate(tokens):
            score = out.logits[0, ctx.position(t), ctx.answer_ids[t]]
            g = torch.autograd.grad(score, x, retain_graph=i < len(tokens) - 1)[0]
            rel = (g * x.detach()).sum(inputs.channel_dim).flatten()
            results.append((rel.float().cpu().numpy(), {}))
        return results

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(raw, np.float32)
        return ctx.inputs.pixel_layout.to_image(r), r


@MLLM_METHODS.register
class Occlusion(MLLMMethod):
    """Occlude each superpixel (``n_segments``, SLIC; or pass ``segments``, int ``(H, W)``
    labels, e.g. from SAM masks) with the mean colour; map = probability drop of the answer
    token, in ``[-1, 1]``, per region. ``batch_size`` perturbed images per pass."""

    name = "occlusion"
    summary = "probability drop when each superpixel is occluded (batched)"
    signed = True

    def __init__(self, segments: Any = None, n_segments: int = 24, batch_size: int = 8) -> None:
        super().__init__(segments=segments, n_segments=n_segments, batch_size=batch_size)

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        from vlx.regions.superpixels import superpixel_labels

        image = ctx.inputs.image
        segs = self.options.get("segments")
        if segs is None:
            segs = superpixel_labels(image.pixels, "slic", int(self.options.get("n_segments", 24)))
        labels = np.unique(segs)
        mean = image.pixels.reshape(-1, 3).mean(0).round().astype(np.uint8)
        views = []
        for s in labels:
            a = image.pixels.copy()
            a[segs == s] = mean
            views.append(a)
        probs = perturbed_probabilities(ctx, views, tokens, int(self.options.get("batch_size", 8)))
        with torch.no_grad():
            base = [float(ctx.model.answer_probability(ctx.inputs, t, ctx.answer_ids[t])[0]) for t in tokens]
        results = []
        for i, t in enumerate(tokens):
            drop = base[i] - probs[:, i]
            results.append(((segs, labels, drop), {"n_regions": len(labels), "probability": base[i]}))
        return results

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        segs, labels, drop = raw
        lut = np.zeros(int(segs.max()) + 1, np.float32)
        lut[labels] = drop
        return lut[segs], drop.astype(np.float32)


def perturbed_probabilities(ctx: AnswerContext, views: list[np.ndarray], tokens: list[int],
                            batch_size: int = 8) -> np.ndarray:
    """Teacher-forced probabilities of answer ``tokens`` on perturbed copies of the image (RGB
    uint8 ``(H, W, 3)``, same size): float ``(len(views), len(tokens))`` in ``[0, 1]``."""
    from vlx.types import ImageInput

    question_inputs = ctx.inputs
    out = []
    with torch.no_grad():
        for i in range(0, len(views), batch_size):
            items = [ctx.reprepare(ImageInput(v, question_inputs.image.path, question_inputs.image.id))
                     for v in views[i:i + batch_size]]
            batch = stack_inputs(items)
            logits = ctx.model.forward(batch).logits.float()
            cols = []
            for t in tokens:
                cols.append(logits[:, ctx.position(t)].softmax(-1)[:, ctx.answer_ids[t]])
            out.append(torch.stack(cols, 1).cpu())
    return torch.cat(out).numpy()


def _grad_inputs(ctx: AnswerContext) -> Any:
    """The answer inputs with a fresh pixel tensor that requires gradients."""
    pixels = dict(ctx.inputs.pixels)
    pixels[ctx.inputs.pixel_key] = pixels[ctx.inputs.pixel_key].detach().clone().float().requires_grad_(True)
    return ctx.inputs.with_pixels(pixels)
