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

``gradxinput`` and ``occlusion`` are thin adapters over the image methods of ``vlx.attribute``
(``input_x_gradient``, ``occlusion`` over players): the answer tokens' scores become a score
function (``PixelTensorScorer``, ``ImagePixelScorer``), as captum's ``LLMAttribution`` wraps its
own perturbation methods.
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
from vlx.registry import MLLM_METHODS, check_options


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
    """TAM logit lens with estimated causal inference, after the authors' ``tam.py``.

    For answer token ``t`` with id ``c``: ``base_i = max(0, logit_c(h_i))`` at each image
    position ``i`` (last layer, after the final norm). Context (``AnswerContext.text_context``):
    the question's tokens and every earlier reply token, ``a_{t-1}`` included, without tokens of
    id ``c``; context token ``j`` (id ``c_j``) has the map ``m_j = max(0, logit_{c_j}(h_i))``
    and a weight ``w_j``. Interference ``I = Σ_j w_j m_j / Σ_j w_j``; its scale is the least
    squares fit ``α = <base, I> / <I, I>`` (``>= 0`` as both maps are); the map is
    ``max(0, base - α I)``, then the rank Gaussian filter per token grid.

    Options: ``weights`` (``tam``: ``w_j = max(0, logit_c)`` at the context token's score
    position, the reference's; ``arc``: ``w_j = 1 - RBO`` of top-``k`` rankings; ``none``: no
    subtraction), ``filter`` (rank Gaussian filter, default ``True``), ``k``/``p`` for ARC."""

    name = "tam"
    summary = "logit lens at image tokens, minus context interference, rank Gaussian filter"

    def __init__(self, weights: str = "tam", filter: bool = True, k: int = 50, p: float = 0.9) -> None:
        super().__init__(weights=weights, filter=filter, k=k, p=p)

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        mode = self.options.get("weights", "tam")
        if mode not in ("tam", "arc", "none"):
            raise ValueError(f"unknown TAM weights {mode!r}; use tam, arc or none")
        out = ctx.output()
        hs = out.hidden_states[-1][0]
        img = hs[ctx.image_positions]
        results = []
        for t in tokens:
            c = ctx.answer_ids[t]
            base = ctx.model.lens_logits(img, torch.tensor([c]))[:, 0].clamp(min=0)
            details: dict[str, Any] = {"weights": mode}
            if mode != "none":
                tc = ctx.text_context(t)
                other = tc.ids != c
                ids, score_pos = tc.ids[other], tc.score_positions[other]
                if len(ids):
                    maps = ctx.model.lens_logits(img, ids).clamp(min=0)  # (N, J)
                    if mode == "arc":
                        w = 1 - arc_relevance(out.logits[0], score_pos, ctx.position(t), self.options.get("k", 50),
                                              self.options.get("p", 0.9))
                    else:
                        w = ctx.model.lens_logits(hs[score_pos], torch.tensor([c]))[:, 0].clamp(min=0)
                    base, alpha = remove_interference(base, maps, w)
                    details.update(alpha=alpha, context_weights=[float(x) for x in w],
                                   context_ids=[int(i) for i in ids])
            results.append((base.detach().float().cpu().numpy(), details))
        return results

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        layout = ctx.inputs.layout
        grids = layout.grids(raw)
        if self.options.get("filter", True):
            grids = [rank_gaussian_filter(g) for g in grids]
        return layout.to_image(raw, grids=grids), np.asarray(raw, np.float32)


