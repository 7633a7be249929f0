"""vlx.attribute.perturb rule by rule (mutation survivors): each expected value is written by hand
or computed in the test with numpy, never by the code under test."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute import perturb
from vlx.attribute.base import FunctionScorer
from vlx.errors import UsageError
from vlx.types import ClassTarget


pytestmark = pytest.mark.usefixtures("one_thread")     # see tests/conftest.py


# -- pixels and players ---------------------------------------------------------------------------

PRE = SimpleNamespace(mean=(0.4, 0.5, 0.3), std=(0.2, 0.25, 0.5), scale=2.0)


def normalise(pixels: np.ndarray) -> torch.Tensor:
    """``Preprocess``'s formula by hand: ``(p / 255 * scale - mean) / std``, (H, W, 3) -> (3, H, W)."""
    p = pixels.astype(np.float64) / 255 * PRE.scale
    return torch.tensor((p - np.array(PRE.mean)) / np.array(PRE.std), dtype=torch.float32).permute(2, 0, 1)


def test_to_pixels_undoes_the_preprocessing_per_channel_and_clamps():
    pix = np.array([[[0, 255, 17], [128, 3, 250]], [[77, 200, 1], [254, 90, 33]]], dtype=np.uint8)
    x = normalise(pix)
    got = perturb.to_pixels(SimpleNamespace(preprocess=PRE), x)
    assert got.dtype == np.uint8 and got.shape == (2, 2, 3)
    np.testing.assert_array_equal(got, pix)
    # out of range: above 1 -> 255, below 0 -> 0 (per channel: 1.25 and -0.5 of the scale)
    x = x.clone()
    x[0, 0, 0] = (1.25 * PRE.scale - PRE.mean[0]) / PRE.std[0]
    x[2, 1, 1] = (-0.5 * PRE.scale - PRE.mean[2]) / PRE.std[2]
    got = perturb.to_pixels(SimpleNamespace(preprocess=PRE), x)
    assert got[0, 0, 0] == 255 and got[1, 1, 2] == 0
    # rounding, not truncation: 100.6 / 255 of the range is 101
    y = normalise(np.full((1, 1, 3), 0, np.uint8))
    y[1, 0, 0] = (100.6 / 255 * PRE.scale - PRE.mean[1]) / PRE.std[1]
    assert perturb.to_pixels(SimpleNamespace(preprocess=PRE), y)[0, 0, 1] == 101


def test_superpixel_players_run_slic_on_the_pixels_and_number_segments_from_zero(monkeypatch):
    from vlx.regions import superpixels

    seen = {}

    def fake_slic(px, n):
        seen["px"], seen["n"] = px.copy(), n
        return np.array([[7, 7, 3], [12, 3, 7]], dtype=np.int32)

    monkeypatch.setattr(superpixels, "slic_segments", fake_slic)
    pix = np.arange(18, dtype=np.uint8).reshape(2, 3, 3) * 13
    model = SimpleNamespace(preprocess=PRE)
    got = perturb.superpixel_players(model, normalise(pix), 9)
    assert seen["n"] == 9
    np.testing.assert_array_equal(seen["px"], pix)
    assert got.dtype == torch.int64 and got.tolist() == [[1, 1, 0], [2, 0, 1]]      # 3, 7, 12 -> 0, 1, 2
    # players_of: a model without players gets these superpixels of its only input
    got = perturb.players_of(model, normalise(pix)[None], 9)
    assert got.tolist() == [[1, 1, 0], [2, 0, 1]] and seen["n"] == 9


def test_players_of_needs_players_or_a_preprocessing_and_checks_the_grid():
    with pytest.raises(UsageError, match=r"^this score function has no players; give it a players\(x, n_segments\) method$"):
        perturb.players_of(SimpleNamespace(logits=None), torch.ones(1, 3, 2, 2), 4)
    with pytest.raises(UsageError, match="has no players"):
        perturb.players_of(SimpleNamespace(preprocess=None), torch.ones(1, 3, 2, 2), 4)
    bad = FunctionScorer(lambda t: t.sum((1, 2, 3)), players=torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"^players are \(2, 3\) but the input grid is \(2, 2\)$"):
        perturb.players_of(bad, torch.ones(1, 4, 2, 2), 4)
    seen = []
    x = torch.tensor([[[[3.0, 1.0], [2.0, 3.0]]]])
    fn = FunctionScorer(lambda t: t.sum((1, 2, 3)), players=lambda t, n: seen.append(n) or (t[0, 0] * 10).long())
    got = perturb.players_of(fn, x, 6)
    assert seen == [6] and got.dtype == torch.int64 and got.tolist() == [[2, 0], [1, 2]]    # 30, 10, 20 -> 2, 0, 1


