"""Sample-efficient designs for the perturbation methods, their estimators' standard errors, and
the stopping rule.

KernelSHAP and LIME fit a weighted linear model of the scores of coalitions ``z`` in {0, 1}^P
(1 keeps a player). Both weightings depend only on the coalition's size ``k = |z|``, so each
method is a *layer mass* ``pi_k`` (the share of the regression's weight carried by all coalitions
of size ``k``) and the regression target is ``E_{z ~ pi}[(f(z) - g(z))^2]`` (``z`` uniform within
its layer). Instead of drawing ``z`` i.i.d. (captum, shap), ``coalition_design``:

- pairs every coalition with its complement (antithetic sampling; Covert & Lee 2021), so every
  even-order interaction of the model cancels out of the linear coefficients;
- allocates the pairs to sizes by systematic sampling of ``pi`` (stratified: every layer gets
  ``floor`` or ``ceil`` of its expected count) and enumerates a layer outright when the budget
  covers it (as shap's KernelExplainer does), drawing distinct coalitions within a layer;
- post-stratifies: a coalition of size ``k`` weighs ``pi_k n / c_k`` (``c_k`` coalitions of that
  size were drawn), so the weighted design matches ``pi`` exactly on sizes.

``shapley_solve`` imposes efficiency ``sum(phi) = f(x) - f(baseline)`` exactly; ``ridge_solve`` is
LIME's weighted ridge with an unpenalised intercept. Both also return a cluster-robust (sandwich)
standard error per player (a pair is one cluster; the design's strata and enumerated classes
are accounted for, ``design_strata``).

RISE draws its ``grid × grid`` cells and shift from scrambled Sobol' points (``rise_points``)
instead of i.i.d. uniforms: each cell is kept in exactly half the masks of every power-of-two
block (for ``p = 1/2``), and pairs of cells are balanced, so most of the mask noise cancels.
``MaskMoments`` accumulates the RISE map and its per-pixel standard error.

``Tolerance`` decides when to stop: sampling proceeds in blocks of ``block`` samples (each block
a design of its own, so any prefix of whole blocks is a valid design) and stops once the largest
standard error falls to ``tolerance`` (in score units) or ``max`` samples are spent.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch


def shapley_mass(p: int) -> torch.Tensor:
    """KernelSHAP's layer mass ``(p + 1,)`` float64: ``pi_k ∝ (p - 1) / (k (p - k))`` for
    ``0 < k < p`` (the Shapley kernel summed over the ``C(p, k)`` coalitions of size ``k``), 0 for
    the empty and full coalitions; sums to 1. Needs ``p >= 2``."""
    if p < 2:
        raise ValueError(f"the Shapley kernel needs at least 2 players, not {p}")
    k = torch.arange(p + 1, dtype=torch.float64)
    m = torch.zeros(p + 1, dtype=torch.float64)
    m[1:p] = 1 / (k[1:p] * (p - k[1:p]))                     # the constant p - 1 normalises away
    return m / m.sum()


def lime_kernel(k: torch.Tensor, p: int, kernel_width: float) -> torch.Tensor:
    """LIME's weight of a coalition of size ``k`` among ``p`` players: ``exp(-d^2 / width^2)`` with
    ``d = 1 - cos(z, 1) = 1 - sqrt(k / p)`` (``d = 1`` for the empty coalition)."""
    d = 1 - torch.sqrt(k.double() / p)
    return torch.exp(-(d ** 2) / kernel_width ** 2)


def lime_mass(p: int, kernel_width: float) -> tuple[torch.Tensor, float]:
    """LIME's layer mass ``(p + 1,)`` (``C(p, k) 2^-p`` — each player kept with probability 1/2 —
    times the kernel, normalised) and the mean kernel weight ``E[w]`` of a coalition drawn that way
    (the scale that makes a design's weights sum, in expectation, to those of plain LIME)."""
    k = torch.arange(p + 1, dtype=torch.float64)
    logc = torch.lgamma(torch.tensor(p + 1.0, dtype=torch.float64)) - torch.lgamma(k + 1) - torch.lgamma(p - k + 1)
    q = torch.exp(logc - p * math.log(2.0))
    m = q * lime_kernel(k, p, kernel_width)
    total = float(m.sum())
    return m / total, total


def systematic_counts(mass: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` draws from the categorical ``mass`` ``(K,)`` by systematic sampling: long counts
    ``(K,)`` summing to ``n``, each ``floor`` or ``ceil`` of ``n * mass`` and equal to it in
    expectation."""
    if n <= 0:
        return torch.zeros(len(mass), dtype=torch.long)
    cdf = torch.cumsum(mass.double() / mass.sum(), 0)
    cdf[-1] = 1.0
    u = (torch.rand((), generator=gen, dtype=torch.float64) + torch.arange(n, dtype=torch.float64)) / n
    idx = torch.searchsorted(cdf, u, right=True).clamp_max(len(mass) - 1)
    return torch.bincount(idx, minlength=len(mass))


def _n_pairs_in_class(p: int, m: int) -> int:
    """Distinct complementary pairs ``{S, S^c}`` with ``|S| = m`` (``m <= p / 2``)."""
    c = math.comb(p, m)
    return c // 2 if 2 * m == p else c


def _draw_class(p: int, m: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` distinct coalitions ``(count, p)`` of size ``m``, one per complementary pair (for
    ``2m = p`` the one holding player 0), uniform over those; every pair when ``count`` covers the
    class."""
    total = _n_pairs_in_class(p, m)
    middle = 2 * m == p
    if count >= total:
        rows = [c for c in itertools.combinations(range(p), m) if not middle or c[0] == 0]
        z = torch.zeros((len(rows), p), dtype=torch.long)
        for i, c in enumerate(rows):
            z[i, list(c)] = 1
        return z
    seen: set[bytes] = set()
    out: list[torch.Tensor] = []
    while len(out) < count:
        r = torch.rand((count, p), generator=gen)
        if middle:
            r[:, 0] = -1.0                                   # player 0 always in: one per pair
        z = (r.argsort(1).argsort(1) < m).long()
        for row in z:
            key = row.numpy().tobytes()
            if key not in seen and len(out) < count:
                seen.add(key)
                out.append(row)
    return torch.stack(out)


def coalition_design(mass: torch.Tensor, n: int, gen: torch.Generator, alloc: torch.Tensor | None = None,
                     paired: bool = True) -> torch.Tensor:
    """A design of ``n`` coalitions ``(n, p)`` long in {0, 1} for the layer mass ``mass`` ``(p + 1,)``.

    Sizes are allocated by ``alloc`` (default ``mass``; the weights ``design_weights`` correct for
    any allocation). ``paired``: rows come in adjacent complementary pairs ``z, 1 - z`` (the last
    one unpaired when ``n`` is odd), pairs of a size class drawn without replacement, classes the
    budget covers enumerated; else sizes are drawn by systematic sampling and coalitions uniformly
    within a size. Row order is shuffled pairwise, so any prefix of pairs mixes sizes. A paired
    design never holds more rows than there are coalitions of positive mass: beyond that, each
    once.
    """
    p = len(mass) - 1
    alloc = mass if alloc is None else alloc
    if not paired:
        counts = systematic_counts(alloc, n, gen)
        sizes = torch.repeat_interleave(torch.arange(p + 1), counts)
        sizes = sizes[torch.randperm(n, generator=gen)]
        r = torch.rand((n, p), generator=gen)
        return (r.argsort(1).argsort(1) < sizes[:, None]).long()
    half = p // 2
    # Class m pairs sizes m and p - m; class 0 is the pair {empty, full}, which carries mass for
    # LIME (the full input is its heaviest coalition) and none for KernelSHAP.
    cls = torch.zeros(half + 1, dtype=torch.float64)
    for m in range(half + 1):
        cls[m] = alloc[m] + (alloc[p - m] if 2 * m != p else 0.0)
    n_pairs = (n + 1) // 2
    counts = torch.zeros(half + 1, dtype=torch.long)
    left, left_mass = n_pairs, float(cls.sum())
    # Enumerate classes whose expected count covers them (extreme sizes first), as shap does.
    per = [(float(cls[m]) / _n_pairs_in_class(p, m), m) for m in range(half + 1) if cls[m] > 0]
    for _, m in sorted(per, reverse=True):
        total = _n_pairs_in_class(p, m)
        if left_mass <= 0 or left * float(cls[m]) / left_mass < total:
            break
        counts[m], left, left_mass = total, left - total, left_mass - float(cls[m])
    rest = cls.clone()
    rest[counts > 0] = 0
    if left > 0 and rest.sum() > 0:
        counts += systematic_counts(rest, left, gen)
    firsts = [_draw_class(p, m, int(counts[m]), gen) for m in range(half + 1) if counts[m] > 0]
    first = torch.cat(firsts) if firsts else torch.zeros((0, p), dtype=torch.long)
    first = first[torch.randperm(len(first), generator=gen)]
    z = torch.stack([first, 1 - first], 1).reshape(-1, p)
    return z[:n]


def blocked_design(mass: torch.Tensor, n: int, block: int, gen: torch.Generator,
                   alloc: torch.Tensor | None = None, paired: bool = True) -> torch.Tensor:
    """``coalition_design`` in consecutive blocks of ``block`` rows (the last one shorter), each a
    design of its own: ``(n, p)``."""
    parts, done = [], 0
    while done < n:
        b = min(block, n - done)
        parts.append(coalition_design(mass, b, gen, alloc, paired))
        done += b
    return torch.cat(parts) if parts else torch.zeros((0, len(mass) - 1), dtype=torch.long)


def design_weights(z: torch.Tensor, mass: torch.Tensor) -> torch.Tensor:
    """Post-stratified weights ``(n,)`` float64 of coalitions ``z`` ``(n, p)``: a coalition of size
    ``k`` weighs ``mass_k n / c_k`` where ``c_k`` rows have size ``k``; the weights sum to
    ``n * (mass of the sizes present)``."""
    k = z.sum(1)
    counts = torch.bincount(k, minlength=len(mass)).double()
    return mass.double()[k] * len(z) / counts[k]


def pair_clusters(n: int, paired: bool) -> torch.Tensor:
    """Cluster id of each of ``n`` design rows: ``i // 2`` for paired designs, ``i`` otherwise."""
    i = torch.arange(n)
    return i // 2 if paired else i


@dataclass
class Strata:
    """How a design was drawn, for its standard errors: ``clusters`` ``(n,)`` (a pair is one
    cluster), ``strata`` ``(n,)`` (block × size class each cluster was allocated to) and ``fpc``
    ``(n,)`` (the fraction of its stratum's population the design holds: 1 for an enumerated
    class, whose clusters then add no variance)."""

    clusters: torch.Tensor
    strata: torch.Tensor
    fpc: torch.Tensor


def design_strata(z: torch.Tensor, block: int, paired: bool = True) -> Strata:
    """The ``Strata`` of the first ``n`` rows ``z`` ``(n, p)`` of a ``blocked_design`` with blocks
    of ``block`` rows: stratum = (block, pair class ``min(k, p - k)``), or (block, size) unpaired."""
    n, p = z.shape
    k = z.sum(1)
    cls = torch.minimum(k, p - k) if paired else k
    clusters = pair_clusters(n, paired)
    strata = (torch.arange(n) // max(block, 1)) * (p + 1) + cls
    pop = torch.tensor([_n_pairs_in_class(p, m) if paired else math.comb(p, m) for m in range(p + 1)],
                       dtype=torch.float64)                    # >= 1 (one empty, one full coalition)
    first = torch.ones(n, dtype=torch.bool)
    if paired:
        first[1::2] = False                                    # one row per pair counts
    per_stratum = torch.zeros(int(strata.max()) + 1 if n else 0, dtype=torch.float64).index_add_(
        0, strata[first], torch.ones(int(first.sum()), dtype=torch.float64))
    fpc = (per_stratum[strata] / pop[cls]).clamp_max(1.0)
    return Strata(clusters, strata, fpc)


def wls(a: torch.Tensor, y: torch.Tensor, w: torch.Tensor, ridge: float = 0.0,
        design: torch.Tensor | Strata | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``argmin_b sum_i w_i (a_i b - y_i)^2 + ridge |b|^2`` for ``a`` ``(n, d)``, ``y``, ``w`` ``(n,)``
    (float64), and its sandwich covariance ``(d, d)``: ``H^-1 V H^-1`` with ``H = a^T W a + ridge I``
    and ``V`` the estimated covariance of ``sum_i w_i a_i e_i`` (``e`` the residuals).

    ``design``: None (rows independent: ``V = C/(C-1) sum g g^T``), cluster ids ``(n,)`` (``g``
    summed per cluster), or ``Strata``: the stratified estimator ``V = sum_h (1 - f_h) n_h/(n_h - 1)
    sum_{c in h} (g_c - mean_h g)(g_c - mean_h g)^T`` over strata ``h`` of ``n_h`` clusters
    (``n_h = 1``: uncentred)."""
    a, y, w = a.double(), y.double(), w.double()
    aw = a * w[:, None]
    lhs = a.T @ aw
    # A vanishing jitter keeps the normal equations solvable when a player never varies.
    jitter = 1e-10 * float(lhs.diagonal().mean().abs().clamp_min(1e-30))
    lhs = lhs + (ridge + jitter) * torch.eye(a.shape[1], dtype=a.dtype)
    b = torch.linalg.solve(lhs, aw.T @ y[:, None])[:, 0]
    g = aw * (y - a @ b)[:, None]
    hinv = torch.linalg.inv(lhs)
    if isinstance(design, Strata):
        _, cl = torch.unique(design.clusters, return_inverse=True)
        n_c = int(cl.max()) + 1 if len(cl) else 0
        gc = torch.zeros((n_c, a.shape[1]), dtype=g.dtype).index_add_(0, cl, g)
        first = torch.full((n_c,), len(cl), dtype=torch.long).scatter_reduce_(0, cl, torch.arange(len(cl)), "amin")
        _, st = torch.unique(design.strata[first], return_inverse=True)
        n_s = int(st.max()) + 1 if len(st) else 0
        size = torch.bincount(st, minlength=n_s).double()
        mean = torch.zeros((n_s, a.shape[1]), dtype=g.dtype).index_add_(0, st, gc) / size[:, None]
        centred = torch.where((size[st] > 1)[:, None], gc - mean[st], gc)
        scale = (1 - design.fpc[first].double()) * torch.where(size[st] > 1, size[st] / (size[st] - 1), 1.0)
        meat = (centred * scale[:, None]).T @ centred
        return b, hinv @ meat @ hinv
    if design is not None:
        g = torch.zeros((int(design.max()) + 1 if len(design) else 0, a.shape[1]),
                        dtype=g.dtype).index_add_(0, design, g)
    n_c = g.shape[0]
    cov = hinv @ (g.T @ g) @ hinv * (n_c / max(n_c - 1, 1))
    return b, cov


def shapley_solve(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, full: float, empty: float,
                  design: torch.Tensor | Strata | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Shapley values ``(P,)`` and their standard errors ``(P,)`` from coalitions ``z`` ``(n, P)``,
    scores ``y`` and weights ``w`` ``(n,)``: the weighted least squares of ``y - empty`` on ``z``
    under ``sum(phi) = full - empty`` exactly (one player eliminated)."""
    z, y = z.double(), y.double()
    delta = float(full) - float(empty)
    p = z.shape[1]
    if p < 2:
        return torch.full((p,), delta, dtype=torch.float64), torch.zeros(p, dtype=torch.float64)
    yt = (y - float(empty)) - z[:, -1] * delta
    a = z[:, :-1] - z[:, -1:]
    b, cov = wls(a, yt, w, 0.0, design)
    t = torch.cat([torch.eye(p - 1, dtype=torch.float64), -torch.ones((1, p - 1), dtype=torch.float64)])
    se = torch.diagonal(t @ cov @ t.T).clamp_min(0).sqrt()
    return torch.cat([b, torch.tensor([delta - float(b.sum())], dtype=torch.float64)]), se


def ridge_solve(z: torch.Tensor, y: torch.Tensor, w: torch.Tensor, ridge: float,
                design: torch.Tensor | Strata | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """LIME's coefficients ``(P,)`` and standard errors ``(P,)``: ``argmin sum w (y - c - z b)^2 +
    ridge |b|^2`` with an unpenalised intercept ``c`` (weighted centring)."""
    z, y, w = z.double(), y.double(), w.double()
    zc = z - (w[:, None] * z).sum(0) / w.sum()
    yc = y - (w * y).sum() / w.sum()
    b, cov = wls(zc, yc, w, ridge, design)
    return b, torch.diagonal(cov).clamp_min(0).sqrt()


def rise_points(n: int, dim: int, gen: torch.Generator, kind: str = "sobol", block: int | None = None) -> torch.Tensor:
    """``n`` points ``(n, dim)`` float64 in ``[0, 1)``: ``iid`` uniforms, or ``sobol``: scrambled
    Sobol' points, a fresh scramble every ``block`` points (default: one sequence; a block is
    rounded up to a power of two, the last one cut short)."""
    if kind == "iid":
        return torch.rand((n, dim), generator=gen, dtype=torch.float64)
    if kind != "sobol":
        raise ValueError(f"unknown mask sampler {kind!r}; use sobol or iid")
    from scipy.stats import qmc

    size = block or n
    m = max(0, math.ceil(math.log2(max(size, 1))))
    parts, done = [], 0
    while done < n:
        seed = int(torch.randint(0, 2 ** 62, (), generator=gen))
        pts = qmc.Sobol(d=dim, scramble=True, seed=np.random.default_rng(seed)).random_base2(m)
        take = min(2 ** m, n - done)
        parts.append(torch.from_numpy(pts[:take]))
        done += take
    return torch.cat(parts) if parts else torch.zeros((0, dim), dtype=torch.float64)


def rise_cells(u: torch.Tensor, grid: int, p: float, cell_hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RISE's masks from points ``u`` ``(n, grid^2 + 2)``: binary cells ``(n, 1, grid, grid)``
    (cell kept when its coordinate is below ``p``) and integer shifts ``dy``, ``dx`` ``(n,)`` in
    ``[0, cell_h)`` and ``[0, cell_w)`` from the last two coordinates."""
    n, g2 = u.shape[0], grid * grid
    if u.shape[1] != g2 + 2:
        raise ValueError(f"RISE points need {g2 + 2} coordinates, got {u.shape[1]}")
    cells = (u[:, :g2] < p).float().reshape(n, 1, grid, grid)
    dy = (u[:, g2] * cell_hw[0]).long().clamp_max(cell_hw[0] - 1)
    dx = (u[:, g2 + 1] * cell_hw[1]).long().clamp_max(cell_hw[1] - 1)
    return cells, dy, dx


class MaskMoments:
    """Running sums for RISE over masks ``M_i`` ``(h, w)`` and scores ``s_i`` ``(T,)``: the map
    ``sum_i (s_i - c) M_i / (n p)`` (``c`` the mean score when ``centred``, else 0), and the
    per-pixel standard error of that mean of ``n`` terms. Shapes: maps ``(T, h, w)``."""

    def __init__(self) -> None:
        self.n = 0
        self.s = None
        self.sm = self.m = self.s2m2 = self.sm2 = self.m2 = None

    def update(self, masks: torch.Tensor, scores: torch.Tensor) -> None:
        """Add masks ``(n, 1, h, w)`` (or ``(n, h, w)``) with scores ``(n,)`` or ``(n, T)``."""
        m = masks.reshape(masks.shape[0], *masks.shape[-2:]).double()
        s = scores.double().reshape(scores.shape[0], -1)
        m2 = m * m
        parts = {"s": s.sum(0), "sm": torch.einsum("nt,nhw->thw", s, m),
                 "m": m.sum(0), "s2m2": torch.einsum("nt,nhw->thw", s * s, m2),
                 "sm2": torch.einsum("nt,nhw->thw", s, m2), "m2": m2.sum(0)}
        for k, v in parts.items():
            cur = getattr(self, k)
            setattr(self, k, v if cur is None else cur + v)
        self.n += m.shape[0]

    def mean_score(self) -> torch.Tensor:
        """Mean score ``(T,)``."""
        return self.s / self.n

    def map(self, p: float, centred: bool) -> torch.Tensor:
        """The RISE map ``(T, h, w)`` float64."""
        c = self.mean_score()[:, None, None] if centred else 0.0
        return (self.sm - c * self.m) / (self.n * p)

    def stderr(self, p: float, centred: bool) -> torch.Tensor:
        """Per-pixel standard error ``(T, h, w)`` of ``map`` (terms ``(s_i - c) M_i / p`` taken as
        independent: conservative for Sobol' masks, whose error is smaller)."""
        if self.n < 2:
            return torch.full_like(self.sm, float("inf"))
        c = self.mean_score()[:, None, None] if centred else torch.zeros_like(self.sm[:, :1, :1])
        second = (self.s2m2 - 2 * c * self.sm2 + c * c * self.m2) / (self.n * p * p)
        mean = self.map(p, centred)
        var = (second - mean * mean).clamp_min(0) * self.n / (self.n - 1)
        return (var / self.n).sqrt()


@dataclass
class Tolerance:
    """The stopping rule: ``tolerance`` (score units; None: never stop early) on the largest
    standard error, checked every ``block`` samples once at least ``min_samples`` are in."""

    tolerance: float | None
    block: int
    min_samples: int = 0

    def __post_init__(self) -> None:
        if self.tolerance is not None and not self.tolerance > 0:
            raise ValueError(f"tolerance must be > 0, not {self.tolerance}")
        if self.block < 1:
            raise ValueError(f"block must be >= 1, not {self.block}")

    def due(self, before: int, after: int) -> bool:
        """Whether a check falls due when the sample count goes from ``before`` to ``after``: a
        block boundary was crossed and ``after >= min_samples``."""
        return (self.tolerance is not None and after >= max(self.min_samples, 1)
                and after // self.block > before // self.block)

    def met(self, stderr: torch.Tensor) -> bool:
        """Whether the largest of ``stderr`` is at most the tolerance (False without one)."""
        return self.tolerance is not None and float(stderr.max()) <= self.tolerance