def remove_interference(base: torch.Tensor, maps: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, float]:
    """TAM's estimated causal inference. ``base`` ``(N,)`` ``>= 0``; ``maps`` ``(N, J)`` the
    context tokens' maps ``>= 0``; ``weights`` ``(J,)`` ``>= 0``. Interference
    ``I = maps @ w / Σ w``; ``α = <base, I> / <I, I>`` (least squares); returns
    ``(max(0, base - α I), α)``. No weight or an all-zero interference leaves ``base`` as is
    (``α = 0``)."""
    if float(weights.sum()) <= 0:
        return base, 0.0
    inter = (maps * weights[None]).sum(1) / weights.sum()
    norm = float((inter * inter).sum())
    if norm <= 0:
        return base, 0.0
    alpha = float((base * inter).sum()) / norm
    return (base - alpha * inter).clamp(min=0), alpha


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
    """Gradient of the answer token's logit × the pixel tensor, summed over channels (the image
    methods' ``input_x_gradient`` over ``PixelTensorScorer``); mapped through the model's pixel
    layout (tiles, crops, merged-patch order)."""

    name = "gradxinput"
    summary = "gradient x input on pixel values"
    needs_gradients = True
    signed = True

    def __init__(self, **options: Any) -> None:
        check_options(type(self), options, f"MLLM method {type(self).name!r}")
        super().__init__()

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        from vlx.attribute.gradient import InputXGradient
        from vlx.types import ClassTarget

        scorer = PixelTensorScorer(ctx, tokens)
        method = InputXGradient()
        return [(method.attribute(scorer, scorer.x, ClassTarget(i))[0].flatten().float().cpu().numpy(), {})
                for i in range(len(tokens))]

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        r = np.asarray(raw, np.float32)
        return ctx.inputs.pixel_layout.to_image(r), r


@MLLM_METHODS.register
class Occlusion(MLLMMethod):
    """Occlude each superpixel (``n_segments``, SLIC; or pass ``segments``, int ``(H, W)``
    labels, e.g. from SAM masks) with the image's mean colour; map = probability drop of the
    answer token, in ``[-1, 1]``, per region: the image methods' ``occlusion`` with
    ``regions="players"`` over ``ImagePixelScorer``, every answer token from the same passes.
    ``batch_size`` perturbed images per pass."""

    name = "occlusion"
    summary = "probability drop when each superpixel is occluded (batched)"
    signed = True

    def __init__(self, n_segments: int = 24, segments: np.ndarray | None = None, batch_size: int = 8) -> None:
        super().__init__(n_segments=n_segments, segments=segments, batch_size=batch_size)
        self.n_segments, self.segments, self.batch_size = int(n_segments), segments, int(batch_size)

    def token_values(self, ctx: AnswerContext, tokens: list[int]) -> list[tuple[Any, dict]]:
        from vlx.attribute.perturb import Occlusion as Occlude
        from vlx.regions.superpixels import superpixel_labels
        from vlx.types import ClassTarget

        image = ctx.inputs.image
        segs = self.segments
        if segs is None:
            segs = superpixel_labels(image.pixels, "slic", self.n_segments)
        labels, first = np.unique(segs, return_index=True)
        scorer = ImagePixelScorer(ctx, tokens, self.batch_size, segments=segs)
        method = Occlude(regions="players", baseline="mean", batch_size=self.batch_size)
        maps = method.attribute_targets(scorer, scorer.x, [ClassTarget(i) for i in range(len(tokens))])
        base = method.last_full[0].tolist()
        results = []
        for i in range(len(tokens)):
            drop = maps[i].flatten()[torch.from_numpy(first)].cpu().numpy()
            results.append(((segs, labels, drop), {"n_regions": len(labels), "probability": base[i]}))
        return results

    def to_image(self, ctx: AnswerContext, raw: Any) -> tuple[np.ndarray, np.ndarray]:
        segs, labels, drop = raw
        lut = np.zeros(int(segs.max()) + 1, np.float32)
        lut[labels] = drop
        return lut[segs], drop.astype(np.float32)