# -- occlusion ------------------------------------------------------------------------------------

def occlusion_reference(contrib: np.ndarray, win: int, st: int) -> np.ndarray:
    """Mean drop of the ``win`` windows (stride ``st``) inside the grid covering each position, for a
    linear score (a window's drop is the sum of its contributions); 0 where no window reaches."""
    h, w = contrib.shape
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for y0 in range(0, h - win + 1, st):
        for x0 in range(0, w - win + 1, st):
            total[y0:y0 + win, x0:x0 + win] += contrib[y0:y0 + win, x0:x0 + win].sum()
            count[y0:y0 + win, x0:x0 + win] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


@pytest.mark.parametrize("hw,window,win,st", [
    ((16, 18), None, 2, 1),        # window min(h, w) // 8 = 2, stride half of it
    ((8, 11), None, 1, 1),         # 8 // 8 = 1
    ((5, 6), None, 1, 1),          # below 8 px: at least 1
    ((9, 10), 4, 4, 2),            # a given window, the stride its half
    ((9, 10), 3, 3, 1),
])
def test_occlusion_default_window_and_stride(hw, window, win, st):
    g = torch.Generator().manual_seed(1)
    wts = torch.randn((2, *hw), generator=g, dtype=torch.float64)
    x = torch.rand((1, 2, *hw), generator=g)
    scorer = FunctionScorer(lambda t: (t.double() * wts).sum((1, 2, 3)).float(), batch_size=7)
    m = perturb.Occlusion(window=window, baseline="zero")
    out = m.attribute(scorer, x, ClassTarget(0))[0].double()
    contrib = (wts * x[0].double()).sum(0).numpy()
    np.testing.assert_allclose(out.numpy(), occlusion_reference(contrib, win, st), atol=1e-4)
    h, w = hw
    assert m.last_info[0]["samples"] == len(range(0, h - win + 1, st)) * len(range(0, w - win + 1, st))


def test_occlusion_with_no_window_inside_the_grid_is_zero_and_scores_nothing():
    calls = []
    scorer = FunctionScorer(lambda t: calls.append(len(t)) or t.sum((1, 2, 3)))
    m = perturb.Occlusion(window=9, baseline="zero")
    out = m.attribute_targets(scorer, torch.ones(1, 1, 8, 7), [ClassTarget(0), ClassTarget(0)])
    assert out.shape == (2, 8, 7) and out.dtype == torch.float32 and not out.any()
    assert calls == [2] and m.last_info == [{"samples": 0}]


def test_occlusion_players_score_each_player_once_and_pass_n_segments():
    seen = []
    lab = torch.tensor([[0, 0, 1], [2, 2, 1]])
    coef = torch.tensor([1.5, -2.0, 0.5])
    scorer = FunctionScorer(lambda t: torch.stack([t[:, 0][:, lab == p].mean(1) for p in range(3)], 1) @ coef,
                            players=lambda t, n: seen.append(n) or lab)
    m = perturb.Occlusion(regions="players", baseline="zero")
    out = m.attribute(scorer, torch.ones(1, 1, 2, 3), ClassTarget(0))[0]
    assert seen == [32] and m.last_info == [{"samples": 3}]
    torch.testing.assert_close(out, coef[lab])
    perturb.Occlusion(regions="players", n_segments=5).attribute(scorer, torch.ones(1, 1, 2, 3), ClassTarget(0))
    assert seen == [32, 5]


def test_occlusion_options_and_messages():
    m = perturb.Occlusion()
    assert (m.window, m.stride, m.regions, m.n_segments) == (None, None, "windows", 32)
    assert m.options == {"batch_size": None, "baseline": None, "seed": 0,
                         "window": None, "stride": None, "regions": "windows", "n_segments": 32}
    m = perturb.Occlusion(window=3, stride=2, regions="players", n_segments=7.0, seed=4)
    assert m.options == {"batch_size": None, "baseline": None, "seed": 4,
                         "window": 3, "stride": 2, "regions": "players", "n_segments": 7.0}
    assert type(m.n_segments) is int
    with pytest.raises(UsageError, match=r"^unknown occlusion regions 'tiles'; use windows or players$"):
        perturb.Occlusion(regions="tiles")


