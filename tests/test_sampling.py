"""Samplers and estimators of vlx.attribute.sampling against independent oracles: brute-force
Shapley values and LIME's weighted ridge over every coalition, the Shapley kernel written out
per coalition, exact counts of a stratified design, per-pixel RISE moments by numpy, and the
stopping rule on a cheap model whose Shapley values are known."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from vlx.attribute import sampling as S
from vlx.attribute.perturb import RISE, KernelSHAP, LIME
from vlx.errors import UsageError
from vlx.types import ClassTarget


def interaction_game(p: int, seed: int = 0):
    """A game on {0,1}^p with strong pairwise interactions and a saturating link."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(p, generator=g, dtype=torch.float64)
    b = torch.randn((p, p), generator=g, dtype=torch.float64)
    b = (b + b.T) / 2

    def game(z: torch.Tensor) -> torch.Tensor:
        z = z.double()
        return 4 * torch.tanh(z @ a / 3 + ((z @ b) * z).sum(-1) / (2 * p))
    return game


def brute_shapley(game, p: int) -> torch.Tensor:
    """Shapley values by the permutation-weighted marginal contributions formula."""
    phi = torch.zeros(p, dtype=torch.float64)
    for i in range(p):
        others = [j for j in range(p) if j != i]
        for k in range(p):
            wt = math.factorial(k) * math.factorial(p - k - 1) / math.factorial(p)
            for sub in itertools.combinations(others, k):
                s = torch.zeros(p)
                s[list(sub)] = 1
                t = s.clone()
                t[i] = 1
                phi[i] += wt * float(game(t[None])[0] - game(s[None])[0])
    return phi


def all_coalitions(p: int) -> torch.Tensor:
    codes = torch.arange(2 ** p)
    return ((codes[:, None] >> torch.arange(p)) & 1).long()


# ----------------------------------------------------------------------------- layer masses

def test_shapley_mass_is_the_kernel_summed_over_each_size():
    p = 9
    kernel = lambda k: (p - 1) / (math.comb(p, k) * k * (p - k))       # noqa: E731 per coalition
    expect = torch.tensor([0.0] + [math.comb(p, k) * kernel(k) for k in range(1, p)] + [0.0], dtype=torch.float64)
    assert torch.allclose(S.shapley_mass(p), expect / expect.sum(), atol=1e-15)
    with pytest.raises(ValueError):
        S.shapley_mass(1)


def test_lime_mass_is_binomial_times_cosine_kernel():
    p, width = 8, 0.25
    z = all_coalitions(p)
    cos = z.sum(1).double() / (z.double().norm(dim=1) * math.sqrt(p)).clamp_min(1e-12)
    w = torch.exp(-((1 - cos) ** 2) / width ** 2)                  # LIME's kernel per coalition
    per_size = torch.zeros(p + 1, dtype=torch.float64).index_add_(0, z.sum(1), w / 2 ** p)
    mass, scale = S.lime_mass(p, width)
    assert scale == pytest.approx(float(w.mean()), rel=1e-12)
    assert torch.allclose(mass, per_size / per_size.sum(), atol=1e-15)


# ----------------------------------------------------------------------------- designs

def test_systematic_counts_are_floor_or_ceil_and_unbiased():
    mass = torch.tensor([0.1, 0.0, 0.35, 0.05, 0.5], dtype=torch.float64)
    total = torch.zeros(5, dtype=torch.float64)
    for seed in range(400):
        c = S.systematic_counts(mass, 37, torch.Generator().manual_seed(seed))
        assert int(c.sum()) == 37 and int(c[1]) == 0
        assert bool(((c >= torch.floor(37 * mass)) & (c <= torch.ceil(37 * mass))).all()), c
        total += c
    assert torch.allclose(total / 400, 37 * mass, atol=0.06)
    assert int(S.systematic_counts(mass, 0, torch.Generator()).sum()) == 0


def test_paired_rows_are_complements_and_sizes_follow_the_kernel():
    p, n = 50, 400                       # 200 pairs: no size class is covered, none enumerated
    mass = S.shapley_mass(p)
    z = S.coalition_design(mass, n, torch.Generator().manual_seed(0))
    assert z.shape == (n, p)
    assert bool((z[0::2] + z[1::2] == 1).all())                     # antithetic pairs
    k = z.sum(1)
    assert int(k.min()) >= 1 and int(k.max()) <= p - 1
    counts = torch.bincount(k, minlength=p + 1)
    # Each pair class {m, p-m} gets floor or ceil of its expected number of pairs.
    for m in range(1, p // 2 + 1):
        expect = n / 2 * float(mass[m] + (mass[p - m] if 2 * m != p else 0))
        got = int(counts[m]) // (2 if 2 * m == p else 1)
        assert math.floor(expect) <= got <= math.ceil(expect), (m, got, expect)


def test_classes_the_budget_covers_are_enumerated():
    p = 20
    z = S.coalition_design(S.shapley_mass(p), 2000, torch.Generator().manual_seed(0))
    singles = z[z.sum(1) == 1]
    assert len(singles) == p and torch.equal(singles.sum(0), torch.ones(p, dtype=torch.long))
    w = S.design_weights(z, S.shapley_mass(p))
    assert float(w[z.sum(1) == 1].sum()) == pytest.approx(2000 * float(S.shapley_mass(p)[1]))


def test_design_is_distinct_within_small_layers_and_uniform_over_players():
    p = 12
    mass = S.shapley_mass(p)
    seen = torch.zeros(p)
    for seed in range(60):
        z = S.coalition_design(mass, 40, torch.Generator().manual_seed(seed))
        singles = z[z.sum(1) == 1]
        assert len({tuple(r.tolist()) for r in singles}) == len(singles)    # without replacement
        seen += singles.sum(0)
        assert len({tuple(r.tolist()) for r in z}) == len(z)
    assert float(seen.min()) > 0.6 * float(seen.mean())             # every player drawn alike


def test_design_enumerates_every_coalition_when_the_budget_covers_it():
    p = 6
    z = S.coalition_design(S.shapley_mass(p), 2 ** p - 2, torch.Generator().manual_seed(3))
    assert len({tuple(r.tolist()) for r in z}) == 2 ** p - 2
    assert bool(((z.sum(1) > 0) & (z.sum(1) < p)).all())
    w = S.design_weights(z, S.shapley_mass(p))
    k = z.sum(1).double()
    kernel = (p - 1) / (torch.tensor([math.comb(p, int(c)) for c in k], dtype=torch.float64) * k * (p - k))
    ratio = w / kernel
    assert torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-9)  # weights ∝ Shapley kernel


