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

from vlx.attribute import sampling
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

    After each call ``last_info`` holds one dict per input: ``samples`` (masked inputs scored,
    besides the intact input and the baseline) and, for the sampled methods, ``max_samples``,
    ``stderr`` (the largest standard error of the map, score units), ``tolerance`` and ``converged``.
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

    def converged(self, state: dict[str, Any], i0: int, i1: int, full: torch.Tensor, empty: torch.Tensor) -> bool:
        """Whether to stop after masks ``i0..i1-1`` were scored (default: never; the methods with a
        ``tolerance`` stop early, ``vlx.attribute.sampling.Tolerance``)."""
        return False

    @torch.no_grad()
    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        x = x.detach()
        maps, infos = [], []
        for i in range(x.shape[0]):
            xi, ti = x[i:i + 1], target_rows(target, [i])
            base = make_baseline(xi, self.baseline)
            state = self.prepare(model, xi)
            ends = target_rows(ti, [0, 0]).score(model.logits(torch.cat([xi, base]))).float()
            scores = torch.empty(state["n"], dtype=torch.float32, device=x.device)
            bs = self.batch_size or model.batch_size
            used = state["n"]
            for i0 in range(0, state["n"], bs):
                i1 = min(state["n"], i0 + bs)
                m = self.mask_chunk(state, i0, i1).to(x.dtype)
                xm = xi * m + base * (1 - m)
                scores[i0:i1] = target_rows(ti, [0] * (i1 - i0)).score(model.logits(xm)).float()
                self.observe(state, m, scores[i0:i1])
                if self.converged(state, i0, i1, ends[0], ends[1]):
                    used = i1
                    break
            maps.append(self.reduce(state, scores[:used], ends[0], ends[1]))
            infos.append({"samples": used, **state.get("info", {})})
        self.last_info = infos
        return torch.stack(maps)


@METHODS.register("occlusion")
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


@METHODS.register("rise")
class RISE(PerturbationBase):
    """RISE (Petsiuk et al. 2018): ``n_masks`` random binary ``grid × grid`` masks (keep probability
    ``p``), bilinearly upsampled with a random shift, weight the target score. We centre the scores
    (subtract their mean) before weighting: the map is the paper's ``E[s M] / p`` minus a constant,
    with lower variance, and stays meaningful for logits that can be negative. ``(B, h, w)``, signed.

    ``sampler="sobol"`` (default) draws cells and shifts from scrambled Sobol' points, which reach
    the error of ``iid`` masks with about half the masks (``vlx.attribute.sampling``). With a
    ``tolerance`` (score units), sampling stops once the largest per-pixel standard error is at
    most it (checked every ``block`` masks); ``n_masks`` is then the most it may use.
    """

    name = "rise"
    summary = "RISE: random masks weighted by the target score."

    def __init__(self, n_masks: int = 1000, grid: int = 7, p: float = 0.5, sampler: str = "sobol",
                 tolerance: float | None = None, block: int = 128, **options: Any) -> None:
        super().__init__(**options)
        if sampler not in ("sobol", "iid"):
            raise ValueError(f"unknown RISE sampler {sampler!r}; use sobol or iid")
        self.options.update(n_masks=n_masks, grid=grid, p=p, sampler=sampler, tolerance=tolerance, block=block)
        self.n_masks, self.grid, self.p, self.sampler = int(n_masks), int(grid), float(p), sampler
        self.stop = sampling.Tolerance(tolerance, int(block), min_samples=2 * int(block))

    def prepare(self, model: ImageClassifier, x: torch.Tensor) -> dict[str, Any]:
        hw = tuple(x.shape[-2:])
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        block = self.stop.block if self.stop.tolerance is not None else None
        u = sampling.rise_points(self.n_masks, self.grid ** 2 + 2, gen, self.sampler, block)
        return {"n": self.n_masks, "hw": hw, "device": x.device, "u": u, "acc": sampling.MaskMoments()}

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        state["acc"].update(masks, scores)

    def converged(self, state: dict[str, Any], i0: int, i1: int, full: torch.Tensor, empty: torch.Tensor) -> bool:
        return self.stop.due(i0, i1) and self.stop.met(state["acc"].stderr(self.p, centred=True))

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        h, w = state["hw"]
        n, g = i1 - i0, self.grid
        ch, cw = math.ceil(h / g), math.ceil(w / g)
        cells, dy, dx = sampling.rise_cells(state["u"][i0:i1], g, self.p, (ch, cw))
        big = F.interpolate(cells, size=((g + 1) * ch, (g + 1) * cw), mode="bilinear", align_corners=False)
        m = torch.stack([big[j, :, dy[j]:dy[j] + h, dx[j]:dx[j] + w] for j in range(n)])
        return m.to(state["device"])

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        acc = state["acc"]
        state["info"] = {"max_samples": self.n_masks, "stderr": float(acc.stderr(self.p, centred=True).max()),
                         "tolerance": self.stop.tolerance, "sampler": self.sampler,
                         "converged": self.stop.met(acc.stderr(self.p, centred=True))
                         if self.stop.tolerance is not None else None}
        return acc.map(self.p, centred=True)[0].float().to(scores.device)