def test_occlusion_explains_each_inputs_own_class_and_starts_with_no_scores():
    m = perturb.Occlusion(regions="players", baseline="zero")
    assert m.last_full is None and m.last_empty is None and m.last_info == []
    lab = torch.tensor([[0, 1], [0, 1]])
    coef = torch.tensor([[2.0, -1.0], [0.5, 3.0]])                    # class k: coef[k] . (player means)
    scorer = FunctionScorer(lambda t: torch.stack([t[:, 0][:, lab == p].mean(1) for p in range(2)], 1) @ coef.T,
                            players=lab)
    x = torch.tensor([[[[1.0, 1.0], [1.0, 1.0]]], [[[2.0, 4.0], [2.0, 4.0]]]])
    out = m.attribute(scorer, x, ClassTarget((1, 0)))
    torch.testing.assert_close(out[0], coef[1][lab] * 1.0)             # sample 0, class 1: drops 0.5, 3
    torch.testing.assert_close(out[1], coef[0][lab] * torch.tensor([2.0, 4.0])[lab])   # sample 1, class 0
    torch.testing.assert_close(m.last_full, torch.tensor([[3.5], [0.0]]))
    assert m.last_info == [{"samples": 2}, {"samples": 2}]


# -- RISE -----------------------------------------------------------------------------------------

