"""MSEA's aggregation against numpy: a stub model whose views, boxes and answer probabilities are
known, a stub method whose maps are known; each scale's map cropped to its box, resized by a
bilinear (half-pixel centres) written here, normalised and averaged with the documented weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlx.mllm.msea as msea_mod
from vlx.mllm.context import AnswerContext, AnswerMap
from vlx.mllm.msea import msea
from vlx.types import ImageInput

H, W = 4, 6
# scale -> (view size, box in the view); 0.5 is a dynamic-resolution resize, 0.75 a canvas with the
# image shrunk into (x0, y0, x1, y1)
VIEWS = {0.5: ((2, 3), (0, 0, 3, 2)), 0.75: ((4, 6), (1, 1, 5, 3))}
PROB = {(4, 6, 0): 0.6, (2, 3, 0): 0.3, (4, 6, 1): 0.2, (2, 3, 1): 0.5}   # (view h, w, token) -> p
PROB_CANVAS = {0: 0.1, 1: 0.3}   # the 0.75 canvas has the original's size: told apart by its pixels


class _Inputs:
    def __init__(self, image, question="", prefill=""):
        self.image, self.question, self.prefill = image, question, prefill
        self.image_positions = torch.arange(image.size_hw[0] * image.size_hw[1] // 2)
        self.prompt_len = 3

    def with_answer(self, ids):
        return self


class _Model:
    def prepare(self, image, question, prefill=""):
        return _Inputs(image, question, prefill)

    def decode_tokens(self, ids):
        return [f"<{i}>" for i in ids]

    def view_for_scale(self, image, s):
        assert image.size_hw == (H, W)                  # the original image is what gets rescaled
        (vh, vw), box = VIEWS[s]
        return ImageInput(np.full((vh, vw, 3), 7 if s == 0.75 else 0, np.uint8)), box

    def answer_probability(self, inputs, t, tid):
        assert tid == [11, 12][t]
        assert (inputs.question, inputs.prefill) == ("q?", "It is")   # every view keeps the prompt
        px = inputs.image.pixels
        p = PROB_CANVAS[t] if px[0, 0, 0] == 7 else PROB[(*px.shape[:2], t)]
        return torch.tensor([p])


def _raw(hw, t, tag):
    rng = np.random.default_rng(hash((hw, t, tag)) % 2**32)
    return rng.normal(size=hw).astype(np.float32)


class _Method:
    name = "stub"

    def __init__(self, signed):
        self.signed = signed

    def explain(self, ctx, tokens):
        px = ctx.inputs.image.pixels
        hw, tag = px.shape[:2], int(px[0, 0, 0])
        return [AnswerMap((t,), "", "stub", _raw(hw, t, tag), _raw(hw, t, tag).ravel(), self.signed)
                for t in tokens]


def _bilinear(v, out_hw):
    """PyTorch's bilinear with align_corners=False, in numpy."""
    def axis(n_in, n_out):
        src = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
        i0 = np.minimum(np.floor(src).astype(int), n_in - 1)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0
    y0, y1, ly = axis(v.shape[0], out_hw[0])
    x0, x1, lx = axis(v.shape[1], out_hw[1])
    rows = v[y0] * (1 - ly)[:, None] + v[y1] * ly[:, None]
    return rows[:, x0] * (1 - lx) + rows[:, x1] * lx


def _expected(scale, t, signed):
    if scale == 1.0:
        v, box = _raw((H, W), t, 0), (0, 0, W, H)
    else:
        (vh, vw), box = VIEWS[scale]
        v = _raw((vh, vw), t, 7 if scale == 0.75 else 0)
    v = np.abs(v) if signed else np.maximum(v, 0)
    x0, y0, x1, y1 = box
    r = _bilinear(v[y0:y1, x0:x1].astype(np.float64), (H, W))
    return r / r.max()


def _prob(scale, t):
    return {1.0: PROB[(4, 6, t)], 0.5: PROB[(2, 3, t)], 0.75: PROB_CANVAS[t]}[scale]


@pytest.fixture
def ctx(monkeypatch):
    clock = iter(range(1000))
    monkeypatch.setattr(msea_mod.time, "perf_counter", lambda: float(next(clock)))  # each scale: 1 "s"
    return AnswerContext(_Model(), ImageInput(np.zeros((H, W, 3), np.uint8)), "q?", answer_ids=[11, 12],
                         prefill="It is")


def test_bilinear_helper_is_torch_bilinear():
    v = np.random.default_rng(0).normal(size=(2, 4))
    want = torch.nn.functional.interpolate(torch.tensor(v)[None, None], size=(H, W), mode="bilinear",
                                           align_corners=False)[0, 0].numpy()
    np.testing.assert_allclose(_bilinear(v, (H, W)), want, atol=1e-12)


