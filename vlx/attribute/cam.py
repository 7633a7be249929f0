"""The CAM family over one base: a method supplies channel weights (or overrides ``combine``).

Activations of the chosen layer are captured with a hook; token layers of ViTs are reshaped to
their patch grid automatically (``vlx.models.layers.to_spatial``)."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vlx.attribute.base import AttributionMethod, layer_names, upsample
from vlx.attribute.hooks import capture
from vlx.models.classifier import ImageClassifier
from vlx.models.layers import first_tensor, to_spatial
from vlx.registry import METHODS
from vlx.types import Target

EPS = 1e-7


def layer_gradients(model: ImageClassifier, x: torch.Tensor, target: Target,
                    module: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations of ``module`` and the gradient of the target score with respect to them, both
    ``(B, C, h, w)`` (token layers reshaped to their patch grid), detached.

    Uses only ``model.logits``. The layer's output needs a graph: input gradients are asked for
    only when no weight before the layer records one (a frozen model); otherwise they would make
    autograd keep the early layers' tensors for nothing."""
    return layers_gradients(model, x, target, [module])[0]


def layers_gradients(model: ImageClassifier, x: torch.Tensor, target: Target,
                     modules: list[nn.Module]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``layer_gradients`` for several modules from one forward and one backward pass: one
    ``(activations, gradients)`` pair per module, in order."""
    x = x.detach()
    for need_input_grad in (False, True):
        with torch.enable_grad(), ExitStack() as stack:
            caps = [stack.enter_context(capture(m)) for m in modules]
            total = target.score(model.logits(x.requires_grad_(need_input_grad))).sum()
        for m, cap in zip(modules, caps):
            if cap.output is None:
                raise RuntimeError(f"layer {type(m).__name__} produced no tensor in the forward pass")
        if all(cap.output.requires_grad for cap in caps):
            break
    with torch.enable_grad():
        grads = torch.autograd.grad(total, [cap.output for cap in caps])
    hw = tuple(x.shape[-2:])
    return [(to_spatial(cap.output.detach(), hw), to_spatial(g.detach(), hw)) for cap, g in zip(caps, grads)]


class CAMBase(AttributionMethod):
    """Class activation maps: ``ReLU(sum_c w_c A_c)`` over a layer's activations ``A``.

    Several layers: ``layer`` may be a comma-separated list (``encoder.layers.-2,encoder.layers.-3``).
    Each layer's map is computed on its own, upsampled (bilinear) to the model input ``(h, w)``,
    and the maps are averaged as they are (no per-layer rescaling, so a layer with larger
    activations weighs more); the result is at the model input's resolution."""

    needs_layer = True

    def __init__(self) -> None:
        """Gradient CAMs and Eigen-CAM take no options (an unknown one is a TypeError)."""
        super().__init__()

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        if layer is not None and "," in layer:
            names = layer_names(layer)
            hw = tuple(x.shape[-2:])
            return torch.stack([upsample(self.attribute(model, x, target, n), hw).float() for n in names]).mean(0)
        _, module = model.layer(layer)
        if not self.needs_gradients:
            with torch.no_grad(), capture(module) as cap:
                model.logits(x)
            if cap.output is None:
                raise RuntimeError(f"layer {layer!r} produced no tensor in the forward pass")
            return self.combine_forward(model, x, target, module, to_spatial(cap.output, tuple(x.shape[-2:])))
        return self.combine(*layer_gradients(model, x, target, module))

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """Channel weights ``(B, C)`` from activations and gradients ``(B, C, h, w)``."""
        raise NotImplementedError

    def combine_forward(self, model: ImageClassifier, x: torch.Tensor, target: Target, module: torch.nn.Module,
                        acts: torch.Tensor) -> torch.Tensor:
        """Gradient-free CAMs (``needs_gradients = False``): the map ``(B, h, w)`` from the
        activations ``(B, C, h, w)``, with further forward passes where the method needs them."""
        raise NotImplementedError

    def combine(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """The map ``(B, h, w)``: ReLU of the weighted sum of activation channels."""
        w = self.weights(acts, grads)
        return torch.relu((w[:, :, None, None] * acts).sum(1))


@METHODS.register
class GradCAM(CAMBase):
    name = "gradcam"
    summary = "Grad-CAM: channel weights are the spatial mean of the gradients."

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return grads.mean(dim=(2, 3))


@METHODS.register
class GradCAMPlusPlus(CAMBase):
    """Grad-CAM++ (Chattopadhay et al. 2018), with the usual closed form for the second and third
    derivatives of ``exp(score)``: ``alpha = g^2 / (2 g^2 + sum(A) g^3)``, weights
    ``sum(alpha * ReLU(g))`` over positions."""

    name = "gradcampp"
    summary = "Grad-CAM++: gradients weighted per position by higher-order terms."

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        g2, g3 = grads.pow(2), grads.pow(3)
        denom = 2 * g2 + acts.sum(dim=(2, 3), keepdim=True) * g3
        alpha = torch.where(grads != 0, g2 / torch.where(denom != 0, denom, torch.ones_like(denom)),
                            torch.zeros_like(g2))
        return (alpha * torch.relu(grads)).sum(dim=(2, 3))


@METHODS.register
class XGradCAM(CAMBase):
    """XGrad-CAM (Fu et al. 2020): weights ``sum(A * g) / sum(A)`` over positions."""

    name = "xgradcam"
    summary = "XGrad-CAM: gradients weighted by normalised activations."

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        s = acts.sum(dim=(2, 3))
        s = torch.where(s.abs() > EPS, s, torch.full_like(s, EPS))
        return (acts * grads).sum(dim=(2, 3)) / s


@METHODS.register
class HiResCAM(CAMBase):
    """HiResCAM (Draelos & Carin 2020): ``ReLU(sum_c g_c * A_c)`` — elementwise, no pooling."""

    name = "hirescam"
    summary = "HiResCAM: elementwise gradient × activation, summed over channels."

    def combine(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return torch.relu((grads * acts).sum(1))


@METHODS.register
class LayerCAM(CAMBase):
    """LayerCAM (Jiang et al. 2021): ``ReLU(sum_c ReLU(g_c) * A_c)``."""

    name = "layercam"
    summary = "LayerCAM: positive gradients weight activations position by position."

    def combine(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return torch.relu((torch.relu(grads) * acts).sum(1))


@METHODS.register
class EigenCAM(CAMBase):
    """Eigen-CAM (Muhammad & Yeasin 2020): projection of the (centred) activations on their first
    principal component, sign fixed so the map correlates positively with the channel-mean
    activation, then ReLU. Class-agnostic: the target is ignored. Gradient-free."""

    name = "eigencam"
    summary = "Eigen-CAM: first principal component of the layer's activations (class-agnostic)."
    needs_gradients = False

    def combine_forward(self, model: ImageClassifier, x: torch.Tensor, target: Target, module: torch.nn.Module,
                        acts: torch.Tensor) -> torch.Tensor:
        b, c, h, w = acts.shape
        flat = acts.float().reshape(b, c, h * w).transpose(1, 2)          # (B, hw, C)
        centred = flat - flat.mean(dim=1, keepdim=True)
        _, _, vh = torch.linalg.svd(centred, full_matrices=False)          # vh: (B, k, C)
        proj = (centred @ vh[:, 0, :, None])[..., 0]                       # (B, hw)
        ref = flat.mean(dim=2)
        ref = ref - ref.mean(dim=1, keepdim=True)
        sign = torch.where((proj * ref).sum(1) < 0, -1.0, 1.0)
        return torch.relu(proj * sign[:, None]).reshape(b, h, w)


def _minmax(a: torch.Tensor) -> torch.Tensor:
    """Scale each ``(h, w)`` plane of ``(N, C, h, w)`` to ``[0, 1]`` (constant planes → 0)."""
    lo = a.amin(dim=(2, 3), keepdim=True)
    span = a.amax(dim=(2, 3), keepdim=True) - lo
    return torch.where(span > 0, (a - lo) / torch.where(span > 0, span, torch.ones_like(span)), torch.zeros_like(a))


def _dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``(n, m)`` between rows, computed directly (no matrix-product shortcut,
    so equal rows are at distance 0 exactly)."""
    return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")


def kmeans_representatives(v: torch.Tensor, k: int, iters: int = 20, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``v`` ``(n, d)`` standing for ``k`` k-means clusters, and each row's stand-in.

    Returns ``(reps, nearest)``: ``reps`` ``(m,)`` ascending distinct row indices, ``m <= k``;
    ``nearest`` ``(n,)`` the position in ``reps`` of the representative nearest each row (ties:
    the lower index). With at most ``k`` distinct rows, one representative per distinct row (the
    first), so every row is its own stand-in's equal. Otherwise ``lloyd`` for ``iters`` rounds from
    a ``kmeans_plus_plus`` start drawn with ``torch.Generator().manual_seed(seed)``; each cluster is
    represented by its member nearest the centroid. Deterministic for a given input.
    """
    v = v.double()
    if len(v) == 0:
        return torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long)
    distinct = torch.unique(v, dim=0)
    centres = distinct if len(distinct) <= k else lloyd(
        v, v[kmeans_plus_plus(v, k, torch.Generator().manual_seed(seed))], iters)
    reps = _dist(centres, v).argmin(1).unique()          # the first row at each distinct row's distance 0
    return reps, _dist(v, v[reps]).argmin(1)


def kmeans_plus_plus(v: torch.Tensor, k: int, gen: torch.Generator) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): ``k`` row indices ``(k,)`` of ``v``
    ``(n, d)``, the first uniform, each next drawn with probability proportional to its squared
    distance to the nearest one chosen. Needs more than ``k - 1`` distinct rows."""
    centres = [int(torch.randint(len(v), (), generator=gen))]
    d2 = ((v - v[centres[0]]) ** 2).sum(1)
    for _ in range(k - 1):
        centres.append(int(torch.multinomial(d2, 1, generator=gen)))
        d2 = torch.minimum(d2, ((v - v[centres[-1]]) ** 2).sum(1))
    return torch.tensor(centres)


def lloyd(v: torch.Tensor, c: torch.Tensor, iters: int) -> torch.Tensor:
    """``iters`` rounds of Lloyd's algorithm on rows ``v`` ``(n, d)`` from centroids ``c`` ``(k, d)``:
    each row joins its nearest centroid (ties: the lower index), each centroid moves to its
    members' mean; a centroid left without members stays. Returns the centroids ``(k, d)``."""
    for _ in range(iters):
        label = _dist(v, c).argmin(1)
        size = torch.bincount(label, minlength=len(c)).to(v.dtype)
        total = torch.zeros_like(c).index_add_(0, label, v)
        c = torch.where(size[:, None] > 0, total / size.clamp_min(1)[:, None], c)
    return c


RANKS = ("gradient", "mass")


class ForwardCAM(CAMBase):
    """Base of gradient-free CAMs that score many perturbed inputs, one per channel.

    Args:
        batch_size: perturbed inputs per forward pass (default: the model's).
        channels: score only this many channels per image (``None``: all, the published method).
            The others get weight 0. With ``channels >=`` the layer's width the result is the full
            method's, exactly.
        rank: how the scored channels are chosen when ``channels`` is set: ``"gradient"`` (one
            backward pass; the method's first-order estimate of each channel's importance, see
            ``rank_key``) or ``"mass"`` (``sum_ij ReLU(A_k)``, gradient-free). Ties are broken by
            mass, then by channel index.
    """

    needs_gradients = False
    ranks = RANKS

    def __init__(self, batch_size: int | None = None, channels: int | None = None, rank: str = "gradient") -> None:
        if channels is not None and int(channels) < 1:
            raise ValueError(f"channels must be a positive number of channels or None, got {channels!r}")
        if rank not in self.ranks:
            raise ValueError(f"rank must be one of {self.ranks}, got {rank!r}")
        AttributionMethod.__init__(self, batch_size=batch_size, channels=channels, rank=rank)
        self.batch_size = batch_size and int(batch_size)
        self.channels = None if channels is None else int(channels)
        self.rank = rank

    def rank_key(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """Importance ``(B, C)`` of each channel for ``rank="gradient"`` (higher: scored first)."""
        raise NotImplementedError

    def selected(self, model: ImageClassifier, x: torch.Tensor, target: Target, module: nn.Module,
                 acts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Channel indices ``(B, k)`` to score, ascending per row (all channels by default), and
        the layer's gradients ``(B, C, h, w)`` when ``rank="gradient"`` needed them (else None)."""
        b, c = acts.shape[:2]
        if self.channels is None or self.channels >= c:
            return torch.arange(c, device=acts.device).expand(b, c), None
        mass = acts.float().clamp_min(0).sum(dim=(2, 3))
        grads = None
        if self.rank == "mass":
            key = mass
        else:
            acts, grads = layer_gradients(model, x, target, module)
            key = self.rank_key(acts, grads).float()
        # Highest key first; ties by activation mass, then by channel index (both stable sorts).
        by_mass = torch.sort(mass, dim=1, descending=True, stable=True).indices
        by_key = torch.sort(key.gather(1, by_mass), dim=1, descending=True, stable=True).indices
        return by_mass.gather(1, by_key)[:, :self.channels].sort(dim=1).values, grads


SCORECAM_WEIGHTS = ("probability", "channel_softmax")


@METHODS.register
class ScoreCAM(ForwardCAM):
    """Score-CAM (Wang et al. 2020): each activation channel ``A_k``, upsampled (bilinear,
    half-pixel centres) to the input and scaled to ``[0, 1]``, masks the input (zero in model
    space outside); the channel's weight comes from the model's output on its masked input.
    Gradient-free; ``B × C`` forward passes in chunks of ``batch_size``.

    Args:
        weights: ``"probability"`` (default; the paper's ``S_k^c``, a softmax over classes of the
            masked input's logits, and the authors' code): ``w_k`` = the target's probability
            (for a contrast, ``p_A - p_B``). ``"channel_softmax"`` (pytorch-grad-cam's variant):
            a softmax over channels of the target logits; on a wide layer its weights are close
            to uniform (EfficientNet-Lite0, 1280 channels: largest weight 0.003 on the cat photo,
            map within Spearman 0.98 of the plain mean of the channels, whatever the class).
        batch_size, channels, rank: see ``ForwardCAM``.

    Named variant: the map is ``ReLU(sum_k w_k ReLU(A_k))``, the weighted sum of the channels'
    positive parts, where the paper sums the raw ``A_k``. The two agree on a layer that follows a
    ReLU; on a pre-activation layer (e.g. EfficientNet's last BatchNorm) the paper's sum is
    negative almost everywhere and its map vanishes. The paper's baseline score ``f(X_b)`` is not
    subtracted (as in the authors' code).

    ``channels=k`` scores only ``k`` channels per image. With ``rank="cluster"`` (the default
    here; no backward pass) a channel's score depends only on its mask, so the channels with any
    positive activation are grouped by their masks: their maps at the layer's resolution, scaled to
    ``[0, 1]``, are split into ``k`` clusters by k-means (``kmeans_representatives``), the member
    nearest each centroid is scored, and every channel takes the score of the scored channel whose
    map is nearest its own. Under ``weights="probability"`` channels without positive activation
    add nothing to the map and are left out (under ``"channel_softmax"`` every channel's score
    enters the softmax, so all are clustered); with at most ``k`` distinct maps among those the
    result is the full method's (to float rounding: equal maps give equal masks).
    (EfficientNet-Lite0, 1280 channels, ``k = 64``: Spearman 0.962–0.999, median 0.994, with the
    full map on five photos at 4–5 % of its time, against 0.842–0.997 for ``rank="gradient"``;
    ``benchmarks/fast_cam.py``.) With
    ``rank="gradient"`` (those with the largest ``sum_ij ReLU(g_k) ReLU(A_k)``, positive evidence
    for the target) or ``"mass"``, every other channel is given the mean score (probability or
    logit) of the scored ones, so that it still counts in the sum.
    """

    name = "scorecam"
    summary = "Score-CAM: channels weighted by the class probability of the input they mask (forward passes only)."
    ranks = RANKS + ("cluster",)

    def __init__(self, batch_size: int | None = None, channels: int | None = None, rank: str = "cluster",
                 weights: str = "probability") -> None:
        if weights not in SCORECAM_WEIGHTS:
            raise ValueError(f"weights must be one of {SCORECAM_WEIGHTS}, got {weights!r}")
        super().__init__(batch_size=batch_size, channels=channels, rank=rank)
        self.options["weights"] = self.weights_mode = weights

    def rank_key(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return (torch.relu(grads) * acts.clamp_min(0)).sum(dim=(2, 3))

    @torch.no_grad()
    def combine_forward(self, model: ImageClassifier, x: torch.Tensor, target: Target, module: torch.nn.Module,
                        acts: torch.Tensor) -> torch.Tensor:
        from vlx.attribute.gradient import target_rows

        by_cluster = self.rank == "cluster" and self.channels is not None and self.channels < acts.shape[1]
        chosen = None if by_cluster else self.selected(model, x, target, module, acts)[0]
        maps = []
        bs = self.batch_size or model.batch_size
        for i in range(acts.shape[0]):
            t_i = target_rows(target, [i])
            a_i = acts[i].float()                                          # (C, h, w)
            if by_cluster:
                # probability weights: channels without positive activation add nothing, leave them
                # out; channel_softmax: every channel's score enters the softmax, keep them all
                live = torch.nonzero(a_i.clamp_min(0).sum(dim=(1, 2)) > 0)[:, 0] if self.weights_mode == "probability" \
                    else torch.arange(a_i.shape[0], device=a_i.device)
                planes = _minmax(a_i[live, None])[:, 0].flatten(1)
                reps, nearest = kmeans_representatives(planes, self.channels)
                pick = live[reps]
            else:
                pick = chosen[i]
            scores = []
            for c0 in range(0, len(pick), bs):
                a = a_i[pick[c0:c0 + bs], None]                            # (n, 1, h, w)
                m = _minmax(F.interpolate(a, size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False))
                out = model.logits(x[i:i + 1] * m.to(x.dtype)).float()
                if self.weights_mode == "probability":
                    out = out.softmax(-1)
                scores.append(target_rows(t_i, [0] * m.shape[0]).score(out))
            scored = torch.cat(scores) if scores else a_i.new_zeros(0)
            if by_cluster:
                s = a_i.new_zeros(a_i.shape[0])                            # dead channels add nothing
                s[live] = scored[nearest]
            else:
                s = scored.mean().expand(a_i.shape[0]).clone()             # unscored channels: the mean
                s[pick] = scored
            w = s.softmax(0) if self.weights_mode == "channel_softmax" else s
            maps.append(torch.relu((w[:, None, None] * a_i.clamp_min(0)).sum(0)))
        return torch.stack(maps)


@METHODS.register
class AblationCAM(ForwardCAM):
    """Ablation-CAM (Desai & Ramaswamy 2020): a channel's weight is the relative drop of the target
    score when that channel of the layer's output is set to zero; the map is
    ``ReLU(sum_k w_k A_k)``. The ablations run batched through a forward hook that replaces the
    layer's output (``B × C`` forward passes in chunks of ``batch_size``). Token layers ablate
    the channel in every token (prefix tokens included).

    Named variant: ``w_k = (s - s_k) / |s|``; the paper divides by ``s``, which is the same for a
    positive score and would flip every weight's sign for a negative one (e.g. a contrast).

    ``channels=k`` ablates only ``k`` channels per image. With ``rank="gradient"`` (one backward
    pass) those with the largest ``|sum_ij g_k A_k|``, the first-order estimate of the score
    drop, and the other channels keep that estimate as their drop; with ``rank="mass"`` the
    others weigh 0. On EfficientNet-Lite0 (1280 channels, four photos) ``channels=64`` keeps
    Spearman >= 0.959 with the full map for about 5% of its forward passes (see
    ``docs/testing-camgrad.md``).
    """

    name = "ablationcam"
    summary = "Ablation-CAM: channels weighted by the score drop when each is zeroed."

    def rank_key(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return (grads * acts).sum(dim=(2, 3)).abs()

    @torch.no_grad()
    def combine_forward(self, model: ImageClassifier, x: torch.Tensor, target: Target, module: torch.nn.Module,
                        acts: torch.Tensor) -> torch.Tensor:
        from vlx.attribute.gradient import target_rows

        b, c = acts.shape[:2]
        chosen, grads = self.selected(model, x, target, module, acts)
        # Channels not ablated: the first-order estimate of their drop, sum_ij g A, when the
        # gradients are at hand (rank="gradient"), else 0.
        estimate = torch.zeros((b, c), device=acts.device) if grads is None else \
            (grads.float() * acts.float()).sum(dim=(2, 3))
        base = target.score(model.logits(x)).float()
        keep: dict[str, torch.Tensor] = {}

        def hook(_m: nn.Module, _inp: Any, out: Any) -> Any:
            t = first_tensor(out)
            k = keep["mask"]
            k = k[:, :, None, None] if t.dim() == 4 else k[:, None, :]
            return replace_first_tensor(out, t * k.to(t.dtype))

        handle = module.register_forward_hook(hook)
        try:
            maps = []
            bs = self.batch_size or model.batch_size
            for i in range(b):
                drops = estimate[i].clone()
                for c0 in range(0, chosen.shape[1], bs):
                    ch = chosen[i, c0:c0 + bs]
                    keep["mask"] = 1.0 - F.one_hot(ch, c).float()
                    logits = model.logits(x[i:i + 1].expand(len(ch), *x.shape[1:]))
                    drops[ch] = base[i] - target_rows(target, [i] * len(ch)).score(logits).float()
                w = drops / base[i].abs().clamp_min(EPS)
                maps.append(torch.relu((w[:, None, None] * acts[i].float()).sum(0)))
        finally:
            handle.remove()
        return torch.stack(maps)


def replace_first_tensor(out: Any, new: torch.Tensor) -> Any:
    """``out`` with its first tensor replaced by ``new`` (tensor, tuple or list outputs)."""
    if isinstance(out, torch.Tensor):
        return new
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return type(out)([new, *out[1:]])
    raise TypeError(f"cannot replace the output of type {type(out).__name__} in a forward hook")