def bilinear_up(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``a`` ``(n, g, g)`` with half-pixel centres (``align_corners=False``), by hand."""
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0

    y0, y1, fy = axis(a.shape[1], size[0])
    x0, x1, fx = axis(a.shape[2], size[1])
    rows = a[:, y0] * (1 - fy)[None, :, None] + a[:, y1] * fy[None, :, None]
    return rows[:, :, x0] * (1 - fx) + rows[:, :, x1] * fx


def rise_masks_reference(n, grid, p, hw, seed, sampler, block):
    """RISE's masks as the paper makes them: cells kept below ``p``, upsampled bilinearly to
    ``(grid + 1) * cell`` (cell = ceil(size / grid)) and cropped at a shift in ``[0, cell)``, from the
    sampler's points for this seed."""
    from vlx.attribute import sampling

    u = sampling.rise_points(n, grid * grid + 2, torch.Generator().manual_seed(seed), sampler, block).numpy()
    h, w = hw
    ch, cw = -(-h // grid), -(-w // grid)
    cells = (u[:, :grid * grid] < p).astype(float).reshape(n, grid, grid)
    dy = np.minimum((u[:, -2] * ch).astype(int), ch - 1)
    dx = np.minimum((u[:, -1] * cw).astype(int), cw - 1)
    big = bilinear_up(cells, ((grid + 1) * ch, (grid + 1) * cw))
    return np.stack([big[j, dy[j]:dy[j] + h, dx[j]:dx[j] + w] for j in range(n)])


@pytest.mark.parametrize("sampler,tolerance,n", [("sobol", None, 160), ("sobol", 0.5, 12), ("iid", None, 12)])
def test_rise_masks_are_the_papers_from_the_seeded_points(sampler, tolerance, n):
    torch.manual_seed(123)                                     # the global generator plays no part
    rise = perturb.RISE(n_masks=n, grid=3, p=0.4, sampler=sampler, tolerance=tolerance, block=4, seed=5)
    state = rise.prepare(None, torch.ones(1, 1, 10, 13))
    got = rise.mask_chunk(state, 0, n)
    assert got.shape == (n, 1, 10, 13)
    ref = rise_masks_reference(n, 3, 0.4, (10, 13), 5, sampler, 4 if tolerance else None)
    np.testing.assert_allclose(got[:, 0].numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(rise.mask_chunk(state, 3, 7)[:, 0].numpy(), ref[3:7], atol=1e-6)


def rise_reference(masks: np.ndarray, s: np.ndarray, p: float, centre: bool):
    """The map ``sum (s_i - c) M_i / (n p)`` and the largest standard error of that mean."""
    c = s.mean() if centre else 0.0
    terms = (s - c)[:, None, None] * masks / p
    se = terms.std(0, ddof=1) / np.sqrt(len(s)) if len(s) > 1 else np.full(masks.shape[1:], np.inf)
    return terms.mean(0), float(se.max())


def planted_rise_scorer():
    wts = torch.linspace(-1, 2, 6 * 7).view(1, 1, 6, 7)
    return FunctionScorer(lambda t: torch.stack([(t * wts).sum((1, 2, 3)), -(t * wts).sum((1, 2, 3))], 1),
                          batch_size=3), wts


@pytest.mark.parametrize("centre,score", [(True, "logit"), (False, "probability"), (True, "probability")])
def test_rise_map_and_report_equal_the_estimator_by_hand(centre, score):
    scorer, wts = planted_rise_scorer()
    rise = perturb.RISE(n_masks=20, grid=2, p=0.5, score=score, centre=centre, baseline="zero", seed=2)
    out = rise.attribute(scorer, torch.ones(1, 1, 6, 7), ClassTarget(1))[0].double().numpy()
    masks = rise_masks_reference(20, 2, 0.5, (6, 7), 2, "sobol", None)
    logits = np.stack([(masks * wts[0, 0].numpy()).sum((1, 2)), -(masks * wts[0, 0].numpy()).sum((1, 2))], 1)
    s = logits[:, 1] if score == "logit" else np.exp(logits[:, 1]) / np.exp(logits).sum(1)
    ref, se = rise_reference(masks, s, 0.5, centre)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    info = rise.last_info[0]
    assert info == {"samples": 20, "max_samples": 20, "stderr": pytest.approx(se, rel=1e-5), "tolerance": None,
                    "sampler": "sobol", "converged": None}


def test_rise_tolerance_stops_at_the_first_due_block_and_reports_it():
    scorer, wts = planted_rise_scorer()
    # batches of 3, blocks of 4, at least 8 masks: the first check falls after 9 masks
    rise = perturb.RISE(n_masks=40, grid=2, score="logit", tolerance=1e6, block=4, baseline="zero", seed=1)
    out = rise.attribute(scorer, torch.ones(1, 1, 6, 7), ClassTarget(0))[0].double().numpy()
    masks = rise_masks_reference(40, 2, 0.5, (6, 7), 1, "sobol", 4)[:9]
    ref, se = rise_reference(masks, (masks * wts[0, 0].numpy()).sum((1, 2)), 0.5, True)
    np.testing.assert_allclose(out, ref, atol=1e-5)
    assert rise.last_info[0] == {"samples": 9, "max_samples": 40, "stderr": pytest.approx(se, rel=1e-5),
                                 "tolerance": 1e6, "sampler": "sobol", "converged": True}
    # the rule reads the centred error: scores offset by 50 leave it as it is, the uncentred one grows
    offset = FunctionScorer(lambda t: scorer.logits(t) + 50, batch_size=3)
    s9 = (masks * wts[0, 0].numpy()).sum((1, 2)) + 50
    assert rise_reference(masks, s9, 0.5, False)[1] > 2 * se
    rise = perturb.RISE(n_masks=40, grid=2, score="logit", tolerance=1.5 * se, block=4, baseline="zero", seed=1)
    rise.attribute(offset, torch.ones(1, 1, 6, 7), ClassTarget(0))
    assert rise.last_info[0]["samples"] == 9 and rise.last_info[0]["converged"] is True
    tight = perturb.RISE(n_masks=12, grid=2, score="logit", tolerance=1e-9, block=4, baseline="zero", seed=1)
    tight.attribute(scorer, torch.ones(1, 1, 6, 7), ClassTarget(0))
    assert tight.last_info[0]["samples"] == 12 and tight.last_info[0]["converged"] is False


@pytest.mark.parametrize("n", [0, 1])
def test_rise_with_no_mask_or_one(n):
    scorer, wts = planted_rise_scorer()
    rise = perturb.RISE(n_masks=n, grid=2, p=0.5, score="logit", centre=False, baseline="zero", seed=0)
    out = rise.attribute_targets(scorer, torch.ones(1, 1, 6, 7), [ClassTarget(0), ClassTarget(1)])
    assert out.shape == (2, 6, 7)
    if n == 0:
        assert not out.any()
        return
    m = rise_masks_reference(1, 2, 0.5, (6, 7), 0, "sobol", None)[0]
    s = float((m * wts[0, 0].numpy()).sum())
    np.testing.assert_allclose(out.numpy(), np.stack([s * m / 0.5, -s * m / 0.5]), atol=1e-5)
    assert rise.last_info[0]["stderr"] == float("inf")


def test_rise_options_defaults_signs_and_messages():
    r = perturb.RISE()
    assert (r.n_masks, r.grid, r.p, r.score, r.centre, r.sampler) == (1000, 7, 0.5, "probability", True, "sobol")
    assert (r.stop.tolerance, r.stop.block, r.stop.min_samples) == (None, 128, 256)
    assert r.options == {"batch_size": None, "baseline": None, "seed": 0, "n_masks": 1000, "grid": 7, "p": 0.5,
                         "score": "probability", "centre": True, "sampler": "sobol", "tolerance": None, "block": 128}
    r = perturb.RISE(n_masks=9, grid=3, p=0.25, score="logit", centre=False, sampler="iid", tolerance=0.1, block=16,
                     batch_size=5, baseline="blur", seed=3)
    assert r.options == {"batch_size": 5, "baseline": "blur", "seed": 3, "n_masks": 9, "grid": 3, "p": 0.25,
                         "score": "logit", "centre": False, "sampler": "iid", "tolerance": 0.1, "block": 16}
    assert (r.stop.tolerance, r.stop.block, r.stop.min_samples) == (0.1, 16, 32)
    assert (r.batch_size, r.baseline, r.seed) == (5, "blur", 3)
    assert r.signed                                              # a logit can be negative
    assert perturb.RISE().signed and perturb.RISE(score="logit").signed
    assert perturb.RISE(centre=False).signed is False             # the paper's map of probabilities is >= 0
    with pytest.raises(UsageError, match=r"^unknown RISE score 'prob'; use probability or logit$"):
        perturb.RISE(score="prob")
    with pytest.raises(UsageError, match=r"^unknown RISE sampler 'halton'; use sobol or iid$"):
        perturb.RISE(sampler="halton")


# -- LIME and KernelSHAP: the rows scored, the values and errors they give, the stopping rule -------

LAB = torch.arange(6).view(2, 3).repeat_interleave(2, 0).repeat_interleave(2, 1)     # 6 players, 2x2 blocks


def game6(v: np.ndarray) -> np.ndarray:
    return v @ np.array([1.0, -2.0, 0.5, 3.0, -1.0, 2.0]) + 2.5 * v[:, 0] * v[:, 1] - 1.5 * v[:, 2] * v[:, 3] * v[:, 5]


class Recorder:
    """A score function of the players' visibility (zero baseline, ones input): records the
    coalitions it is shown, after the intact input and the baseline."""

    def __init__(self, lab: torch.Tensor = LAB, game=game6):
        self.rows, self.lab, self.game, self.p = [], lab, game, int(lab.max()) + 1
        self.batch_size = 4

    def logits(self, t):
        v = torch.stack([t[:, 0][:, self.lab == p].mean(1) for p in range(self.p)], 1).double().numpy()
        self.rows.extend(v.tolist())
        return torch.tensor(self.game(v), dtype=torch.float32)[:, None]

    def players(self, x, n):
        return self.lab

    def run(self, method):
        out = method.attribute(self, torch.ones(1, 1, *self.lab.shape), ClassTarget(0))[0]
        z = np.array(self.rows[2:])
        assert self.rows[0] == [1.0] * self.p and self.rows[1] == [0.0] * self.p
        return np.array([float(out[self.lab == p][0]) for p in range(self.p)]), z


def shapley_mass_np(p):
    m = np.array([0.0] + [1 / (k * (p - k)) for k in range(1, p)] + [0.0])
    return m / m.sum()


def lime_mass_np(p, width):
    k = np.arange(p + 1)
    q = np.array([math.comb(p, int(j)) for j in k]) / 2 ** p * np.exp(-((1 - np.sqrt(k / p)) ** 2) / width ** 2)
    return q / q.sum(), q.sum()


def post_stratified(z, mass, scale, n_samples, n_design):
    """A size-k row weighs mass_k m / c_k (m rows, c_k of size k), times the method's scale, times
    n_samples / (rows in the whole design)."""
    k = z.sum(1).astype(int)
    c = np.bincount(k, minlength=len(mass))
    return mass[k] * len(z) / c[k] * scale * n_samples / n_design


def constrained_wls(z, y, w, full, empty):
    """argmin sum w (y - empty - z phi)^2 subject to sum(phi) = full - empty (KKT, by numpy)."""
    p = z.shape[1]
    a = np.zeros((p + 1, p + 1))
    a[:p, :p] = 2 * z.T @ (w[:, None] * z)
    a[:p, p] = a[p, :p] = 1
    b = np.concatenate([2 * z.T @ (w * (y - empty)), [full - empty]])
    return np.linalg.solve(a, b)[:p]


def ridge_np(z, y, w, alpha):
    """argmin sum w (y - c - z b)^2 + alpha |b|^2, c unpenalised (by numpy)."""
    a = np.hstack([np.ones((len(z), 1)), z])
    pen = np.diag([0.0] + [alpha] * z.shape[1])
    return np.linalg.solve(a.T @ (w[:, None] * a) + pen, a.T @ (w * y))[1:]


def design_rows(method, mass, n, block, seed, alloc=None):
    from vlx.attribute import sampling

    return sampling.blocked_design(torch.tensor(mass), n, block, torch.Generator().manual_seed(seed),
                                   None if alloc is None else torch.tensor(alloc)).numpy()


def stderr_of(solver, z, y, w, design, *args):
    return float(solver(torch.tensor(z), torch.tensor(y), torch.tensor(w), *args, design)[1].max())


@pytest.mark.parametrize("sampler", ["paired", "leverage"])
def test_kernelshap_scores_the_seeded_design_and_solves_it(sampler):
    from vlx.attribute import sampling

    torch.manual_seed(7)                                     # the global generator plays no part
    rec = Recorder()
    ks = perturb.KernelSHAP(n_samples=40, sampler=sampler, baseline="zero", seed=3)
    got, z = rec.run(ks)
    mass = shapley_mass_np(6)
    alloc = (mass > 0).astype(float) if sampler == "leverage" else None
    np.testing.assert_array_equal(z, design_rows(ks, mass, 40, 40, 3, alloc))
    w = post_stratified(z, mass, 1.0, 40, 40)
    y, full = game6(z), float(game6(np.ones((1, 6)))[0])
    np.testing.assert_allclose(got, constrained_wls(z, y, w, full, 0.0), atol=1e-4)
    se = stderr_of(lambda *a: sampling.shapley_solve(a[0], a[1], a[2], full, 0.0, a[3]), z, y, w,
                   sampling.design_strata(torch.tensor(z).long(), 40))
    assert ks.last_info == [{"samples": 40, "max_samples": 40, "stderr": pytest.approx(se, rel=1e-4),
                             "tolerance": None, "sampler": sampler, "converged": None}]


def test_kernelshap_iid_draws_sizes_from_the_kernel_with_weight_one():
    from vlx.attribute import sampling

    rec = Recorder()
    ks = perturb.KernelSHAP(n_samples=30, sampler="iid", baseline="zero", seed=2)
    got, z = rec.run(ks)
    g = torch.Generator().manual_seed(2)
    k = torch.multinomial(torch.tensor(shapley_mass_np(6)), 30, replacement=True, generator=g)
    ref = (torch.rand((30, 6), generator=g).argsort(1).argsort(1) < k[:, None]).long().numpy()
    np.testing.assert_array_equal(z, ref)
    y, full = game6(z), float(game6(np.ones((1, 6)))[0])
    np.testing.assert_allclose(got, constrained_wls(z, y, np.ones(30), full, 0.0), atol=1e-4)
    se = stderr_of(lambda *a: sampling.shapley_solve(a[0], a[1], a[2], full, 0.0, a[3]), z, y, np.ones(30), None)
    assert ks.last_info[0]["stderr"] == pytest.approx(se, rel=1e-4)
    zz, ww = ks.coalitions(6, torch.Generator().manual_seed(2))
    assert ww.dtype == torch.float64 and torch.equal(ww, torch.ones(30, dtype=torch.float64))
    z0, w0 = ks.coalitions(6, torch.Generator(), n=0)
    assert z0.shape == (0, 6) and w0.shape == (0,)


@pytest.mark.parametrize("sampler", ["paired", "iid"])
def test_lime_scores_the_seeded_coalitions_and_fits_its_ridge(sampler):
    from vlx.attribute import sampling

    rec = Recorder()
    lime = perturb.LIME(n_samples=36, sampler=sampler, kernel_width=0.5, ridge=0.7, baseline="zero", seed=4)
    got, z = rec.run(lime)
    mass, scale = lime_mass_np(6, 0.5)
    if sampler == "paired":
        np.testing.assert_array_equal(z, design_rows(lime, mass, 36, 36, 4, mass))
        w = post_stratified(z, mass, scale, 36, 36)
        design = sampling.design_strata(torch.tensor(z).long(), 36)
    else:
        ref = (torch.rand((36, 6), generator=torch.Generator().manual_seed(4)) < 0.5).long().numpy()
        ref[0] = 1
        np.testing.assert_array_equal(z, ref)
        w = np.exp(-((1 - np.sqrt(z.sum(1) / 6)) ** 2) / 0.25)
        design = None
    y = game6(z)
    np.testing.assert_allclose(got, ridge_np(z, y, w, 0.7), atol=1e-4)
    se = stderr_of(lambda *a: sampling.ridge_solve(a[0], a[1], a[2], 0.7, a[3]), z, y, w, design)
    assert lime.last_info[0]["stderr"] == pytest.approx(se, rel=1e-4)


@pytest.mark.parametrize("cls,sampler", [("KernelSHAP", "paired"), ("LIME", "paired"), ("LIME", "iid"),
                                         ("KernelSHAP", "leverage")])
def test_surrogate_tolerance_stops_at_the_first_due_block_with_the_prefix_reweighted(cls, sampler):
    from vlx.attribute import sampling

    cls = getattr(perturb, cls)

    # blocks of 8, at least 16 rows, batches of 4: a generous tolerance stops after exactly 16
    rec = Recorder()
    m = cls(n_samples=64, sampler=sampler, tolerance=1e6, block=8, baseline="zero", seed=1)
    got, z = rec.run(m)
    assert len(z) == 16 and m.last_info[0]["samples"] == 16 and m.last_info[0]["converged"] is True
    y, full = game6(z), float(game6(np.ones((1, 6)))[0])
    if cls is perturb.KernelSHAP:
        mass = shapley_mass_np(6)
        alloc = (mass > 0).astype(float) if sampler == "leverage" else None
        whole = design_rows(m, mass, 64, 8, 1, alloc)
        np.testing.assert_array_equal(z, whole[:16])
        w = post_stratified(z, mass, 1.0, 64, len(whole))
        np.testing.assert_allclose(got, constrained_wls(z, y, w, full, 0.0), atol=1e-4)
        se = stderr_of(lambda *a: sampling.shapley_solve(a[0], a[1], a[2], full, 0.0, a[3]), z, y, w,
                       sampling.design_strata(torch.tensor(z).long(), 8))
    else:
        mass, scale = lime_mass_np(6, 0.25)
        if sampler == "paired":
            whole = design_rows(m, mass, 64, 8, 1, mass)
            np.testing.assert_array_equal(z, whole[:16])
            w = post_stratified(z, mass, scale, 64, len(whole))
            design = sampling.design_strata(torch.tensor(z).long(), 8)
        else:
            w, design = np.exp(-((1 - np.sqrt(z.sum(1) / 6)) ** 2) / 0.25 ** 2), None
        np.testing.assert_allclose(got, ridge_np(z, y, w, 1.0), atol=1e-4)
        se = stderr_of(lambda *a: sampling.ridge_solve(a[0], a[1], a[2], 1.0, a[3]), z, y, w, design)
    assert m.last_info == [{"samples": 16, "max_samples": 64, "stderr": pytest.approx(se, rel=1e-4),
                            "tolerance": 1e6, "sampler": sampler, "converged": True}]
    tight = cls(n_samples=24, sampler=sampler, tolerance=1e-12, block=8, baseline="zero", seed=1)
    Recorder().run(tight)
    assert tight.last_info[0]["samples"] == 24 and tight.last_info[0]["converged"] is False


def test_kernelshap_with_one_player_scores_no_coalition():
    calls = []
    scorer = FunctionScorer(lambda t: calls.append(len(t)) or 2 * t.sum((1, 2, 3)), players=torch.zeros(2, 2).long())
    ks = perturb.KernelSHAP(n_samples=16, baseline="zero")
    out = ks.attribute(scorer, torch.ones(1, 1, 2, 2), ClassTarget(0))[0]
    assert calls == [2] and ks.last_info[0]["samples"] == 0
    torch.testing.assert_close(out, torch.full((2, 2), 8.0))
    z, w = ks.coalitions(1, torch.Generator())
    assert z.shape == (0, 1) and w.shape == (0,) and w.dtype == torch.float64


def test_coalitions_take_an_explicit_count_and_players_get_n_segments():
    for m in (perturb.LIME(n_samples=50), perturb.KernelSHAP(n_samples=50), perturb.LIME(n_samples=50, sampler="iid")):
        z, w = m.coalitions(6, torch.Generator().manual_seed(0), n=12)
        assert z.shape == (12, 6) and w.shape == (12,)
    seen = []
    scorer = FunctionScorer(lambda t: t.sum((1, 2, 3)), players=lambda t, n: seen.append(n) or LAB)
    perturb.LIME(n_samples=8, baseline="zero").attribute(scorer, torch.ones(1, 1, 4, 6), ClassTarget(0))
    perturb.KernelSHAP(n_samples=8, n_segments=5, baseline="zero").attribute(scorer, torch.ones(1, 1, 4, 6),
                                                                             ClassTarget(0))
    assert seen == [32, 5]


def test_fit_with_several_targets_or_none():
    from vlx.attribute import sampling

    z, w = perturb.KernelSHAP(n_samples=40).coalitions(5, torch.Generator().manual_seed(0))
    z = z.double()
    y = torch.stack([z @ torch.tensor([1.0, -1, 2, 0, 3], dtype=torch.float64) + z[:, 0] * z[:, 1],
                     -3 * z[:, 2] * z[:, 4]], 1)
    full, empty = torch.tensor([6.0, -3.0], dtype=torch.float64), torch.zeros(2, dtype=torch.float64)
    design = sampling.design_strata(z.long(), 40)
    for m, solver in ((perturb.KernelSHAP(), lambda t: sampling.shapley_solve(z, y[:, t], w, float(full[t]), 0.0,
                                                                               design)),
                      (perturb.LIME(), lambda t: sampling.ridge_solve(z, y[:, t], w, 1.0, design))):
        values, se = m.fit(z, y, w, full, empty, design)
        assert values.shape == se.shape == (5, 2)
        for t in range(2):
            ref = solver(t)
            torch.testing.assert_close(values[:, t], ref[0])
            torch.testing.assert_close(se[:, t], ref[1])
        values, se = m.fit(z, y[:, :0], w, full[:0], empty[:0])
        assert values.shape == se.shape == (5, 0) and values.dtype == se.dtype == torch.float64


def test_surrogate_options_defaults_and_messages():
    m = perturb.LIME()
    assert (m.n_segments, m.n_samples, m.sampler, m.kernel_width, m.ridge, m.baseline) == (32, 512, "paired", 0.25,
                                                                                          1.0, "mean")
    assert (m.stop.tolerance, m.stop.block, m.stop.min_samples) == (None, 128, 256)
    assert m.options == {"batch_size": None, "baseline": None, "seed": 0, "n_segments": 32, "n_samples": 512,
                         "sampler": "paired", "tolerance": None, "block": 128, "kernel_width": 0.25, "ridge": 1.0}
    m = perturb.LIME(n_segments=9, n_samples=70, sampler="iid", tolerance=0.2, block=10, kernel_width=0.3, ridge=2.0)
    assert m.options == {"batch_size": None, "baseline": None, "seed": 0, "n_segments": 9, "n_samples": 70,
                         "sampler": "iid", "tolerance": 0.2, "block": 10, "kernel_width": 0.3, "ridge": 2.0}
    assert (m.stop.tolerance, m.stop.block, m.stop.min_samples) == (0.2, 10, 20)
    k = perturb.KernelSHAP(sampler="leverage", n_samples=7)
    assert k.options["sampler"] == "leverage" and k.options["n_samples"] == 7 and k.baseline == "mean"
    with pytest.raises(UsageError, match=r"^unknown kernelshap sampler 'sobol'; use paired, leverage, iid$"):
        perturb.KernelSHAP(sampler="sobol")
    with pytest.raises(UsageError, match=r"^unknown lime sampler 'leverage'; use paired, iid$"):
        perturb.LIME(sampler="leverage")


def test_lime_prefix_of_a_design_shorter_than_its_budget_stands_for_the_budget():
    """4 players: a block of 20 enumerates all 16 coalitions, so 60 samples are 48 rows; the
    tolerance stops after 40 rows, whose weights are post-stratified and scaled by 60 / 48."""
    lab = torch.arange(4).view(2, 2).repeat_interleave(2, 0).repeat_interleave(2, 1)
    game = lambda v: v @ np.array([1.0, -2.0, 0.5, 3.0]) + 4 * v[:, 0] * v[:, 1] * v[:, 3]
    rec = Recorder(lab, game)
    m = perturb.LIME(n_samples=60, tolerance=1e6, block=20, baseline="zero", seed=2)
    got, z = rec.run(m)
    mass, scale = lime_mass_np(4, 0.25)
    whole = design_rows(m, mass, 60, 20, 2, mass)
    assert len(whole) == 48 and len(z) == 40 and m.last_info[0]["samples"] == 40
    np.testing.assert_array_equal(z, whole[:40])
    w = post_stratified(z, mass, scale, 60, 48)
    np.testing.assert_allclose(got, ridge_np(z, game(z), w, 1.0), atol=1e-4)
    assert np.abs(ridge_np(z, game(z), w * (48 / 60) ** 2, 1.0) - got).max() > 1e-3      # the scale matters


def test_kernelshap_errors_read_one_design_block_without_a_tolerance():
    """200 rows of 8 players (254 coalitions): without a tolerance the design is one block of 200,
    not blocks of the default 128, and its standard errors are stratified that way."""
    from vlx.attribute import sampling

    lab = torch.arange(8).view(2, 4).repeat_interleave(2, 0).repeat_interleave(2, 1)
    coef = np.linspace(-2, 2, 8)
    game = lambda v: v @ coef + 3 * v[:, 0] * v[:, 5] - 2 * v[:, 1] * v[:, 2] * v[:, 7]
    rec = Recorder(lab, game)
    ks = perturb.KernelSHAP(n_samples=200, baseline="zero", seed=0)
    got, z = rec.run(ks)
    mass = shapley_mass_np(8)
    np.testing.assert_array_equal(z, design_rows(ks, mass, 200, 200, 0))
    w = post_stratified(z, mass, 1.0, 200, 200)
    y, full = game(z), float(game(np.ones((1, 8)))[0])
    np.testing.assert_allclose(got, constrained_wls(z, y, w, full, 0.0), atol=1e-4)
    solve = lambda *a: sampling.shapley_solve(a[0], a[1], a[2], full, 0.0, a[3])
    se = stderr_of(solve, z, y, w, sampling.design_strata(torch.tensor(z).long(), 200))
    assert ks.last_info[0]["stderr"] == pytest.approx(se, rel=1e-6)
    assert abs(stderr_of(solve, z, y, w, sampling.design_strata(torch.tensor(z).long(), 128)) - se) > 1e-6 * se