def test_design_weights_post_stratify_on_the_prefix():
    mass = torch.tensor([0.0, 0.5, 0.25, 0.25, 0.0], dtype=torch.float64)
    z = torch.tensor([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [1, 1, 0, 0], [1, 1, 1, 0]])
    w = S.design_weights(z, mass)
    # size 1: three rows share 0.5 of the 5 rows' mass; size 2, 3: one row each.
    assert torch.allclose(w, torch.tensor([0.5 * 5 / 3] * 3 + [0.25 * 5, 0.25 * 5], dtype=torch.float64))


def test_unpaired_design_draws_sizes_by_allocation():
    p = 10
    alloc = torch.zeros(p + 1, dtype=torch.float64)
    alloc[3], alloc[7] = 0.25, 0.75
    z = S.coalition_design(S.shapley_mass(p), 40, torch.Generator().manual_seed(0), alloc=alloc, paired=False)
    assert torch.equal(torch.bincount(z.sum(1), minlength=p + 1)[[3, 7]], torch.tensor([10, 30]))


def test_blocked_design_blocks_are_designs_of_their_own():
    mass = S.shapley_mass(10)
    z = S.blocked_design(mass, 100, 32, torch.Generator().manual_seed(0))
    assert z.shape == (100, 10) and bool((z[0::2] + z[1::2] == 1).all())
    assert S.blocked_design(mass, 0, 32, torch.Generator()).shape == (0, 10)


# ----------------------------------------------------------------------------- estimators

@pytest.mark.parametrize("p", [4, 5, 6])
def test_kernelshap_enumeration_equals_brute_force_shapley(p):
    game = interaction_game(p, seed=p)
    ks = KernelSHAP(n_samples=2 ** p)
    z, w = ks.coalitions(p, torch.Generator().manual_seed(0))
    full, empty = game(torch.ones((1, p)))[0], game(torch.zeros((1, p)))[0]
    phi = ks.solve(z.double(), game(z), w, full, empty)
    assert torch.allclose(phi, brute_shapley(game, p), atol=1e-9)


def test_lime_enumeration_equals_weighted_ridge_over_every_coalition():
    p, width, ridge = 6, 0.25, 1.0
    game = interaction_game(p, seed=11)
    lime = LIME(n_samples=2 ** p, kernel_width=width, ridge=ridge)
    z, w = lime.coalitions(p, torch.Generator().manual_seed(0))
    got = lime.solve(z.double(), game(z), w, torch.tensor(0.0), torch.tensor(0.0))
    # Oracle: numpy lstsq on all coalitions (the empty and the full one included, as LIME samples
    # them), each weighted n * 2^-p * kernel, with an unpenalised intercept and the ridge as extra rows.
    allz = all_coalitions(p).numpy()
    k = allz.sum(1)
    kern = np.exp(-((1 - np.sqrt(k / p)) ** 2) / width ** 2)
    wt = len(z) * kern / 2 ** p
    a = np.hstack([np.ones((len(allz), 1)), allz]) * np.sqrt(wt)[:, None]
    y = game(torch.from_numpy(allz)).numpy() * np.sqrt(wt)
    pen = np.hstack([np.zeros((p, 1)), math.sqrt(ridge) * np.eye(p)])
    coef = np.linalg.lstsq(np.vstack([a, pen]), np.concatenate([y, np.zeros(p)]), rcond=None)[0]
    assert np.allclose(got.numpy(), coef[1:], atol=1e-8)


@pytest.mark.slow
def test_paired_kernelshap_is_unbiased_and_beats_iid_at_half_the_samples():
    p, n, reps = 10, 128, 60
    game = interaction_game(p, seed=2)
    exact = brute_shapley(game, p)
    full, empty = game(torch.ones((1, p)))[0], game(torch.zeros((1, p)))[0]

    def estimates(sampler: str, n: int) -> torch.Tensor:
        ks = KernelSHAP(sampler=sampler, n_samples=n)
        out = []
        for seed in range(reps):
            z, w = ks.coalitions(p, torch.Generator().manual_seed(seed))
            out.append(ks.solve(z.double(), game(z), w, full, empty))
        return torch.stack(out)

    paired = estimates("paired", n)
    bias, sd = (paired.mean(0) - exact).abs(), paired.std(0)
    assert bool((bias <= 4 * sd / math.sqrt(reps) + 1e-9).all()), (bias, sd)
    err = lambda e: float(((e - exact).norm(dim=1) / exact.norm()).mean())       # noqa: E731
    assert err(paired) < err(estimates("iid", 2 * n))
    lev = estimates("leverage", n)
    assert float((lev.mean(0) - exact).abs().max()) <= 4 * float(lev.std(0).max()) / math.sqrt(reps)