class PixelTensorScorer:
    """The answer tokens' logits as a score function (``vlx.attribute.base.Scorer``) over the
    model's own pixel tensor, in a canonical layout: ``x`` ``(B, C, n, 1)`` holds B copies of
    ``pixels[pixel_key]`` with its ``channel_dim`` first and the other dims flattened in order, so
    a map ``(B, n, 1)`` flattens in the order of ``pixel_layout``. ``logits(x)``: ``(B, T)`` logits
    of the T answer ``tokens`` at their predicting positions (teacher-forced)."""

    def __init__(self, ctx: AnswerContext, tokens: list[int]) -> None:
        self.ctx, self.tokens, self.batch_size = ctx, list(tokens), 1
        p = ctx.inputs.pixels[ctx.inputs.pixel_key].detach().float()
        self.channel_dim = ctx.inputs.channel_dim
        moved = p.movedim(self.channel_dim, 0)
        self.moved_shape = tuple(moved.shape)
        self.x = moved.reshape(1, moved.shape[0], -1, 1)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        ctx = self.ctx
        items = []
        for b in range(x.shape[0]):
            pixels = dict(ctx.inputs.pixels)
            pixels[ctx.inputs.pixel_key] = x[b].reshape(self.moved_shape).movedim(0, self.channel_dim)
            items.append(ctx.inputs.with_pixels(pixels))
        out = ctx.model.forward(stack_inputs(items)).logits
        return torch.stack([out[:, ctx.position(t), ctx.answer_ids[t]] for t in self.tokens], 1).float()


class ImagePixelScorer:
    """The answer tokens' teacher-forced probabilities as a score function over the image's
    pixels: ``x`` ``(B, 3, H, W)`` float RGB in ``[0, 255]`` (rounded to uint8 and prepared like the
    original image) → ``(B, T)`` probabilities in ``[0, 1]``. Players: ``segments`` (int
    ``(H, W)`` labels), when given."""

    def __init__(self, ctx: AnswerContext, tokens: list[int], batch_size: int = 8,
                 segments: np.ndarray | None = None) -> None:
        self.ctx, self.tokens, self.batch_size = ctx, list(tokens), int(batch_size)
        self.segments = segments
        self.x = torch.from_numpy(np.array(ctx.inputs.image.pixels)).permute(2, 0, 1)[None].float()

    def players(self, x: torch.Tensor, n_segments: int) -> torch.Tensor:
        if self.segments is None:
            raise ValueError("ImagePixelScorer has no segments; pass segments=")
        return torch.from_numpy(np.asarray(self.segments, dtype=np.int64))

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        from vlx.types import ImageInput

        ctx, image = self.ctx, self.ctx.inputs.image
        views = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        batch = stack_inputs([ctx.reprepare(ImageInput(np.ascontiguousarray(v), image.path, image.id)) for v in views])
        logits = ctx.model.forward(batch).logits.float()
        return torch.stack([logits[:, ctx.position(t)].softmax(-1)[:, ctx.answer_ids[t]] for t in self.tokens], 1).cpu()


def perturbed_probabilities(ctx: AnswerContext, views: list[np.ndarray], tokens: list[int],
                            batch_size: int = 8) -> np.ndarray:
    """Teacher-forced probabilities of answer ``tokens`` on perturbed copies of the image (RGB
    uint8 ``(H, W, 3)``, same size): float ``(len(views), len(tokens))`` in ``[0, 1]``."""
    scorer = ImagePixelScorer(ctx, tokens, batch_size)
    out = []
    for i in range(0, len(views), batch_size):
        x = torch.from_numpy(np.stack(views[i:i + batch_size])).permute(0, 3, 1, 2).float()
        out.append(scorer.logits(x))
    return torch.cat(out).numpy()


def _grad_inputs(ctx: AnswerContext) -> Any:
    """The answer inputs with a fresh pixel tensor that requires gradients."""
    pixels = dict(ctx.inputs.pixels)
    pixels[ctx.inputs.pixel_key] = pixels[ctx.inputs.pixel_key].detach().clone().float().requires_grad_(True)
    return ctx.inputs.with_pixels(pixels)
