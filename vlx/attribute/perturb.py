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

from vlx.attribute import sampling
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
    input and of the baseline, and ``last_info`` one dict per input: ``samples`` (masked inputs
    scored, besides the intact input and the baseline) and, for the sampled methods,
    ``max_samples``, ``stderr`` (the largest standard error of the maps over positions and
    targets, score units), ``tolerance``, ``converged`` (None without a tolerance) and ``sampler``.

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
        self.last_info: list[dict[str, Any]] = []

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        """Per-input state for ``x`` ``(1, C, h, w)``; must hold ``n`` (the number of masks)."""
        raise NotImplementedError

    def mask_chunk(self, state: dict[str, Any], i0: int, i1: int) -> torch.Tensor:
        """Masks ``i0..i1-1`` as ``(i1 - i0, 1, h, w)`` in ``[0, 1]`` (1 keeps the position)."""
        raise NotImplementedError

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        """Called with each chunk's masks ``(n, 1, h, w)`` and scores ``(n, T)`` (default: nothing)."""

    def converged(self, state: dict[str, Any], i0: int, i1: int, full: torch.Tensor, empty: torch.Tensor) -> bool:
        """Whether to stop after masks ``i0..i1-1`` were scored (``full``, ``empty``: ``(T,)``;
        default: never; the methods with a ``tolerance`` stop early, ``vlx.attribute.sampling.Tolerance``)."""
        return False

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
        used = state["n"]
        for i0 in range(0, state["n"], bs):
            i1 = min(state["n"], i0 + bs)
            m = self.mask_chunk(state, i0, i1).to(x.dtype)
            scores[i0:i1] = self._scores(model, x * m + base * (1 - m), targets)
            self.observe(state, m, scores[i0:i1])
            if self.converged(state, i0, i1, ends[0], ends[1]):
                used = i1
                break
        self.last_full, self.last_empty = ends[0][None], ends[1][None]
        maps = self.reduce(state, scores[:used], ends[0], ends[1])
        self.last_info = [{"samples": used, **state.get("info", {})}]
        return maps

    def attribute(self, model: Scorer, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        maps, full, empty, infos = [], [], [], []
        for i in range(x.shape[0]):
            maps.append(self.attribute_targets(model, x[i:i + 1], [target_rows(target, [i])])[0])
            full.append(self.last_full)
            empty.append(self.last_empty)
            infos.extend(self.last_info)
        self.last_full, self.last_empty, self.last_info = torch.cat(full), torch.cat(empty), infos
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

    ``sampler="sobol"`` (default) draws cells and shifts from scrambled Sobol' points, which reach
    the error of ``iid`` masks with about half the masks (``vlx.attribute.sampling``). With a
    ``tolerance`` (score units), sampling stops once the largest per-pixel standard error (over
    all targets) is at most it, checked every ``block`` masks; ``n_masks`` is then the most it may
    use.
    """

    name = "rise"
    summary = "RISE: random masks weighted by the target's probability."

    def __init__(self, n_masks: int = 1000, grid: int = 7, p: float = 0.5, score: str = "probability",
                 centre: bool = True, sampler: str = "sobol", tolerance: float | None = None, block: int = 128,
                 **options: Any) -> None:
        super().__init__(**options)
        if score not in ("probability", "logit"):
            raise UsageError(f"unknown RISE score {score!r}; use probability or logit")
        if sampler not in ("sobol", "iid"):
            raise UsageError(f"unknown RISE sampler {sampler!r}; use sobol or iid")
        self.options.update(n_masks=n_masks, grid=grid, p=p, score=score, centre=centre, sampler=sampler,
                            tolerance=tolerance, block=block)
        self.n_masks, self.grid, self.p, self.score, self.centre = int(n_masks), int(grid), float(p), score, bool(centre)
        self.sampler = sampler
        self.stop = sampling.Tolerance(tolerance, int(block), min_samples=2 * int(block))
        self.signed = self.centre or score == "logit"

    def outputs(self, model: Scorer, x: torch.Tensor) -> torch.Tensor:
        out = model.logits(x)
        return out.float().softmax(-1) if self.score == "probability" else out

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        hw = tuple(x.shape[-2:])
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        block = self.stop.block if self.stop.tolerance is not None else None
        u = sampling.rise_points(self.n_masks, self.grid ** 2 + 2, gen, self.sampler, block)
        return {"n": self.n_masks, "hw": hw, "device": x.device, "u": u, "acc": sampling.MaskMoments()}

    def observe(self, state: dict[str, Any], masks: torch.Tensor, scores: torch.Tensor) -> None:
        state["acc"].update(masks, scores)

    def converged(self, state: dict[str, Any], i0: int, i1: int, full: torch.Tensor, empty: torch.Tensor) -> bool:
        return self.stop.due(i0, i1) and self.stop.met(state["acc"].stderr(self.p, centred=self.centre))

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
        if acc.n == 0:
            return torch.zeros((len(full), *state["hw"]), device=scores.device)
        se = acc.stderr(self.p, centred=self.centre)
        state["info"] = {"max_samples": self.n_masks, "stderr": float(se.max()), "tolerance": self.stop.tolerance,
                         "sampler": self.sampler,
                         "converged": self.stop.met(se) if self.stop.tolerance is not None else None}
        # (T, h, w): sum_i (s_i - c) M_i / (n p) from running sums, no mask stored.
        return acc.map(self.p, centred=self.centre).float().to(scores.device)


class SuperpixelSurrogate(PerturbationBase):
    """Base of LIME and KernelSHAP: the scorer's players (superpixels of the image by default)
    play; a coalition keeps its players and replaces the others by the baseline, and a weighted
    linear model of the scores gives one value per player, painted on its positions:
    ``(B, h, w)``, signed.

    Each method's weighting depends on coalition sizes only (its ``layer_mass``). ``sampler``:
    ``paired`` (default) draws complementary pairs with sizes stratified and post-stratified
    weights (``vlx.attribute.sampling.coalition_design``); ``iid`` draws coalitions independently
    as the method's paper (and captum) do.

    Args:
        n_segments: SLIC's target number of superpixels (32).
        n_samples: coalitions scored per input (512); the most used when ``tolerance`` is set.
        tolerance: stop once every player's standard error (for every target) is at most this
            (score units), checked every ``block`` coalitions (each block a design of its own);
            None: use ``n_samples``.
    """

    default_baseline = "mean"
    samplers = ("paired", "iid")

    def __init__(self, n_segments: int = 32, n_samples: int = 512, sampler: str = "paired",
                 tolerance: float | None = None, block: int = 128, **options: Any) -> None:
        super().__init__(**options)
        if sampler not in self.samplers:
            raise UsageError(f"unknown {self.name} sampler {sampler!r}; use {', '.join(self.samplers)}")
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
        # A design shorter than the budget (enumerated size classes) stands for ``n`` draws: its
        # weights sum to what ``n`` i.i.d. draws' would, so LIME's ridge keeps its meaning.
        return z, sampling.design_weights(z, mass) * scale * (n / max(len(z), 1))

    def weights(self, z: torch.Tensor, w_full: torch.Tensor, n_players: int) -> torch.Tensor:
        """Weights ``(n,)`` of the first ``n`` design rows ``z`` (post-stratified on that prefix)."""
        if self.sampler == "iid" or len(z) == len(w_full):
            return w_full[:len(z)]
        mass, _, scale = self.layer_mass(n_players)
        return sampling.design_weights(z, mass) * scale * (self.n_samples / max(len(w_full), 1))

    def prepare(self, model: Scorer, x: torch.Tensor) -> dict[str, Any]:
        players = players_of(model, x, self.n_segments)
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
        """Values and standard errors ``(P, T)`` from the first ``len(y)`` coalitions' scores ``(n, T)``."""
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
        values, se = self._fit(state, scores.double().cpu(), full, empty)          # (P, T) each
        state["info"] = {"max_samples": self.n_samples, "stderr": float(se.max()),
                         "tolerance": self.stop.tolerance, "sampler": self.sampler,
                         "converged": self.stop.met(se) if self.stop.tolerance is not None else None}
        return values.float().to(scores.device).T[:, state["players"]]

    def fit_one(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: float, empty: float,
                design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(P,)`` and standard errors ``(P,)`` of one target: scores ``y`` ``(n,)``."""
        raise NotImplementedError

    def fit(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor, empty: torch.Tensor,
            design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Values per player and their standard errors from coalitions ``(n, P)``, scores ``(n, T)``
        (or ``(n,)``), weights ``(n,)`` and the full/empty scores ``(T,)`` (or 0-d): ``(P, T)`` each
        (``(P,)`` for 1-D scores). float64; ``design``: the rows' clusters or ``sampling.Strata``, for
        the standard errors. Each target is fitted on its own (the same design and weights)."""
        one = y.dim() == 1
        y2 = y[:, None] if one else y
        full, empty = full.reshape(-1), empty.reshape(-1)
        fits = [self.fit_one(z, y2[:, t], w, float(full[t]), float(empty[t]), design) for t in range(y2.shape[1])]
        values = torch.stack([f[0] for f in fits], 1) if fits else torch.zeros((z.shape[1], 0), dtype=torch.float64)
        se = torch.stack([f[1] for f in fits], 1) if fits else torch.zeros((z.shape[1], 0), dtype=torch.float64)
        return (values[:, 0], se[:, 0]) if one else (values, se)

    def solve(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: torch.Tensor,
              empty: torch.Tensor) -> torch.Tensor:
        """Values per player ``(P, T)`` from coalitions ``(n, P)``, scores ``(n, T)``, weights
        ``(n,)`` and the full/empty scores ``(T,)`` (1-D scores ``(n,)`` give ``(P,)``)."""
        return self.fit(z, y, w, full, empty)[0]


@METHODS.register
class LIME(SuperpixelSurrogate):
    """LIME (Ribeiro et al. 2016) over players: coalitions keep each player with probability 1/2
    (with ``sampler="iid"`` the first keeps all); weights ``exp(-d^2 / kernel_width^2)`` with ``d``
    the cosine distance between the coalition and the full input; a ridge regression (``alpha=1``,
    with an unpenalised intercept, as lime's default) gives the values. The ``paired`` sampler
    (default) draws sizes in proportion to (binomial × kernel) and weighs them back, so the
    weighted regression has the same expectation with fewer wasted samples."""

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

    def fit_one(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: float, empty: float,
                design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        return sampling.ridge_solve(z, y, w, self.ridge, design)


@METHODS.register
class KernelSHAP(SuperpixelSurrogate):
    """KernelSHAP (Lundberg & Lee 2017) over players. Coalition sizes ``k`` carry the Shapley
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

    def fit_one(self, z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: float, empty: float,
                design: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
        return sampling.shapley_solve(z, y, w, full, empty, design)