@pytest.mark.parametrize("signed", [False, True])
def test_mean_over_scales(ctx, signed):
    scales = (1.0, 0.75, 0.5)
    out = msea(ctx, _Method(signed), [0, 1], scales)
    assert len(out) == 2
    for t, m in enumerate(out):
        want = np.mean([_expected(s, t, signed) for s in scales], axis=0)
        assert m.values.dtype == np.float32 and m.values.shape == (H, W)
        np.testing.assert_allclose(m.values, want, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(m.raw, m.values.ravel())
        assert m.tokens == (t,) and m.text == f"<{[11, 12][t]}>" and m.method == "msea(stub)"
        assert m.signed is False
        assert m.seconds == pytest.approx(3 / 2)     # three scales of 1 s, shared by two tokens
        assert m.details["aggregation"] == "mean"
        assert m.details["scales"] == [
            {"scale": s, "seconds": 1.0, "image_tokens": {1.0: 12, 0.75: 12, 0.5: 3}[s],
             "probability": pytest.approx(_prob(s, t)), "weight": pytest.approx(1 / 3)} for s in scales]


def test_weighted_by_probability_and_by_given_weights(ctx):
    scales = (1.0, 0.5, 0.75)
    out = msea(ctx, _Method(False), [0, 1], scales, "weighted")
    for t, m in enumerate(out):
        p = np.array([_prob(s, t) for s in scales])
        wt = p / p.sum()
        want = sum(w * _expected(s, t, False) for w, s in zip(wt, scales))
        np.testing.assert_allclose(m.values, want, rtol=1e-5, atol=1e-6)
        assert [d["weight"] for d in m.details["scales"]] == pytest.approx(list(wt))
        assert m.details["aggregation"] == "weighted"
    given = (3.0, 1.0, 0.0)
    m = msea(ctx, _Method(True), [1], scales, "weighted", weights=given)[0]
    want = 0.75 * _expected(1.0, 1, True) + 0.25 * _expected(0.5, 1, True)
    np.testing.assert_allclose(m.values, want, rtol=1e-5, atol=1e-6)
    assert [d["weight"] for d in m.details["scales"]] == [0.75, 0.25, 0.0]
    # weights summing to zero: every scale counts equally
    m = msea(ctx, _Method(False), [0], (1.0, 0.5), "weighted", weights=(0.0, 0.0))[0]
    np.testing.assert_allclose(m.values, (_expected(1.0, 0, False) + _expected(0.5, 0, False)) / 2,
                               rtol=1e-5, atol=1e-6)
    assert [d["weight"] for d in m.details["scales"]] == [0.5, 0.5]


def test_all_zero_map_stays_zero(ctx):
    class Zero(_Method):
        def explain(self, c, tokens):
            hw = c.inputs.image.size_hw
            return [AnswerMap((t,), "", "z", -np.ones(hw, np.float32), np.zeros(1), False) for t in tokens]
    m = msea(ctx, Zero(False), [0], (1.0, 0.5))[0]
    np.testing.assert_array_equal(m.values, np.zeros((H, W), np.float32))


def test_default_scales(ctx):
    m = msea(ctx, _Method(False), [0])[0]
    assert [d["scale"] for d in m.details["scales"]] == [1.0, 0.75, 0.5]
    assert m.details["aggregation"] == "mean"


@pytest.mark.parametrize("kw, msg", [
    ({"scales": ()}, r"^MSEA scales must be a non-empty list of positive factors$"),
    ({"scales": (1.0, 0.0)}, r"^MSEA scales must be a non-empty list of positive factors$"),
    ({"scales": (1.0, -0.5)}, r"^MSEA scales must be a non-empty list of positive factors$"),
    ({"aggregation": "max"}, r"^unknown MSEA aggregation 'max'; use mean or weighted$"),
    ({"aggregation": "weighted", "weights": (1.0,)}, r"^give one MSEA weight per scale$"),
    ({"aggregation": "mean", "weights": (1.0, 2.0, 3.0, 4.0)}, r"^give one MSEA weight per scale$"),
])
def test_bad_options(ctx, kw, msg):
    with pytest.raises(ValueError, match=msg):
        msea(ctx, _Method(False), [0], **kw)


def test_weights_below_one_and_float32_weights(ctx):
    m = msea(ctx, _Method(False), [0], (1.0, 0.5), "weighted", weights=(0.1, 0.3))[0]
    np.testing.assert_allclose(m.values, 0.25 * _expected(1.0, 0, False) + 0.75 * _expected(0.5, 0, False),
                               rtol=1e-5, atol=1e-6)
    w32 = np.array([0.1, 0.2], np.float32)                  # normalised in float64
    m = msea(ctx, _Method(False), [0], (1.0, 0.5), "weighted", weights=w32)[0]
    assert [d["weight"] for d in m.details["scales"]] == [float(w32[0]) / (float(w32[0]) + float(w32[1])),
                                                           float(w32[1]) / (float(w32[0]) + float(w32[1]))]


def test_small_maps_are_normalised_too(ctx):
    class Small(_Method):
        def explain(self, c, tokens):
            return [AnswerMap(m.tokens, "", "s", m.values * 0.05, m.raw, m.signed) for m in super().explain(c, tokens)]
    scales = (1.0, 0.75, 0.5)
    m = msea(ctx, Small(False), [1], scales)[0]
    np.testing.assert_allclose(m.values, np.mean([_expected(s, 1, False) for s in scales], 0), rtol=1e-5, atol=1e-6)
