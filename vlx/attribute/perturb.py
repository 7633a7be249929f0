"""Perturbation (black-box) methods: occlusion, RISE, LIME, KernelSHAP, and XRAI.

Every method here works on any score function (``vlx.attribute.base.Scorer``): inputs
``(B, C, h, w)`` → scores ``(B, K)``. A method supplies masks (``mask_chunk``: which positions to
keep, ``(n, 1, h, w)`` in ``[0, 1]``) and turns the scores of the masked inputs into a map
(``reduce``). The base builds the masked inputs ``x * m + baseline * (1 - m)`` one chunk of
``batch_size`` at a time under ``torch.no_grad``, so memory stays flat in the number of samples.
Samples of a batch are explained one after the other with the same seed, so a sample's map never
depends on its batch mates; ``attribute_targets`` explains several targets of one input from the
same masked passes (the MLLM adapter explains every answer token at once).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vlx.attribute.base import AttributionMethod, Scorer
from vlx.attribute.gradient import target_rows
from vlx.errors import UsageError
from vlx.registry import METHODS
from vlx.types import Target


def make_baseline(x: torch.Tensor, kind: str) -> torch.Tensor:
    """The "removed" input for ``x`` ``(N, 3, h, w)``: ``vlx.evaluate.curves.baseline_tensor``
    (``zero``, ``mean`` or ``blur``, the one baseline implementation)."""
    from vlx.evaluate.curves import baseline_tensor

    return baseline_tensor(x, kind)


def to_pixels(model: Any, x: torch.Tensor) -> np.ndarray:
    """Model input ``(3, h, w)`` back to an RGB uint8 image ``(h, w, 3)`` (un-normalised with the
    model's preprocessing mean, std and scale)."""
    p = model.preprocess
    mean = torch.tensor(p.mean, device=x.device).view(3, 1, 1)
    std = torch.tensor(p.std, device=x.device).view(3, 1, 1)
    x01 = ((x.detach().float() * std + mean) / p.scale).clamp(0, 1)
    return (x01 * 255).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def superpixel_players(model: Any, x: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Superpixel labels ``(h, w)`` long, values ``0..P-1``, computed on ``x`` ``(3, h, w)``."""
    from vlx.regions.superpixels import slic_segments

    segs = slic_segments(to_pixels(model, x), n_segments)
    _, inv = np.unique(segs, return_inverse=True)
    return torch.from_numpy(inv.reshape(segs.shape).astype(np.int64)).to(x.device)


def players_of(model: Any, x: torch.Tensor, n_segments: int) -> torch.Tensor:
    """The players of input ``x`` ``(1, C, h, w)``: long labels ``(h, w)`` numbered ``0..P-1``
    (the scorer's ``players`` when it has one, else superpixels of the image)."""
    fn = getattr(model, "players", None)
    if fn is None:
        if getattr(model, "preprocess", None) is None:
            raise UsageError("this score function has no players; give it a players(x, n_segments) method")
        return superpixel_players(model, x[0], n_segments)
    labels = torch.as_tensor(fn(x, n_segments)).to(x.device).long()
    if tuple(labels.shape) != tuple(x.shape[-2:]):
        raise ValueError(f"players are {tuple(labels.shape)} but the input grid is {tuple(x.shape[-2:])}")
    _, inv = torch.unique(labels, return_inverse=True)
    return inv.reshape(labels.shape)


class PerturbationBase(AttributionMethod):
    """Scores masked copies of each input in chunks; subclasses supply masks and a reduction.

    After each call ``last_full`` and ``last_empty`` ``(B, T)`` hold the scores of the intact
    input and of the baseline.

    Args:
        batch_size: masked inputs per forward pass (default: the scorer's).
        baseline: what masked positions become: ``zero``, ``mean`` or ``blur``.
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
        self.last_full: torch.Tensor | None = None
        self.last_empty: torch.Tensor | None = None

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        """Per-input state for ``x`` ``(1, C, h, w)``; must hold ``n`` (the number of masks)."""
        raise NotImplementedError

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        """Masks ``i0..i1-1`` as ``(i1 - i0, 1, h, w)`` in ``[0, 1]`` (1 keeps the position)."""
        raise NotImplementedError

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        """Called with each chunk's masks ``(n, 1, h, w)`` and scores ``(n, T)`` (default: nothing)."""

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        """The maps ``(T, h', w')`` from mask scores ``(n, T)``, the unmasked scores ``(T,)`` and
        the baseline's ``(T,)``."""
        raise NotImplementedError

    def outputs(self, model: Scorer, x: torch.Tensor) -> torch.Tensor:
        """What the targets read from the scorer's ``(B, K)`` outputs (default: them as they are)."""
        return model.logits(x)

    def _scores(self, model: Scorer, x: torch.Tensor, targets: list[Target]) -> torch.Tensor:
        out = self.outputs(model, x)
        rows = [0] * x.shape[0]
        return torch.stack([target_rows(t, rows).score(out).float() for t in targets], 1)

    @torch.no_grad()
    def attribute_targets(self, model: Scorer, x: torch.Tensor, targets: list[Target]) -> torch.Tensor:
        """Maps ``(T, h', w')`` of one input ``x`` ``(1, C, h, w)`` for each of ``targets``
        (single-sample targets), every masked input scored once for all of them."""
        x = x.detach()
        base = make_baseline(x, self.baseline)
        ends = self._scores(model, torch.cat([x, base]), targets)
        state = self.prepare(model, x)
        state["full"], state["empty"] = ends[0], ends[1]
        scores = torch.empty((state["n"], len(targets)), dtype=torch.float32, device=x.device)
        bs = self.batch_size or model.batch_size
        for i0 in range(0, state["n"], bs):
            i1 = min(state["n"], i0 + bs)
            m = self.mask_chunk(state, i0, i1).to(x.dtype)
            scores[i0:i1] = self._scores(model, x * m + base * (1 - m), targets)
            self.observe(state, m, scores[i0:i1])
        self.last_full, self.last_empty = ends[0][None], ends[1][None]
        return self.reduce(state, scores, ends[0], ends[1])

    def attribute(self, model: Scorer, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        maps, full, empty = [], [], []
        for i in range(x.shape[0]):
            maps.append(self.attribute_targets(model, x[i:i + 1], [target_rows(target, [i])])[0])
            full.append(self.last_full)
            empty.append(self.last_empty)
        self.last_full, self.last_empty = torch.cat(full), torch.cat(empty)
        return torch.stack(maps)


@METHODS.register
class Occlusion(PerturbationBase):
    """Occlusion (Zeiler & Fergus 2014): replace one region at a time by the baseline and give
    every position the mean score drop ``f(x) - f(x_occluded)`` of the regions covering it
    (positions no region covers get 0). ``(B, h, w)``, signed.

    Regions: ``windows`` (default, as captum's ``Occlusion``): a ``window`` square (all channels)
    slid with ``stride`` (defaults: ``h // 8``, half the window); ``players``: each player of the
    scorer (superpixels of ``n_segments`` for an image classifier; image regions, tiles or
    support superpixels for the MLLM and few-shot adapters) removed on its own, as captum's
    ``FeatureAblation``.
    """

    name = "occlusion"
    summary = "Occlusion: score drop when a sliding window (or each player) is replaced by the baseline."

    def __init__(self, window: int | None = None, stride: int | None = None, regions: str = "windows",
                 n_segments: int = 32, **options: Any) -> None:
        super().__init__(**options)
        if regions not in ("windows", "players"):
            raise UsageError(f"unknown occlusion regions {regions!r}; use windows or players")
        self.options.update(window=window, stride=stride, regions=regions, n_segments=n_segments)
        self.window, self.stride, self.regions, self.n_segments = window, stride, regions, int(n_segments)

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        h, w = x.shape[-2:]
        state: dict[str, Any] = {"hw": (h, w), "device": x.device,
                                 "total": None, "count": torch.zeros((h, w), device=x.device)}
        if self.regions == "players":
            state["players"] = players_of(model, x, self.n_segments)
            state["n"] = int(state["players"].max()) + 1
            return state
        win = self.window or max(1, min(h, w) // 8)
        st = self.stride or max(1, win // 2)
        pos = [(y, x0) for y in range(0, h - win + 1, st) for x0 in range(0, w - win + 1, st)]
        state.update(n=len(pos), pos=pos, win=win)
        return state

    def region_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        """Regions ``i0..i1-1`` as float ``(n, h, w)`` in {0, 1} (1 = occluded)."""
        if "players" in state:
            ids = torch.arange(i0, i1, device=state["device"])
            return (state["players"][None] == ids[:, None, None]).float()
        win = state["win"]
        r = torch.zeros((i1 - i0, *state["hw"]), device=state["device"])
        for j, (y, x0) in enumerate(state["pos"][i0:i1]):
            r[j, y:y + win, x0:x0 + win] = 1
        return r

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        return 1 - self.region_chunk(state, i0, i1)[:, None]

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        r = 1 - masks[:, 0].float()
        drops = state["full"][None] - scores                               # (n, T)
        add = torch.einsum("nt,nhw->thw", drops, r)
        state["total"] = add if state["total"] is None else state["total"] + add
        state["count"] += r.sum(0)

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        count = state["count"]
        if state["total"] is None:
            return torch.zeros((len(full), *state["hw"]), device=count.device)
        return torch.where(count > 0, state["total"] / count.clamp_min(1), torch.zeros_like(state["total"]))


@METHODS.register
class RISE(PerturbationBase):
    """RISE (Petsiuk et al. 2018): ``n_masks`` random binary ``grid × grid`` masks (keep probability
    ``p``), bilinearly upsampled with a random shift, weight the target's score ``s``: the paper's
    estimator is ``S = sum_i s_i M_i / (N p)``.

    ``score``: ``probability`` (default, as the paper: the softmax probability of the target) or
    ``logit`` (the raw target score). ``centre`` (default ``True``): subtract the mean score before
    weighting, i.e. ``sum_i (s_i - mean s) M_i / (N p)``; its expectation is the paper's map minus
    the constant ``E[s]``, with lower variance, and it stays meaningful for scores that can be
    negative; signed. ``centre=False`` gives the paper's estimator as it is. ``(B, h, w)``.
    """

    name = "rise"
    summary = "RISE: random masks weighted by the target's probability."

    def __init__(self, n_masks: int = 1000, grid: int = 7, p: float = 0.5, score: str = "probability",
                 centre: bool = True, **options: Any) -> None:
        super().__init__(**options)
        if score not in ("probability", "logit"):
            raise UsageError(f"unknown RISE score {score!r}; use probability or logit")
        self.options.update(n_masks=n_masks, grid=grid, p=p, score=score, centre=centre)
        self.n_masks, self.grid, self.p, self.score, self.centre = int(n_masks), int(grid), float(p), score, bool(centre)
        self.signed = self.centre or score == "logit"

    def outputs(self, model: Scorer, x: torch.Tensor) -> torch.Tensor:
        out = model.logits(x)
        return out.float().softmax(-1) if self.score == "probability" else out

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        hw = tuple(x.shape[-2:])
        return {"n": self.n_masks, "hw": hw, "device": x.device,
                "gen": torch.Generator(device="cpu").manual_seed(self.seed),
                "sm": None, "m": torch.zeros(hw, device=x.device)}

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        add = torch.einsum("nt,nhw->thw", scores, masks[:, 0].float())
        state["sm"] = add if state["sm"] is None else state["sm"] + add
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
        sm = state["sm"]
        if self.centre:
            # sum_i (s_i - mean s) M_i = sum_i s_i M_i - mean(s) sum_i M_i: no mask is stored.
            sm = sm - scores.mean(0)[:, None, None] * state["m"]
        return sm / (state["n"] * self.p)


class SuperpixelSurrogate(PerturbationBase):
    """Base of LIME and KernelSHAP: the scorer's players (superpixels of the image by default)
    play; a coalition keeps its players and replaces the others by the baseline, and a weighted
    linear model of the scores gives one value per player, painted on its positions:
    ``(B, h, w)``, signed.

    Args:
        n_segments: SLIC's target number of superpixels (32).
        n_samples: coalitions scored per input (512).
    """

    default_baseline = "mean"

    def __init__(self, n_segments: int = 32, n_samples: int = 512, **options: Any) -> None:
        super().__init__(**options)
        self.options.update(n_segments=n_segments, n_samples=n_samples)
        self.n_segments, self.n_samples = int(n_segments), int(n_samples)

    def coalitions(self, n_players: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Coalitions ``(n, P)`` in {0, 1} and their regression weights ``(n,)``."""
        raise NotImplementedError

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        players = players_of(model, x, self.n_segments)
        n_players = int(players.max()) + 1
        z, wts = self.coalitions(n_players, torch.Generator(device="cpu").manual_seed(self.seed))
        return {"n": z.shape[0], "z": z.to(x.device), "w": wts.to(x.device), "players": players}

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        return state["z"][i0:i1].float()[:, state["players"]][:, None]

    def reduce(self, state: dict[str, Any], scores: torch.Tensor, full: torch.Tensor,
               empty: torch.Tensor) -> torch.Tensor:
        phi = self.solve(state["z"].double(), scores.double(), state["w"].double(), full.double(), empty.double())
        return phi.float().T[:, state["players"]]

    def solve(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
        """Values per player ``(P, T)`` from coalitions ``(n, P)``, scores ``(n, T)``, weights
        ``(n,)`` and the full/empty scores ``(T,)`` (1-D scores ``(n,)`` give ``(P,)``)."""
        raise NotImplementedError


def _wls(a: torch.Tensor, y: torch.Tensor, w: torch.Tensor, ridge: float = 0.0) -> torch.Tensor:
    """Weighted least squares ``argmin_b sum w (a b - y)^2 + ridge |b|^2`` (float64); ``y`` ``(n,)``
    or ``(n, T)`` (one column per target) gives ``b`` ``(P,)`` or ``(P, T)``."""
    aw = a * w[:, None]
    lhs = a.T @ aw
    # A vanishing ridge keeps the normal equations solvable when a player never varies; solve()
    # (LU) is deterministic where lstsq's drivers are not, to the last bit.
    jitter = 1e-10 * float(lhs.diagonal().mean().abs().clamp_min(1e-30))
    lhs = lhs + (ridge + jitter) * torch.eye(a.shape[1], dtype=a.dtype, device=a.device)
    return torch.linalg.solve(lhs, aw.T @ y)


@METHODS.register
class LIME(SuperpixelSurrogate):
    """LIME (Ribeiro et al. 2016) over players: coalitions keep each player with probability 1/2
    (the first keeps all); weights ``exp(-d^2 / kernel_width^2)`` with ``d`` the cosine distance
    between the coalition and the full input; a ridge regression (``alpha=1``, with an
    unpenalised intercept, as lime's default) gives the values."""

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
        # Weighted centring of z = an unpenalised intercept; y needs no centring, as sum_i w_i zc_i = 0.
        zc = z - (w[:, None] * z).sum(0) / w.sum()
        return _wls(zc, y, w, self.ridge)


@METHODS.register
class KernelSHAP(SuperpixelSurrogate):
    """KernelSHAP (Lundberg & Lee 2017) over players. When ``2^P - 2 <= n_samples`` every
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
        one = y.dim() == 1
        y2 = y[:, None] if one else y
        delta = (full - empty).reshape(-1)                                 # (T,)
        if z.shape[1] < 2:
            phi = delta.reshape(1, -1)
        else:
            yt = (y2 - empty.reshape(1, -1)) - z[:, -1:] * delta[None]
            head = _wls(z[:, :-1] - z[:, -1:], yt, w)                      # (P-1, T)
            phi = torch.cat([head, (delta - head.sum(0))[None]])
        return phi[:, 0] if one else phi
