"""vlx.attribute.perturb rule by rule (mutation survivors): each expected value is written by hand
or computed in the test with numpy, never by the code under test."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute import perturb
from vlx.attribute.base import FunctionScorer
from vlx.errors import UsageError
from vlx.types import ClassTarget


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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