class SuperpixelSurrogate(PerturbationBase):
    """Base of LIME and KernelSHAP: superpixels of the image are the players, a coalition keeps
    its players and replaces the others by the baseline, and a weighted linear model of the
    scores gives one value per player, painted on its pixels: ``(B, h, w)``, signed.

    Each method's weighting depends on coalition sizes only (its ``layer_mass``). ``sampler``:
    ``paired`` (default) draws complementary pairs with sizes stratified and post-stratified
    weights (``vlx.attribute.sampling.coalition_design``); ``iid`` draws coalitions independently
    as the method's paper (and captum) do.

    Args:
        n_segments: SLIC's target number of superpixels (32).
        n_samples: coalitions scored per image (512); the most used when ``tolerance`` is set.
        tolerance: stop once every player's standard error is at most this (score units), checked
            every ``block`` coalitions (each block a design of its own); None: use ``n_samples``.
    """

    default_baseline = "mean"
    samplers = ("paired", "iid")

    def __init__(self, n_segments: int = 32, n_samples: int = 512, sampler: str = "paired",
                 tolerance: float | None = None, block: int = 128, **options: Any) -> None:
        super().__init__(**options)
        if sampler not in self.samplers:
            raise ValueError(f"unknown {self.name} sampler {sampler!r}; use {', '.join(self.samplers)}")
        self.options.update(n_segments=n_segments, n_samples=n_samples, sampler=sampler, tolerance=tolerance,
                            block=block)
        self.n_segments, self.n_samples, self.sampler = int(n_segments), int(n_samples), sampler
        self.stop = sampling.Tolerance(tolerance, int(block), min_samples=2 * int(block))

    def layer_mass(self, n_players: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        """The method's layer mass ``(P + 1,)``, the sizes' allocation ``(P + 1,)`` of the paired
        design, and the weight scale (see ``vlx.attribute.sampling``)."""
        raise NotImplementedError

    def iid_coalitions(self, n_players: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` independent coalitions ``(n, P)`` and their regression weights ``(n,)``."""
        raise NotImplementedError

    def coalitions(self, n_players: int, gen: torch.Generator, n: int | None = None,
                   block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Coalitions ``(n, P)`` in {0, 1} and their regression weights ``(n,)`` (``n``: ``n_samples``;
        ``block``: rows per independent design block)."""
        n = self.n_samples if n is None else n
        if self.sampler == "iid":
            return self.iid_coalitions(n_players, n, gen)
        mass, alloc, scale = self.layer_mass(n_players)
        z = sampling.blocked_design(mass, n, block or max(n, 1), gen, alloc)
        return z, sampling.design_weights(z, mass) * scale

    def weights(self, z: torch.Tensor, w_full: torch.Tensor, n_players: int) -> torch.Tensor:
        """Weights ``(n,)`` of the first ``n`` design rows ``z`` (post-stratified on that prefix)."""
        if self.sampler == "iid" or len(z) == len(w_full):
            return w_full[:len(z)]
        mass, _, scale = self.layer_mass(n_players)
        return sampling.design_weights(z, mass) * scale

    def prepare(self, model: ImageClassifier, x: torch.Tensor) -> dict[str, Any]:
        players = superpixel_players(model, x[0], self.n_segments)
        n_players = int(players.max()) + 1
        block = self.stop.block if self.stop.tolerance is not None else None
        z, wts = self.coalitions(n_players, torch.Generator(device="cpu").manual_seed(self.seed), block=block)
        return {"n": z.shape[0], "z": z.to(x.device), "w": wts.to(x.device), "players": players,
                "p": n_players, "y": []}

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        return state["z"][i0:i1].float()[:, state["players"]][:, None]

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        state["y"].append(scores.detach().double().cpu())

    def _fit(self, state: dict[str, Any], y: torch.Tensor, full: torch.Tensor,
             empty: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = state["z"][:len(y)].cpu()
        w = self.weights(z, state["w"].cpu(), state["p"])
        if self.sampler == "iid":
            design = None
        else:
            design = sampling.design_strata(z, self.stop.block if self.stop.tolerance is not None else len(state["z"]))
        return self.fit(z.double(), y.double(), w.double(), full.double().cpu(), empty.double().cpu(), design)

    def converged(self, state: dict[str, Any], i0: int, i1: int, full: torch.Tensor, empty: torch.Tensor) -> bool:
        if not self.stop.due(i0, i1):
            return False
        return self.stop.met(self._fit(state, torch.cat(state["y"]), full, empty)[1])

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        values, se = self._fit(state, scores.double().cpu(), full, empty)
        state["info"] = {"max_samples": self.n_samples, "stderr": float(se.max()) if len(se) else 0.0,
                         "tolerance": self.stop.tolerance, "sampler": self.sampler,
                         "converged": self.stop.met(se) if self.stop.tolerance is not None else None}
        return values.float().to(scores.device)[state["players"]]

    def fit(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor, empty: torch.Tensor,
            design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Values per player ``(P,)`` and their standard errors ``(P,)`` from coalitions ``(n, P)``,
        scores ``(n,)`` and weights ``(n,)`` (float64; ``design``: the rows' clusters or ``sampling.Strata``, for the standard errors)."""
        raise NotImplementedError

    def solve(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
        """Values per player ``(P,)`` from coalitions ``(n, P)``, scores ``(n,)`` and weights ``(n,)``."""
        return self.fit(z, y, w, full, empty)[0]


@METHODS.register("lime")
class LIME(SuperpixelSurrogate):
    """LIME (Ribeiro et al. 2016) over superpixels: coalitions keep each player with probability
    1/2; weights ``exp(-d^2 / kernel_width^2)`` with ``d`` the cosine distance between the coalition
    and the full image; a ridge regression (``alpha=1``, with intercept, as lime's default) gives
    the values. The ``paired`` sampler draws sizes in proportion to (binomial × kernel) and weighs
    them back, so the weighted regression has the same expectation with fewer wasted samples."""

    name = "lime"
    summary = "LIME: weighted linear surrogate over superpixels."

    def __init__(self, kernel_width: float = 0.25, ridge: float = 1.0, **options: Any) -> None:
        super().__init__(**options)
        self.options.update(kernel_width=kernel_width, ridge=ridge)
        self.kernel_width, self.ridge = float(kernel_width), float(ridge)

    def layer_mass(self, n_players: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        mass, scale = sampling.lime_mass(n_players, self.kernel_width)
        return mass, mass, scale

    def iid_coalitions(self, n_players: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        z = (torch.rand((n, n_players), generator=gen) < 0.5).long()
        if n:
            z[0] = 1
        return z, sampling.lime_kernel(z.sum(1), n_players, self.kernel_width)

    def fit(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor, empty: torch.Tensor,
            design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        return sampling.ridge_solve(z, y, w, self.ridge, design)


@METHODS.register("kernelshap")
class KernelSHAP(SuperpixelSurrogate):
    """KernelSHAP (Lundberg & Lee 2017) over superpixels. Coalition sizes ``k`` carry the Shapley
    kernel's mass ``∝ (P-1) / (k (P-k))``. ``paired`` (default): complementary pairs, sizes
    stratified, small sizes enumerated when the budget covers them (every coalition when
    ``2^P - 2 <= n_samples``, which gives the exact Shapley values); ``leverage``: the same with
    sizes allocated uniformly and weighted back (Musco & Witter 2024); ``iid``: sizes drawn
    independently, weight 1 (as captum). The efficiency constraint ``sum(phi) = f(x) -
    f(baseline)`` is imposed exactly by eliminating one player before the weighted least squares."""

    name = "kernelshap"
    summary = "KernelSHAP: Shapley values of superpixels by weighted least squares."
    samplers = ("paired", "leverage", "iid")

    def layer_mass(self, n_players: int) -> tuple[torch.Tensor, torch.Tensor, float]:
        mass = sampling.shapley_mass(n_players)
        alloc = (mass > 0).double() if self.sampler == "leverage" else mass
        return mass, alloc, 1.0

    def coalitions(self, n_players: int, gen: torch.Generator, n: int | None = None,
                   block: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if n_players < 2:
            return torch.ones((0, n_players), dtype=torch.long), torch.ones(0, dtype=torch.float64)
        return super().coalitions(n_players, gen, n, block)

    def iid_coalitions(self, n_players: int, n: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        mass = sampling.shapley_mass(n_players)
        k = torch.multinomial(mass, n, replacement=True, generator=gen) if n else torch.zeros(0, dtype=torch.long)
        z = (torch.rand((n, n_players), generator=gen).argsort(1).argsort(1) < k[:, None]).long()
        return z, torch.ones(n, dtype=torch.float64)

    def weights(self, z: torch.Tensor, w_full: torch.Tensor, n_players: int) -> torch.Tensor:
        if n_players < 2:
            return w_full[:len(z)]
        return super().weights(z, w_full, n_players)

    def fit(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor, empty: torch.Tensor,
            design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        return sampling.shapley_solve(z, y, w, float(full), float(empty), design)


@METHODS.register("xrai")
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
