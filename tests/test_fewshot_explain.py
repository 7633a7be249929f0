"""Affinity Explainer parts against numpy written here: area-resized ROI weights on a coarser query
grid (and the whole grid when the ROI misses it), bilinear support upsampling, per-level sum-1,
weighted ROI contributions, the mask blur's sigma (scipy), shot shares by hand, equal ablation
weights when no level matters, exact messages; explain_support's sizes, weights and timing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from types import SimpleNamespace

import vlx.fewshot.explain as ex
from vlx.errors import UsageError
from vlx.fewshot import FewShotOutput
from vlx.fewshot.explain import (FEWSHOT_EXPLAINERS, SupportAttribution, ablation_weights, affinity_explainer,
                                 blurred_masks, explain_support, level_contributions, roi_foreground,
                                 support_contribution)
from vlx.fewshot.inputs import EpisodeInputs

K = 2
GRIDS = [((3, 3), (4, 4)), ((6, 6), (8, 8))]     # (query grid, support grid) per level


def _np_bilinear(v, out_hw):
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        return i0, np.minimum(i0 + 1, n_in - 1), src - i0
    y0, y1, ly = axis(v.shape[0], out_hw[0])
    x0, x1, lx = axis(v.shape[1], out_hw[1])
    rows = v[y0] * (1 - ly)[:, None] + v[y1] * ly[:, None]
    return rows[:, x0] * (1 - lx) + rows[:, x1] * lx


class GridModel:
    name, levels, input_size = "grid", ("a", "b"), (8, 8)
    device = torch.device("cpu")

    def __init__(self, level_sensitive=True, seed=0):
        rng = np.random.default_rng(seed)
        self.scores = [rng.normal(0, 1.5, (K, q[0] * q[1], s[0] * s[1])) for q, s in GRIDS]
        self.g = rng.normal(0, 1, (2, 6, 6))
        self.supports_level_weights = True
        self.level_sensitive = level_sensitive

    def to_input(self, images):
        return torch.stack([torch.from_numpy(np.asarray(a, np.float32)).permute(2, 0, 1)[:, :8, :8] / 255
                            for a in images])

    def forward(self, query, support, masks, level_weights=None):
        b = support.shape[0]
        lw = torch.ones(2) if level_weights is None or not self.level_sensitive else level_weights.float()
        fg = sum(lw[i] * torch.from_numpy(self.g[i]).float() for i in range(2))
        logits = torch.stack([torch.zeros_like(fg), fg])[None].expand(b, -1, -1, -1)
        aff = [torch.from_numpy(s).float()[None].expand(b, -1, -1, -1) for s in self.scores]
        return FewShotOutput(logits, aff, [q for q, _ in GRIDS], [s for _, s in GRIDS], [])


def _inputs(roi, masks=None, support_hw=((8, 8), (8, 8))):
    masks = np.zeros((K, 8, 8), np.float32) if masks is None else masks
    return EpisodeInputs(torch.zeros(1, 3, 8, 8), torch.zeros(1, K, 3, 8, 8), torch.from_numpy(masks)[None],
                         torch.from_numpy(roi), (6, 6), support_hw, ())


def _np_level(scores, w, sg):
    k, nq, ns = scores.shape
    flat = np.concatenate(list(scores), axis=1)
    soft = np.exp(flat - flat.max(1, keepdims=True))
    soft /= soft.sum(1, keepdims=True)
    soft /= soft.sum(0, keepdims=True) + 1e-6
    c = (w / w.sum()) @ soft
    up = np.stack([_np_bilinear(c[i * ns:(i + 1) * ns].reshape(sg), (8, 8)) for i in range(k)])
    up = np.maximum(up, 0)
    return up / up.sum()


def _area(roi, qg):
    f = roi.shape[0] // qg[0], roi.shape[1] // qg[1]
    return roi.reshape(qg[0], f[0], qg[1], f[1]).astype(np.float64).mean((1, 3)).ravel()


def test_level_contributions_by_numpy():
    model = GridModel()
    roi = np.zeros((6, 6), bool)
    roi[0:3, 1:5] = True                        # partial 2x2 blocks on the 3x3 grid: weights 1, 1/2, ...
    got = level_contributions(model, _inputs(roi)).numpy()
    assert got.shape == (2, K, 8, 8)
    for i, (qg, sg) in enumerate(GRIDS):
        want = _np_level(model.scores[i], _area(roi, qg), sg)
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-8)
        assert got[i].sum() == pytest.approx(1.0, abs=1e-5)


def test_level_contributions_roi_missing_the_grid_uses_all_positions():
    model = GridModel()
    roi = np.zeros((6, 6), bool)
    got = level_contributions(model, _inputs(roi)).numpy()
    for i, (qg, sg) in enumerate(GRIDS):
        want = _np_level(model.scores[i], np.ones(qg[0] * qg[1]), sg)
        np.testing.assert_allclose(got[i], want, rtol=1e-4, atol=1e-8)


def test_support_contribution_weighted_region():
    rng = np.random.default_rng(1)
    s = rng.normal(size=(3, 5, 4))
    w = np.array([2.0, 0.0, 1.0, 0.5, 0.0])
    flat = np.concatenate(list(s), axis=1)
    soft = np.exp(flat) / np.exp(flat).sum(1, keepdims=True)
    soft /= soft.sum(0, keepdims=True) + 1e-6
    want = ((w / w.sum()) @ soft).reshape(3, 4)
    got = support_contribution(torch.tensor(s), torch.tensor(w))
    assert got.shape == (3, 4) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5)


@pytest.mark.parametrize("hw, sigma", [((8, 8), 0.5), ((30, 60), 1.2), ((75, 20), 1.5)])
def test_blurred_masks_sigma_and_values(hw, sigma):
    rng = np.random.default_rng(2)
    m = (rng.random((K, *hw)) < 0.4).astype(np.float32)
    got = blurred_masks(SimpleNamespace(masks=torch.from_numpy(m)[None]))
    assert got.dtype == torch.float32 and got.shape == (K, *hw)
    want = np.stack([gaussian_filter(x.astype(np.float64), sigma, mode="nearest", truncate=4.0) for x in m])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-6)


def test_shot_shares_by_hand():
    raw = np.array([[[1.0, -2.0], [3.0, 0.0]], [[-1.0, 0.0], [4.0, 0.0]]], np.float32)
    a = SupportAttribution((), raw, "x", True, 0.0)
    np.testing.assert_allclose(a.shot_shares(), [0.5, 0.5])
    raw[1, 1, 0] = 12.0
    np.testing.assert_allclose(SupportAttribution((), raw, "x", True, 0.0).shot_shares(), [0.25, 0.75])
    neg = -np.abs(raw)
    neg = np.concatenate([neg, neg[:1]])
    np.testing.assert_allclose(SupportAttribution((), neg, "x", True, 0.0).shot_shares(), [1 / 3] * 3)


def test_roi_foreground_is_the_foreground_channel():
    logits = torch.tensor(np.random.default_rng(3).normal(size=(2, 2, 3, 3)), dtype=torch.float64)
    roi = torch.tensor([[True, False, False], [True, True, False], [False, False, False]])
    got = roi_foreground(FewShotOutput(logits, [], [], [], []), roi)
    np.testing.assert_allclose(got.numpy(), [l[1][roi.numpy()].mean() for l in logits.numpy()], rtol=1e-6)


def test_ablation_weights_equal_when_no_level_matters_and_message():
    roi = np.ones((6, 6), bool)
    w = ablation_weights(GridModel(level_sensitive=False), _inputs(roi))
    assert w.dtype == torch.float32
    np.testing.assert_array_equal(w.numpy(), [0.5, 0.5])
    m = GridModel()
    full = (m.g[0] + m.g[1]).mean()
    d = np.array([abs(full - m.g[1].mean()), abs(full - m.g[0].mean())])
    np.testing.assert_allclose(ablation_weights(m, _inputs(roi)).numpy(), d / d.sum(), rtol=1e-5)
    m.supports_level_weights = False
    with pytest.raises(UsageError, match=r"^grid cannot weight its levels; use an explainer without -ablation\.$"):
        ablation_weights(m, _inputs(roi))


@pytest.mark.parametrize("variant, combine", [("masked ", "mean"), ("signed", "max"), ("affinity", "mean")])
def test_affinity_explainer_message(variant, combine):
    with pytest.raises(ValueError, match=rf"^unknown Affinity Explainer variant '{variant}' / combination "
                                         rf"'{combine}'$"):
        affinity_explainer(variant, combine)


def test_registered_names_and_defaults():
    names = set(FEWSHOT_EXPLAINERS.names())
    assert {"affinity", "affinity-ablation", "affinity-masked", "affinity-masked-ablation", "affinity-signed",
            "affinity-signed-ablation"} <= names
    model = GridModel()
    roi = np.ones((6, 6), bool)
    masks = np.zeros((K, 8, 8), np.float32)
    masks[0, 2:6, 1:5] = 1
    masks[1, 4:, :3] = 1
    inp = _inputs(roi, masks)
    per = level_contributions(model, inp).numpy()
    blur = np.stack([gaussian_filter(x.astype(np.float64), 0.5, mode="nearest", truncate=4.0) for x in masks])
    maps, signed, info = affinity_explainer()(model, inp, 0)               # default: masked, mean
    np.testing.assert_allclose(maps.numpy(), per.mean(0) * blur, rtol=1e-4, atol=1e-9)
    assert signed is False and info == {"level_weights": (0.5, 0.5)}
    maps, signed, _ = FEWSHOT_EXPLAINERS.get("affinity-signed")(model, inp, 0)
    np.testing.assert_allclose(maps.numpy(), per.mean(0) * (2 * blur - 1), rtol=1e-4, atol=1e-9)
    assert signed is True


def test_explain_support_sizes_weights_and_time(monkeypatch):
    clock = iter([10.0, 12.5])
    monkeypatch.setattr(ex.time, "perf_counter", lambda: next(clock))
    model = GridModel()
    roi = np.ones((6, 6), bool)
    masks = np.zeros((K, 8, 8), np.float32)
    masks[:, 2:6, 2:6] = 1
    inp = _inputs(roi, masks, support_hw=((16, 8), (4, 12)))
    a = explain_support(model, None, None, None, "affinity-ablation", inputs=inp)
    assert a.method == "affinity-ablation" and a.signed is False and a.seconds == 2.5
    w = ablation_weights(model, inp).numpy()
    assert a.level_weights == pytest.approx(tuple(w)) and len(a.level_weights) == 2
    per = level_contributions(model, inp).numpy()
    want = (per * w[:, None, None, None]).sum(0)
    assert a.raw.dtype == np.float32
    np.testing.assert_allclose(a.raw, want, rtol=1e-4, atol=1e-9)
    for m, r, hw in zip(a.maps, a.raw, ((16, 8), (4, 12))):
        assert m.shape == hw and m.dtype == np.float32
        np.testing.assert_allclose(m, _np_bilinear(r.astype(np.float64), hw), rtol=1e-5, atol=1e-9)


def test_explain_support_default_method_and_non_finite(monkeypatch):
    model = GridModel()
    inp = _inputs(np.ones((6, 6), bool), np.ones((K, 8, 8), np.float32))
    a = explain_support(model, None, None, None, inputs=inp)
    assert a.method == "affinity-masked" and a.level_weights == (0.5, 0.5)

    def bad(model, inputs, seed):
        return torch.full((K, 8, 8), float("nan")), False, {}
    FEWSHOT_EXPLAINERS.names()                                   # loaded before the stub is added
    monkeypatch.setitem(FEWSHOT_EXPLAINERS._items, "nanx", bad)
    with pytest.raises(FloatingPointError, match=r"^nanx produced non-finite attributions$"):
        explain_support(model, None, None, None, "nanx", inputs=inp)


@pytest.mark.parametrize("variant", ["unmasked", "masked", "signed"])
@pytest.mark.parametrize("combine", ["mean", "ablation"])
def test_affinity_explainer_built_directly(variant, combine):
    # built here (not taken from the registry, filled at import): the parts, combined in numpy
    model = GridModel(seed=4)
    roi = np.zeros((6, 6), bool)
    roi[2:6, 0:4] = True
    masks = np.zeros((K, 8, 8), np.float32)
    masks[0, 1:5, 2:7] = 1
    masks[1, 3:8, 0:4] = 1
    inp = _inputs(roi, masks)
    per = level_contributions(model, inp).numpy().astype(np.float64)
    w = ablation_weights(model, inp).numpy().astype(np.float64) if combine == "ablation" else np.array([0.5, 0.5])
    assert combine == "mean" or abs(w[0] - 0.5) > 0.05
    base = (per * w[:, None, None, None]).sum(0)
    blur = np.stack([gaussian_filter(x.astype(np.float64), 0.5, mode="nearest", truncate=4.0) for x in masks])
    want = {"unmasked": base, "masked": base * blur, "signed": base * (2 * blur - 1)}[variant]
    maps, signed, info = affinity_explainer(variant, combine)(model, inp, 0)
    np.testing.assert_allclose(maps.numpy(), want, rtol=1e-4, atol=1e-9)
    assert signed is (variant == "signed")
    assert info == {"level_weights": pytest.approx(tuple(w))}
    assert all(type(x) is float for x in info["level_weights"])


def test_shot_shares_total_below_one_and_many_shots_blur():
    raw = np.array([[[0.1, -0.5]], [[0.3, 0.0]]], np.float32)
    np.testing.assert_allclose(SupportAttribution((), raw, "x", True, 0.0).shot_shares(), [0.25, 0.75], rtol=1e-6)
    m = (np.random.default_rng(5).random((30, 4, 4)) < 0.5).astype(np.float32)   # 30 shots of 4 x 4: sigma 0.5
    got = blurred_masks(SimpleNamespace(masks=torch.from_numpy(m)[None])).numpy()
    want = np.stack([gaussian_filter(x.astype(np.float64), 0.5, mode="nearest", truncate=4.0) for x in m])
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_explain_support_default_roi_is_the_prediction():
    model = GridModel(seed=6)
    rng = np.random.default_rng(6)
    q = rng.integers(0, 255, (6, 6, 3)).astype(np.uint8)
    sup = [rng.integers(0, 255, (8, 8, 3)).astype(np.uint8) for _ in range(K)]
    masks = [np.pad(np.ones((4, 4), bool), 2), np.pad(np.ones((2, 6), bool), ((3, 3), (1, 1)))]
    pred = (model.g[0] + model.g[1]) > 0
    assert 0 < pred.sum() < 36
    a = explain_support(model, q, sup, masks, "affinity")
    b = explain_support(model, q, sup, masks, "affinity", roi=pred)
    c = explain_support(model, q, sup, masks, "affinity", roi="image")
    np.testing.assert_allclose(a.raw, b.raw, rtol=1e-6, atol=1e-12)
    assert np.abs(a.raw - c.raw).max() > 1e-6 * np.abs(a.raw).max()
    r0 = explain_support(model, q, sup, masks, "random")
    np.testing.assert_array_equal(r0.raw, explain_support(model, q, sup, masks, "random", seed=0).raw)
    assert not np.array_equal(r0.raw, explain_support(model, q, sup, masks, "random", seed=1).raw)


def test_mean_of_one_level_is_that_level():
    # one level, two shots: equal weights are 1 / levels (not 1 / shots), one per level
    class OneLevel(GridModel):
        levels = ("a",)

        def forward(self, query, support, masks, level_weights=None):
            out = super().forward(query, support, masks, level_weights)
            return FewShotOutput(out.logits, out.affinities[:1], out.query_grids[:1], out.support_grids[:1], [])
    model = OneLevel()
    inp = _inputs(np.ones((6, 6), bool))
    per = level_contributions(model, inp).numpy()
    assert per.shape == (1, K, 8, 8)
    maps, _, info = affinity_explainer("unmasked", "mean")(model, inp, 0)
    np.testing.assert_allclose(maps.numpy(), per[0], rtol=1e-6)
    assert info == {"level_weights": (1.0,)}
