"""Perturbation (black-box) methods: occlusion, RISE, LIME, KernelSHAP, and XRAI-style ranking.

A method supplies masks (``mask_chunk``: which pixels to keep, ``(n, 1, h, w)`` in ``[0, 1]``) and
turns the scores of the masked inputs into a map (``reduce``). The base builds the masked inputs
``x * m + baseline * (1 - m)`` one chunk of ``batch_size`` at a time under ``torch.no_grad``, so
memory stays flat in the number of samples. Samples of a batch are explained one after the other
with the same seed, so a sample's map never depends on its batch mates.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vlx.attribute.base import AttributionMethod
from vlx.attribute.gradient import IntegratedGradients, target_rows
from vlx.models.classifier import ImageClassifier
from vlx.registry import METHODS
from vlx.types import Target


def make_baseline(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The "removed" input for ``x`` ``(1, 3, h, w)``: ``zero`` (zeros in model space), ``mean``
    (per-channel mean of the image) or ``blur`` (an 8× box-downsampled, bilinearly upsampled copy)."""
    if kind == "zero":
        return torch.zeros_like(x)
    if kind == "mean":
        return x.mean(dim=(2, 3), keepdim=True).expand_as(x).clone()
    if kind == "blur":
        h, w = x.shape[-2:]
        small = F.adaptive_avg_pool2d(x, (max(1, h // 8), max(1, w // 8)))
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
    raise ValueError(f"unknown baseline {kind!r}; use zero, mean or blur")


def to_pixels(model: ImageClassifier, x: torch.Tensor) -> np.ndarray:
    """Model input ``(3, h, w)`` back to an RGB uint8 image ``(h, w, 3)`` (un-normalised with the
    model's preprocessing mean, std and scale)."""
    p = model.preprocess
    mean = torch.tensor(p.mean, device=x.device).view(3, 1, 1)
    std = torch.tensor(p.std, device=x.device).view(3, 1, 1)
    x01 = ((x.detach().float() * std + mean) / p.scale).clamp(0, 1)
    return (x01 * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def superpixel_players(model: ImageClassifier, x: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Superpixel labels ``(h, w)`` long, values ``0..P-1``, computed on ``x`` ``(3, h, w)``."""
    from vlx.regions.superpixels import slic_segments

    segs = slic_segments(to_pixels(model, x), n_segments)
    _, inv = np.unique(segs, return_inverse=True)
    return torch.from_numpy(inv.reshape(segs.shape).astype(np.int64)).to(x.device)


class PerturbationBase(AttributionMethod):
    """Scores masked copies of each image in chunks; subclasses supply masks and a reduction.

    Args:
        batch_size: masked inputs per forward pass (default: the model's, small on CPU, 64 on GPU).
        baseline: what masked pixels become: ``zero``, ``mean`` or ``blur``.
        seed: seed of any random sampling.
    """

    needs_gradients = False
    signed = True
    default_baseline = "zero"

    def __init__(self, batch_size: int | None = None, baseline: str | None = None, seed: int = 0,
                 **options: Any) -> None:
        super().__init__(batch_size=batch_size, baseline=baseline, seed=seed, **options)
        self.batch_size, self.seed = batch_size and int(batch_size), int(seed)
        self.baseline = baseline or self.default_baseline

    def prepare(self, model: ImageClassifier, x: torch.Tensor) -> dict[str, Any]:
        """Per-image state for ``x`` ``(1, 3, h, w)``; must hold ``n`` (the number of masks)."""
        raise NotImplementedError

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        """Masks ``i0..i1-1`` as ``(i1 - i0, 1, h, w)`` in ``[0, 1]`` (1 keeps the pixel)."""
        raise NotImplementedError

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        """Called with each chunk's masks ``(n, 1, h, w)`` and scores ``(n,)`` (default: nothing)."""

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        """The map ``(h', w')`` from mask scores ``(n,)``, the unmasked score and the baseline's score
        (0-d tensors)."""
        raise NotImplementedError

    @torch.no_grad()
    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        x = x.detach()
        maps = []
        for i in range(x.shape[0]):
            xi, ti = x[i:i + 1], target_rows(target, [i])
            base = make_baseline(xi, self.baseline)
            state = self.prepare(model, xi)
            ends = target_rows(ti, [0, 0]).score(model.logits(torch.cat([xi, base]))).float()
            scores = torch.empty(state["n"], dtype=torch.float32, device=x.device)
            bs = self.batch_size or model.batch_size
            for i0 in range(0, state["n"], bs):
                i1 = min(state["n"], i0 + bs)
                m = self.mask_chunk(state, i0, i1).to(x.dtype)
                xm = xi * m + base * (1 - m)
                scores[i0:i1] = target_rows(ti, [0] * (i1 - i0)).score(model.logits(xm)).float()
                self.observe(state, m, scores[i0:i1])
            maps.append(self.reduce(state, scores, ends[0], ends[1]))
        return torch.stack(maps)


@METHODS.register
class Occlusion(PerturbationBase):
    """Occlusion (Zeiler & Fergus 2014): slide a ``window`` square (all channels) with ``stride``
    over the input, replace it by the baseline, and give every pixel the mean score drop
    ``f(x) - f(x_occluded)`` of the windows covering it (as captum's ``Occlusion``; pixels no
    window covers get 0). ``(B, h, w)``, signed. Defaults: window ``h // 8``, stride half the window.
    """

    name = "occlusion"
    summary = "Occlusion: score drop when a sliding window is replaced by the baseline."

    def __init__(self, window: int | None = None, stride: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.options.update(window=window, stride=stride)
        self.window, self.stride = window, stride

    def prepare(self, model: ImageClassifier, x: torch.Tensor) -> dict[str, Any]:
        h, w = x.shape[-2:]
        win = self.window or max(1, min(h, w) // 8)
        st = self.stride or max(1, win // 2)
        ys = list(range(0, h - win + 1, st))
        xs = list(range(0, w - win + 1, st))
        pos = [(y, x0) for y in ys for x0 in xs]
        return {"n": len(pos), "pos": pos, "win": win, "hw": (h, w), "device": x.device}

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        win = state["win"]
        m = torch.ones((i1 - i0, 1, *state["hw"]), device=state["device"])
        for j, (y, x0) in enumerate(state["pos"][i0:i1]):
            m[j, :, y:y + win, x0:x0 + win] = 0
        return m

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        win = state["win"]
        total = torch.zeros(state["hw"], device=scores.device)
        count = torch.zeros(state["hw"], device=scores.device)
        for s, (y, x0) in zip((full - scores).tolist(), state["pos"]):
            total[y:y + win, x0:x0 + win] += s
            count[y:y + win, x0:x0 + win] += 1
        return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


@METHODS.register
class RISE(PerturbationBase):
    """RISE (Petsiuk et al. 2018): ``n_masks`` random binary ``grid × grid`` masks (keep probability
    ``p``), bilinearly upsampled with a random shift, weight the target score. We centre the scores
    (subtract their mean) before weighting: the map is the paper's ``E[s M] / p`` minus a constant,
    with lower variance, and stays meaningful for logits that can be negative. ``(B, h, w)``, signed.
    """

    name = "rise"
    summary = "RISE: random masks weighted by the target score."

    def __init__(self, n_masks: int = 1000, grid: int = 7, p: float = 0.5, **options: Any) -> None:
        super().__init__(**options)
        self.options.update(n_masks=n_masks, grid=grid, p=p)
        self.n_masks, self.grid, self.p = int(n_masks), int(grid), float(p)

    def prepare(self, model: ImageClassifier, x: torch.Tensor) -> dict[str, Any]:
        hw = tuple(x.shape[-2:])
        return {"n": self.n_masks, "hw": hw, "device": x.device,
                "gen": torch.Generator(device="cpu").manual_seed(self.seed),
                "sm": torch.zeros(hw, device=x.device), "m": torch.zeros(hw, device=x.device)}

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        state["sm"] += (scores[:, None, None] * masks[:, 0].float()).sum(0)
        state["m"] += masks[:, 0].float().sum(0)

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        h, w = state["hw"]
        n, g, gen = i1 - i0, self.grid, state["gen"]
        ch, cw = math.ceil(h / g), math.ceil(w / g)
        cells = (torch.rand((n, 1, g, g), generator=gen) < self.p).float()
        big = F.interpolate(cells, size=((g + 1) * ch, (g + 1) * cw), mode="bilinear", align_corners=False)
        dy = torch.randint(0, ch, (n,), generator=gen).tolist()
        dx = torch.randint(0, cw, (n,), generator=gen).tolist()
        m = torch.stack([big[j, :, dy[j]:dy[j] + h, dx[j]:dx[j] + w] for j in range(n)])
        return m.to(state["device"])

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        # sum_i (s_i - mean s) M_i = sum_i s_i M_i - mean(s) sum_i M_i: no mask is stored.
        centred = state["sm"] - scores.mean() * state["m"]
        return centred / (state["n"] * self.p)


class SuperpixelSurrogate(PerturbationBase):
    """Base of LIME and KernelSHAP: superpixels of the image are the players, a coalition keeps
    its players and replaces the others by the baseline, and a weighted linear model of the
    scores gives one value per player, painted on its pixels: ``(B, h, w)``, signed.

    Args:
        n_segments: SLIC's target number of superpixels (32).
        n_samples: coalitions scored per image (512).
    """

    default_baseline = "mean"

    def __init__(self, n_segments: int = 32, n_samples: int = 512, **options: Any) -> None:
        super().__init__(**options)
        self.options.update(n_segments=n_segments, n_samples=n_samples)
        self.n_segments, self.n_samples = int(n_segments), int(n_samples)

    def coalitions(self, n_players: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Coalitions ``(n, P)`` in {0, 1} and their regression weights ``(n,)``."""
        raise NotImplementedError

    def prepare(self, model: ImageClassifier, x: torch.Tensor) -> dict[str, Any]:
        players = superpixel_players(model, x[0], self.n_segments)
        n_players = int(players.max()) + 1
        z, wts = self.coalitions(n_players, torch.Generator(device="cpu").manual_seed(self.seed))
        return {"n": z.shape[0], "z": z.to(x.device), "w": wts.to(x.device), "players": players}

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        return state["z"][i0:i1].float()[:, state["players"]][:, None]

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        return self.solve(state["z"].double(), scores.double(), state["w"].double(),
                          full.double(), empty.double()).float()[state["players"]]

    def solve(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
        """Values per player ``(P,)`` from coalitions ``(n, P)``, scores ``(n,)`` and weights ``(n,)``."""
        raise NotImplementedError


def _wls(a: torch.Tensor, y: torch.Tensor, w: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """Weighted least squares ``argmin_b sum w (a b - y)^2 + ridge |b|^2`` (float64)."""
    aw = a * w[:, None]
    lhs = a.T @ aw
    # A vanishing ridge keeps the normal equations solvable when a player never varies; solve()
    # (LU) is deterministic where lstsq's drivers are not, to the last bit.
    jitter = 1e-10 * float(lhs.diagonal().mean().abs().clamp_min(1e-30))
    lhs = lhs + (ridge + jitter) * torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    return torch.linalg.solve(lhs, aw.T @ y[:, None])[:, 0]


@METHODS.register
class LIME(SuperpixelSurrogate):
    """LIME (Ribeiro et al. 2016) over superpixels: coalitions keep each player with probability
    1/2; weights ``exp(-d^2 / kernel_width^2)`` with ``d`` the cosine distance between the coalition
    and the full image; a ridge regression (``alpha=1``, with intercept, as lime's default) gives
    the values."""

    name = "lime"
    summary = "LIME: weighted linear surrogate over superpixels."

    def __init__(self, kernel_width: float = 0.25, ridge: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        self.options.update(kernel_width=kernel_width, ridge=ridge)
        self.kernel_width, self.ridge = float(kernel_width), float(ridge)

    def coalitions(self, n_players: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = (torch.rand((self.n_samples, n_players), generator=gen) < 0.5).long()
        z[0] = 1
        zf = z.double()
        cos = zf.sum(1) / (zf.norm(dim=1) * math.sqrt(n_players)).clamp_min(1e-12)
        d = 1 - cos
        return z, torch.exp(-(d ** 2) / self.kernel_width ** 2)

    def solve(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
        zc = z - (w[:, None] * z).sum(0) / w.sum()          # centring = an unpenalised intercept
        yc = y - (w * y).sum() / w.sum()
        return _wls(zc, yc, w, self.ridge)


@METHODS.register
class KernelSHAP(SuperpixelSurrogate):
    """KernelSHAP (Lundberg & Lee 2017) over superpixels. When ``2^P - 2 <= n_samples`` every
    coalition is enumerated with its Shapley-kernel weight ``(P-1) / (C(P,k) k (P-k))``, which
    gives the exact Shapley values; otherwise coalition sizes ``k`` are drawn with probability
    ``∝ (P-1) / (k (P-k))`` and players uniformly (antithetic pairs ``z``, ``1-z``), each with weight
    1. The efficiency constraint ``sum(phi) = f(x) - f(baseline)`` is imposed exactly by
    eliminating one player before the weighted least squares."""

    name = "kernelshap"
    summary = "KernelSHAP: Shapley values of superpixels by weighted least squares."

    def coalitions(self, n_players: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p = n_players
        if p < 2:
            return torch.ones((0, p), dtype=torch.long), torch.ones(0)
        if 2 ** p - 2 <= self.n_samples:
            codes = torch.arange(1, 2 ** p - 1)
            z = ((codes[:, None] >> torch.arange(p)) & 1).long()
            k = z.sum(1).double()
            w = (p - 1) / (torch.exp(torch.lgamma(torch.tensor(p + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1)
                                     - torch.lgamma(p - k + 1)) * k * (p - k))
            return z, w
        ks = torch.arange(1, p, dtype=torch.float64)
        probs = (p - 1) / (ks * (p - ks))
        half = (self.n_samples + 1) // 2
        k = torch.multinomial(probs / probs.sum(), half, replacement=True, generator=gen) + 1
        order = torch.rand((half, p), generator=gen).argsort(1)
        z = (order < k[:, None]).long()
        z = torch.cat([z, 1 - z])[: self.n_samples]
        return z, torch.ones(z.shape[0], dtype=torch.float64)

    def solve(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
        delta = full - empty
        if z.shape[1] < 2:
            return delta.reshape(1)
        yt = (y - empty) - z[:, -1] * delta
        a = z[:, :-1] - z[:, -1:]
        phi = _wls(a, yt, w)
        return torch.cat([phi, (delta - phi.sum()).reshape(1)])


@METHODS.register
class XRAI(AttributionMethod):
    """XRAI-style region ranking (Kapishnikov et al. 2019, simplified): superpixels at several
    scales are ranked by Integrated-Gradients mass density (sum of IG in the segment / its area);
    a segment of rank ``r`` among ``S`` gets ``(S - r) / S`` (1 for the best), segments with
    non-positive density get 0, and the scales are averaged. ``(B, h, w)`` in ``[0, 1]``.

    Unlike the paper's greedy region growing over overlapping segments, ranks are per scale and
    averaged: cheaper and deterministic; the ordering of strong regions is the same idea.

    Args:
        scales: SLIC segment counts (16, 32, 64).
        n_steps, batch_size: for Integrated Gradients.
    """

    name = "xrai"
    summary = "XRAI-style: superpixels ranked by Integrated-Gradients density."
    needs_gradients = True

    def __init__(self, scales: tuple[int, ...] = (16, 32, 64), n_steps: int = 32, batch_size: int | None = None,
                 **options: Any) -> None:
        super().__init__(scales=scales, n_steps=n_steps, batch_size=batch_size, **options)
        self.scales = tuple(int(s) for s in scales)
        self.ig = IntegratedGradients(n_steps=n_steps, batch_size=batch_size)

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        ig = self.ig.attribute(model, x, target)
        out = []
        for i in range(x.shape[0]):
            acc = torch.zeros_like(ig[i])
            for n_seg in self.scales:
                segs = superpixel_players(model, x[i], n_seg)
                n = int(segs.max()) + 1
                mass = torch.zeros(n, device=x.device).index_add_(0, segs.ravel(), ig[i].ravel())
                area = torch.bincount(segs.ravel(), minlength=n).float()
                dens = mass / area.clamp_min(1)
                rank = torch.empty(n, dtype=torch.long, device=x.device)
                rank[dens.argsort(descending=True, stable=True)] = torch.arange(n, device=x.device)
                score = torch.where(dens > 0, (n - rank).float() / n, torch.zeros_like(dens))
                acc += score[segs]
            out.append(acc / len(self.scales))
        return torch.stack(out)