@pytest.mark.slow
def test_standard_errors_match_the_spread_over_seeds():
    p, n = 10, 256
    game = interaction_game(p, seed=5)
    full, empty = game(torch.ones((1, p)))[0], game(torch.zeros((1, p)))[0]
    ks = KernelSHAP(n_samples=n)
    vals, ses = [], []
    for seed in range(80):
        z, w = ks.coalitions(p, torch.Generator().manual_seed(seed))
        v, se = ks.fit(z.double(), game(z), w, full, empty, S.design_strata(z, n))
        vals.append(v)
        ses.append(se)
    spread, mean_se = torch.stack(vals).std(0), torch.stack(ses).mean(0)
    ratio = mean_se / spread
    assert bool(((ratio > 0.6) & (ratio < 1.8)).all()), ratio       # sandwich SE is calibrated


def test_wls_covariance_is_the_sandwich_by_hand():
    g = torch.Generator().manual_seed(0)
    a = torch.randn((30, 3), generator=g, dtype=torch.float64)
    y = torch.randn(30, generator=g, dtype=torch.float64)
    w = torch.rand(30, generator=g, dtype=torch.float64) + 0.5
    cl = torch.arange(30) // 3
    b, cov = S.wls(a, y, w, ridge=0.5, design=cl)
    an, yn, wn = a.numpy(), y.numpy(), w.numpy()
    h = an.T @ (an * wn[:, None]) + 0.5 * np.eye(3)
    bn = np.linalg.solve(h, an.T @ (wn * yn))
    e = yn - an @ bn
    gsum = np.zeros((10, 3))
    for i in range(30):
        gsum[i // 3] += wn[i] * e[i] * an[i]
    hinv = np.linalg.inv(h)
    assert np.allclose(b.numpy(), bn, atol=1e-6)
    assert np.allclose(cov.numpy(), hinv @ gsum.T @ gsum @ hinv * 10 / 9, rtol=1e-5, atol=1e-12)


def test_stratified_covariance_by_hand():
    g = torch.Generator().manual_seed(1)
    a = torch.randn((12, 2), generator=g, dtype=torch.float64)
    y = torch.randn(12, generator=g, dtype=torch.float64)
    w = torch.ones(12, dtype=torch.float64)
    cl = torch.arange(12) // 2                                    # 6 pairs
    st = torch.tensor([0] * 6 + [1] * 4 + [2] * 2)                # strata of 3, 2 and 1 pairs
    fpc = torch.tensor([0.0] * 6 + [0.5] * 4 + [0.25] * 2, dtype=torch.float64)
    b, cov = S.wls(a, y, w, design=S.Strata(cl, st, fpc))
    an, yn = a.numpy(), y.numpy()
    h = an.T @ an
    e = yn - an @ np.linalg.solve(h, an.T @ yn)
    gc = np.array([(an[2 * i] * e[2 * i] + an[2 * i + 1] * e[2 * i + 1]) for i in range(6)])
    meat = np.zeros((2, 2))
    for rows, f in (([0, 1, 2], 0.0), ([3, 4], 0.5)):
        d = gc[rows] - gc[rows].mean(0)
        meat += (1 - f) * len(rows) / (len(rows) - 1) * d.T @ d
    meat += (1 - 0.25) * np.outer(gc[5], gc[5])                   # a lone pair: uncentred
    hinv = np.linalg.inv(h)
    assert np.allclose(cov.numpy(), hinv @ meat @ hinv, rtol=1e-6, atol=1e-10)


def test_design_strata_of_a_blocked_paired_design():
    p = 6
    z = S.blocked_design(S.shapley_mass(p), 124, 62, torch.Generator().manual_seed(0))
    d = S.design_strata(z, 62)
    assert torch.equal(d.clusters, torch.arange(124) // 2)
    k = z.sum(1)
    assert torch.equal(d.strata, (torch.arange(124) // 62) * (p + 1) + torch.minimum(k, p - k))
    assert bool((d.fpc == 1).all())                               # each block enumerates every pair
    z2 = S.coalition_design(S.shapley_mass(50), 40, torch.Generator().manual_seed(0))
    d2 = S.design_strata(z2, 40)
    k2 = torch.minimum(z2.sum(1), 50 - z2.sum(1))
    pairs = torch.bincount(k2[0::2], minlength=26).double()
    expect = pairs[k2] / torch.tensor([math.comb(50, int(m)) for m in k2], dtype=torch.float64)
    assert torch.allclose(d2.fpc, expect)
    un = S.design_strata(z2, 40, paired=False)
    assert torch.equal(un.clusters, torch.arange(40)) and torch.equal(un.strata, z2.sum(1))


def test_shapley_solve_standard_error_of_the_eliminated_player():
    z = torch.tensor([[1, 0, 0], [0, 1, 1], [0, 1, 0], [1, 0, 1], [0, 0, 1], [1, 1, 0]])
    y = torch.tensor([1.0, 2.5, 0.7, 2.0, 1.1, 2.2], dtype=torch.float64)
    w = torch.ones(6, dtype=torch.float64)
    phi, se = S.shapley_solve(z, y, w, 3.0, 0.0)
    assert float(phi.sum()) == pytest.approx(3.0)
    # The last value is 3 - (phi_0 + phi_1): its variance is 1' Cov 1 of the first two.
    a = (z[:, :-1] - z[:, -1:]).double()
    _, cov = S.wls(a, y - z[:, -1] * 3.0, w)
    assert float(se[2]) == pytest.approx(math.sqrt(float(cov.sum())), rel=1e-9)
    one, se1 = S.shapley_solve(torch.ones((2, 1)), torch.ones(2), torch.ones(2), 2.0, 0.5)
    assert float(one[0]) == 1.5 and float(se1[0]) == 0.0


# ----------------------------------------------------------------------------- RISE masks

def test_sobol_cells_have_the_stated_density_in_every_block():
    g = 7
    u = S.rise_points(256, g * g + 2, torch.Generator().manual_seed(0), "sobol")
    cells, dy, dx = S.rise_cells(u, g, 0.5, (10, 12))
    kept = cells.reshape(256, -1).sum(0)
    assert bool((kept == 128).all())                                # exactly half, every cell
    cells3, _, _ = S.rise_cells(u, g, 0.3, (10, 12))
    k3 = cells3.reshape(256, -1).sum(0)
    assert bool(((k3 >= 76) & (k3 <= 77)).all()), k3                # floor/ceil of 0.3 * 256
    assert int(dy.min()) >= 0 and int(dy.max()) <= 9 and int(dx.max()) <= 11
    assert len(torch.unique(dy)) == 10 and len(torch.unique(dx)) == 12
    iid = S.rise_cells(S.rise_points(256, g * g + 2, torch.Generator().manual_seed(0), "iid"), g, 0.5, (10, 12))[0]
    assert not bool((iid.reshape(256, -1).sum(0) == 128).all())
    with pytest.raises(ValueError):
        S.rise_points(4, 3, torch.Generator(), "halton")
    with pytest.raises(ValueError):
        S.rise_cells(u[:, :10], g, 0.5, (10, 12))


def test_sobol_blocks_are_fresh_scrambles_each_balanced():
    u = S.rise_points(96, 51, torch.Generator().manual_seed(1), "sobol", block=32)
    assert u.shape == (96, 51)
    for b in range(3):
        assert bool(((u[32 * b:32 * (b + 1), :49] < 0.5).sum(0) == 16).all())
    assert not torch.equal(u[:32], u[32:64])


def test_mask_moments_match_numpy():
    g = torch.Generator().manual_seed(0)
    m = torch.rand((50, 1, 4, 5), generator=g)
    s = torch.randn(50, generator=g)
    acc = S.MaskMoments()
    acc.update(m[:20], s[:20])
    acc.update(m[20:], s[20:])
    mn, sn = m[:, 0].double().numpy(), s.double().numpy()
    for centred in (True, False):
        c = sn.mean() if centred else 0.0
        t = (sn - c)[:, None, None] * mn / 0.5
        assert np.allclose(acc.map(0.5, centred)[0].numpy(), t.mean(0), atol=1e-12)
        assert np.allclose(acc.stderr(0.5, centred)[0].numpy(), t.std(0, ddof=1) / math.sqrt(50), atol=1e-10)
    one = S.MaskMoments()
    one.update(m[:1], s[:1])
    assert bool(torch.isinf(one.stderr(0.5, True)).all())


# ----------------------------------------------------------------------------- stopping rule

def test_tolerance_rule():
    t = S.Tolerance(0.1, block=64, min_samples=128)
    assert not t.due(0, 64) and t.due(64, 128) and not t.due(128, 130) and t.due(190, 200)
    assert t.met(torch.tensor([0.05, 0.1], dtype=torch.float64)) and not t.met(torch.tensor([0.05, 0.11]))
    never = S.Tolerance(None, block=64)
    assert not never.due(0, 1000) and not never.met(torch.tensor([0.0]))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError):
            S.Tolerance(bad, block=8)
    with pytest.raises(ValueError):
        S.Tolerance(0.1, block=0)


class BlockGame:
    """A cheap 'classifier' on 24×32 inputs whose players are 12 fixed 8×8 blocks: a player's
    presence is its block's mean in channel 0 (inputs are ones, the baseline zero), and logit 0
    is ``interaction_game`` of the presences."""

    batch_size = 64

    def __init__(self) -> None:
        self.labels = torch.arange(12).reshape(3, 4).repeat_interleave(8, 0).repeat_interleave(8, 1)
        self.game = interaction_game(12, seed=7)
        self.calls = 0

    def players(self, x, n_segments):
        return self.labels

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += x.shape[0]
        pres = torch.zeros((x.shape[0], 12), dtype=torch.float64).index_add_(
            1, self.labels.reshape(-1), x[:, 0].reshape(x.shape[0], -1).double()) / 64
        return torch.stack([self.game(pres), torch.zeros(x.shape[0], dtype=torch.float64)], 1).float()


@pytest.fixture
def block_game(monkeypatch):
    bg = BlockGame()
    monkeypatch.setattr("vlx.attribute.perturb.superpixel_players", lambda model, x, n: bg.labels)
    return bg


@pytest.mark.slow
def test_tolerance_stops_early_within_the_implied_error(block_game):
    x = torch.ones((1, 3, 24, 32))
    exact = brute_shapley(block_game.game, 12)
    used = {}
    for tol in (0.05, 0.02):
        ks = KernelSHAP(n_samples=3000, tolerance=tol, block=64, baseline="zero", seed=1)
        out = ks.attribute(block_game, x, ClassTarget(0))[0]
        info = ks.last_info[0]
        used[tol] = info["samples"]
        phi = torch.stack([out[block_game.labels == j][0] for j in range(12)]).double()
        assert info["converged"] is True and info["stderr"] <= tol
        assert info["samples"] < 3000 and info["samples"] % 64 == 0 and info["samples"] >= 128
        assert float((phi - exact).abs().max()) <= 4 * tol, (tol, phi - exact)
    assert used[0.05] < used[0.02]


def test_tolerance_respects_the_maximum(block_game):
    x = torch.ones((1, 3, 24, 32))
    ks = KernelSHAP(n_samples=300, tolerance=1e-9, block=64, baseline="zero")
    ks.attribute(block_game, x, ClassTarget(0))
    info = ks.last_info[0]
    assert info["samples"] == 300 and info["converged"] is False and info["max_samples"] == 300
    assert block_game.calls == 302                                   # + the intact input and baseline
    free = KernelSHAP(n_samples=300, baseline="zero")
    free.attribute(block_game, x, ClassTarget(0))
    assert free.last_info[0]["samples"] == 300 and free.last_info[0]["converged"] is None
    assert free.last_info[0]["stderr"] > 0


@pytest.mark.slow
def test_lime_and_rise_tolerance_use_fewer_samples(block_game):
    x = torch.ones((1, 3, 24, 32))
    lime = LIME(n_samples=2000, tolerance=0.05, block=64, baseline="zero")
    lime.attribute(block_game, x, ClassTarget(0))
    assert lime.last_info[0]["converged"] and lime.last_info[0]["samples"] < 2000
    loose, tight = (RISE(n_masks=2048, tolerance=t, block=128, baseline="zero", score="logit") for t in (0.3, 0.05))
    loose.attribute(block_game, x, ClassTarget(0))
    tight.attribute(block_game, x, ClassTarget(0))
    a, b = loose.last_info[0], tight.last_info[0]
    assert a["converged"] and a["stderr"] <= 0.3 and a["samples"] < b["samples"] <= 2048


def test_unknown_samplers_are_errors():
    for cls, kw in ((KernelSHAP, {"sampler": "sobol"}), (LIME, {"sampler": "leverage"}), (RISE, {"sampler": "halton"})):
        with pytest.raises(UsageError):
            cls(**kw)


# ----------------------------------------------------------------------------- mutation survivors

def test_blocked_design_is_the_designs_of_its_blocks_in_turn():
    mass = S.lime_mass(10, 0.25)[0]
    alloc = torch.zeros(11, dtype=torch.float64)
    alloc[2], alloc[9] = 0.5, 0.5
    for kw in ({}, {"alloc": alloc}, {"paired": False}, {"alloc": alloc, "paired": False}):
        got = S.blocked_design(mass, 50, 32, torch.Generator().manual_seed(4), **kw)
        g = torch.Generator().manual_seed(4)
        expect = torch.cat([S.coalition_design(mass, 32, g, **kw), S.coalition_design(mass, 18, g, **kw)])
        assert torch.equal(got, expect), kw
    un = S.blocked_design(mass, 40, 40, torch.Generator().manual_seed(0), alloc=alloc, paired=False)
    assert torch.equal(torch.bincount(un.sum(1), minlength=11)[[2, 9]], torch.tensor([20, 20]))


def test_design_strata_edge_cases_by_hand():
    # block 1: every row its own stratum (row * (p + 1) + size), unpaired.
    z = torch.tensor([[0, 0, 0], [1, 0, 0], [1, 1, 0], [1, 1, 1], [0, 1, 0], [0, 0, 1]])
    d = S.design_strata(z, 1, paired=False)
    assert torch.equal(d.strata, torch.arange(6) * 4 + z.sum(1))
    # one block of 6 unpaired rows: fpc = rows of that size / C(3, size); the empty and full
    # coalitions are populations of one.
    d = S.design_strata(z, 6, paired=False)
    assert torch.allclose(d.fpc, torch.tensor([1.0, 3 / 3, 1 / 3, 1.0, 3 / 3, 3 / 3], dtype=torch.float64),
                          rtol=0, atol=1e-15)
    # paired {empty, full}: one pair of a class holding one pair -> fpc 1.
    zp = torch.tensor([[0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [0, 1, 1, 1]])
    dp = S.design_strata(zp, 4)
    assert torch.allclose(dp.fpc, torch.tensor([1.0, 1.0, 0.25, 0.25], dtype=torch.float64), rtol=0, atol=1e-15)
    # two blocks that each enumerate every pair, read as one stratum: fpc stays capped at 1.
    zb = S.blocked_design(S.shapley_mass(6), 124, 62, torch.Generator().manual_seed(0))
    assert bool((S.design_strata(zb, 124).fpc == 1).all())
    # no rows
    e = S.design_strata(torch.zeros((0, 6), dtype=torch.long), 8)
    assert e.clusters.shape == e.strata.shape == e.fpc.shape == (0,)


def test_design_strata_fpc_counts_one_row_per_pair_exactly():
    z2 = S.coalition_design(S.shapley_mass(50), 40, torch.Generator().manual_seed(0))
    d2 = S.design_strata(z2, 40)
    k2 = torch.minimum(z2.sum(1), 50 - z2.sum(1))
    pairs = torch.bincount(k2[0::2], minlength=26).double()
    # population of class m: C(50, m) pairs, C(50, 25) / 2 for the middle class
    expect = pairs[k2] / torch.tensor([math.comb(50, int(m)) / (2 if m == 25 else 1) for m in k2],
                                      dtype=torch.float64)
    assert torch.allclose(d2.fpc, expect, rtol=1e-12, atol=0)


def np_sandwich(a, y, w, clusters, ridge=0.0):
    """Weighted (ridge) least squares and its cluster sandwich covariance, C/(C-1) corrected."""
    h = a.T @ (a * w[:, None]) + ridge * np.eye(a.shape[1])
    b = np.linalg.solve(h, a.T @ (w * y))
    e = y - a @ b
    ids = np.unique(clusters)
    gs = np.stack([(a[clusters == c] * (w * e)[clusters == c][:, None]).sum(0) for c in ids])
    hinv = np.linalg.inv(h)
    c = len(ids)
    return b, hinv @ gs.T @ gs @ hinv * (c / max(c - 1, 1))


def test_wls_two_clusters_and_tiny_weights_and_no_rows():
    g = torch.Generator().manual_seed(2)
    a = torch.randn((8, 2), generator=g, dtype=torch.float64)
    y = torch.randn(8, generator=g, dtype=torch.float64)
    w = torch.rand(8, generator=g, dtype=torch.float64) + 0.5
    cl = torch.arange(8) // 4                                      # two clusters: factor 2 / 1
    b, cov = S.wls(a, y, w, design=cl)
    bn, cn = np_sandwich(a.numpy(), y.numpy(), w.numpy(), cl.numpy())
    assert np.allclose(b.numpy(), bn, rtol=1e-9) and np.allclose(cov.numpy(), cn, rtol=1e-9, atol=0)
    # the jitter is relative to the scale of the normal equations: tiny weights change nothing
    bt, _ = S.wls(a, y, w * 1e-9)
    assert np.allclose(bt.numpy(), bn, rtol=1e-6, atol=0)
    # no rows: zero coefficients and covariance, with any design
    a0, y0 = torch.zeros((0, 3), dtype=torch.float64), torch.zeros(0, dtype=torch.float64)
    for design in (None, torch.zeros(0, dtype=torch.long), S.design_strata(torch.zeros((0, 6), dtype=torch.long), 8)):
        b0, c0 = S.wls(a0, y0, y0, design=design)
        assert torch.equal(b0, torch.zeros(3, dtype=torch.float64)) and torch.equal(c0, torch.zeros((3, 3), dtype=torch.float64))


def test_shapley_solve_two_players_offset_game_and_clustered_errors():
    # p = 2, every coalition: phi_0 = (v(1,0) - v(0,0) + v(1,1) - v(0,1)) / 2 by hand.
    v = {(0, 0): 1.5, (1, 0): 2.0, (0, 1): 4.0, (1, 1): 7.0}
    z = torch.tensor([[1, 0], [0, 1]])
    y = torch.tensor([v[(1, 0)], v[(0, 1)]], dtype=torch.float64)
    phi, se = S.shapley_solve(z, y, torch.ones(2, dtype=torch.float64), v[(1, 1)], v[(0, 0)])
    p0 = (v[(1, 0)] - v[(0, 0)] + v[(1, 1)] - v[(0, 1)]) / 2
    assert torch.allclose(phi, torch.tensor([p0, v[(1, 1)] - v[(0, 0)] - p0], dtype=torch.float64), atol=1e-12)
    assert se.shape == (2,)
    # p = 5 game with a nonzero empty value, every coalition: exact to 1e-9 (float32 rounding is 1e-7).
    p = 5
    game0 = interaction_game(p, seed=3)
    game = lambda zz: game0(zz) + 2.5                                # noqa: E731
    allz = all_coalitions(p)[1:-1]
    k = allz.sum(1).double()
    w = (p - 1) / (torch.tensor([math.comb(p, int(c)) for c in k], dtype=torch.float64) * k * (p - k))
    full, empty = float(game(torch.ones((1, p)))[0]), float(game(torch.zeros((1, p)))[0])
    phi, se = S.shapley_solve(allz, game(allz), w, full, empty)
    assert phi.dtype == torch.float64 and se.shape == (p,)
    assert torch.allclose(phi, brute_shapley(game, p), rtol=0, atol=1e-9)
    # clustered standard errors: numpy sandwich of the eliminated regression, mapped to all players
    cl = torch.arange(len(allz)) // 3
    _, se_c = S.shapley_solve(allz, game(allz), w, full, empty, design=cl)
    zn = allz.double().numpy()
    an = zn[:, :-1] - zn[:, -1:]
    yn = game(allz).numpy() - empty - zn[:, -1] * (full - empty)
    _, cn = np_sandwich(an, yn, w.numpy(), cl.numpy())
    t = np.vstack([np.eye(p - 1), -np.ones((1, p - 1))])
    assert np.allclose(se_c.numpy(), np.sqrt(np.diag(t @ cn @ t.T)), rtol=1e-8, atol=0)
    one, se1 = S.shapley_solve(torch.ones((2, 1)), torch.ones(2), torch.ones(2), 2.0, 0.5)
    assert one.dtype == se1.dtype == torch.float64


def test_ridge_solve_standard_errors_by_hand():
    g = torch.Generator().manual_seed(5)
    z = (torch.rand((24, 4), generator=g) < 0.5).long()
    y = torch.randn(24, generator=g, dtype=torch.float64) * 0.1 + 3.0     # small residuals, big mean
    w = torch.rand(24, generator=g, dtype=torch.float64) + 0.2
    cl = torch.arange(24) // 2
    b, se = S.ridge_solve(z, y, w, 0.3, design=cl)
    # oracle: intercept column unpenalised, solved jointly in numpy; residuals from that fit
    zn, yn, wn = z.double().numpy(), y.numpy(), w.numpy()
    x = np.hstack([np.ones((24, 1)), zn])
    pen = np.diag([0.0] + [0.3] * 4)
    coef = np.linalg.solve(x.T @ (x * wn[:, None]) + pen, x.T @ (wn * yn))
    assert np.allclose(b.numpy(), coef[1:], atol=1e-10)
    zc = zn - (wn[:, None] * zn).sum(0) / wn.sum()
    yc = yn - (wn * yn).sum() / wn.sum()
    _, cn = np_sandwich(zc, yc, wn, cl.numpy(), ridge=0.3)
    assert np.allclose(se.numpy(), np.sqrt(np.diag(cn)), rtol=1e-8, atol=0)
    assert float(se.max()) < 1.0


def test_mask_moments_multi_target_three_d_masks_and_two_masks():
    g = torch.Generator().manual_seed(3)
    m = (torch.rand((6, 3, 4), generator=g) < 0.5).float()             # (n, h, w) masks
    s = torch.randn((6, 2), generator=g)                                # two targets
    acc = S.MaskMoments()
    acc.update(m, s)
    mn, sn = m.double().numpy(), s.double().numpy()
    for t_ in range(2):
        c = sn[:, t_].mean()
        terms = (sn[:, t_] - c)[:, None, None] * mn / 0.5
        assert np.allclose(acc.map(0.5, True)[t_].numpy(), terms.mean(0), atol=1e-12)
        assert np.allclose(acc.stderr(0.5, True)[t_].numpy(), terms.std(0, ddof=1) / math.sqrt(6), atol=1e-10)
    two = S.MaskMoments()
    two.update(m[:2, None], s[:2, 0])
    terms = sn[:2, 0][:, None, None] * mn[:2] / 0.5
    assert np.allclose(two.stderr(0.5, False)[0].numpy(), terms.std(0, ddof=1) / math.sqrt(2), atol=1e-10)


def test_tolerance_messages_and_smallest_block():
    with pytest.raises(ValueError, match=r"^tolerance must be > 0, not 0\.0$"):
        S.Tolerance(0.0, block=8)
    with pytest.raises(ValueError, match=r"^block must be >= 1, not 0$"):
        S.Tolerance(0.1, block=0)
    t = S.Tolerance(0.1, block=1)
    assert t.due(0, 1) and t.due(1, 2)


def test_shapley_mass_of_two_players_and_its_message():
    assert torch.equal(S.shapley_mass(2), torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"^the Shapley kernel needs at least 2 players, not 1$"):
        S.shapley_mass(1)


def test_systematic_counts_one_draw_unnormalised_mass_and_seeds():
    mass = torch.tensor([1.0, 0.0, 3.0], dtype=torch.float64)          # not normalised: 1/4, 0, 3/4
    firsts = 0
    for seed in range(40):
        c = S.systematic_counts(mass, 1, torch.Generator().manual_seed(seed))
        assert int(c.sum()) == 1 and int(c[1]) == 0
        firsts += int(c[0])
        c8 = S.systematic_counts(mass, 8, torch.Generator().manual_seed(seed))
        assert torch.equal(c8, torch.tensor([2, 0, 6]))                  # exact: 8/4 and 3 * 8/4
        again = S.systematic_counts(mass, 5, torch.Generator().manual_seed(seed))
        assert torch.equal(again, S.systematic_counts(mass, 5, torch.Generator().manual_seed(seed)))
    assert 2 <= firsts <= 20                                             # P(first) = 1/4 (expect 10)
    assert S.systematic_counts(mass, 0, torch.Generator()).dtype == torch.long
    assert S.blocked_design(mass, 0, 4, torch.Generator()).dtype == torch.long


def test_middle_class_pairs_of_an_even_game_follow_the_kernel():
    # p = 4: the middle class holds C(4, 2) / 2 = 3 pairs; 5 pairs split 8/11 : 3/11 between the
    # classes {1, 3} and {2}, each class floor or ceil of its share, no pair twice.
    p, n = 4, 10
    mass = S.shapley_mass(p)
    for seed in range(20):
        z = S.coalition_design(mass, n, torch.Generator().manual_seed(seed))
        assert z.shape == (n, p) and bool((z[0::2] + z[1::2] == 1).all())
        first = z[0::2]
        mid = int((first.sum(1) == 2).sum())
        assert 1 <= mid <= 2, (seed, mid)                               # 5 * 3/11 = 1.36
        assert len({tuple(r.tolist()) for r in z}) == n


def test_unpaired_strata_of_an_even_game_count_every_middle_coalition():
    # unpaired: the population of size 2 among 4 players is C(4, 2) = 6 coalitions (not 3 pairs)
    z = torch.tensor([[1, 1, 0, 0], [0, 1, 1, 0], [1, 0, 0, 0]])
    d = S.design_strata(z, 3, paired=False)
    assert torch.allclose(d.fpc, torch.tensor([2 / 6, 2 / 6, 1 / 4], dtype=torch.float64), rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------- seventh round survivors

def test_middle_class_rows_hold_player_zero_sampled_or_enumerated():
    # p = 6, m = 3: 10 complementary pairs; the representative of each is the one with player 0
    for count in (4, 10):                                          # sampled, then enumerated
        for seed in range(5):
            z = S._draw_class(6, 3, count, torch.Generator().manual_seed(seed))
            assert z.shape == (count, 6) and bool((z.sum(1) == 3).all())
            assert bool((z[:, 0] == 1).all()), (count, seed)
            assert len({tuple(r.tolist()) for r in z}) == count


def test_design_has_n_rows_or_every_weighted_coalition_once():
    p = 6
    for mass, weighted in ((S.shapley_mass(p), 2 ** p - 2), (S.lime_mass(p, 0.25)[0], 2 ** p)):
        for n in range(0, weighted + 1):
            z = S.coalition_design(mass, n, torch.Generator().manual_seed(n))
            assert z.shape == (n, p) and z.dtype == torch.long, n
        for n in (weighted + 1, weighted + 2, 3 * weighted):            # more than there are: each once
            z = S.coalition_design(mass, n, torch.Generator().manual_seed(n))
            assert z.shape == (weighted, p) and len({tuple(r.tolist()) for r in z}) == weighted, n
            assert bool((mass[z.sum(1)] > 0).all())


def test_paired_class_counts_are_floor_or_ceil_for_every_seed():
    p, n = 50, 400
    mass = S.shapley_mass(p)
    for seed in range(20):
        z = S.coalition_design(mass, n, torch.Generator().manual_seed(seed))
        counts = torch.bincount(z[0::2].sum(1), minlength=p + 1)
        for m in range(1, p // 2 + 1):
            expect = n / 2 * float(mass[m] + (mass[p - m] if 2 * m != p else 0))
            got = int(counts[m]) + (int(counts[p - m]) if 2 * m != p else 0)
            assert math.floor(expect) <= got <= math.ceil(expect), (seed, m, got, expect)


def test_shapley_solve_sums_to_full_minus_empty_exactly():
    g = torch.Generator().manual_seed(0)
    z = (torch.rand((40, 7), generator=g) < 0.5).long()
    y = torch.randn(40, generator=g, dtype=torch.float64)
    phi, _ = S.shapley_solve(z, y, torch.rand(40, generator=g, dtype=torch.float64), full=1 / 3, empty=-0.1)
    assert phi.dtype == torch.float64
    assert abs(float(phi.sum()) - (1 / 3 + 0.1)) < 1e-13


def test_rise_points_are_reproducible_from_the_generator_alone():
    for kind in ("sobol", "iid"):
        torch.manual_seed(1)
        np.random.seed(1)
        a = S.rise_points(20, 5, torch.Generator().manual_seed(7), kind, block=8)
        torch.manual_seed(2)
        np.random.seed(2)
        b = S.rise_points(20, 5, torch.Generator().manual_seed(7), kind, block=8)
        assert torch.equal(a, b) and a.dtype == torch.float64 and a.shape == (20, 5), kind
        c = S.rise_points(20, 5, torch.Generator().manual_seed(8), kind, block=8)
        assert not torch.equal(a, c)
    assert torch.equal(S.rise_points(16, 4, torch.Generator().manual_seed(3)),
                       S.rise_points(16, 4, torch.Generator().manual_seed(3), "sobol"))    # the default
    firsts = {tuple(S.rise_points(1, 3, torch.Generator().manual_seed(s))[0].tolist()) for s in range(200)}
    assert len(firsts) == 200                                       # scrambles drawn from a wide seed range


def test_rise_points_cut_the_last_block_and_allow_none():
    u = S.rise_points(40, 6, torch.Generator().manual_seed(0), "sobol", block=32)
    assert u.shape == (40, 6)
    assert bool(((u[:32, :] < 0.5).sum(0) == 16).all())
    for kind in ("sobol", "iid"):
        e = S.rise_points(0, 6, torch.Generator().manual_seed(0), kind)
        assert e.shape == (0, 6) and e.dtype == torch.float64
    with pytest.raises(ValueError, match=r"^unknown mask sampler 'halton'; use sobol or iid$"):
        S.rise_points(4, 3, torch.Generator(), "halton")


def test_rise_cells_by_hand_with_oblong_cells():
    u = torch.tensor([[0.1, 0.9, 0.4, 0.6, 0.55, 0.95],
                      [0.7, 0.2, 0.5, 0.3, 0.05, 0.30]], dtype=torch.float64)
    cells, dy, dx = S.rise_cells(u, 2, 0.5, (10, 4))
    assert cells.shape == (2, 1, 2, 2)
    assert torch.equal(cells, torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]], [[[0.0, 1.0], [0.0, 1.0]]]]))
    assert dy.tolist() == [5, 0] and dx.tolist() == [3, 1]
    with pytest.raises(ValueError, match=r"^RISE points need 6 coordinates, got 5$"):
        S.rise_cells(u[:, :5], 2, 0.5, (10, 4))
