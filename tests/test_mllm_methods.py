"""MLLM methods against numpy written here on the planted MLLM: attention (mean over heads and
layers) and rollout (a numpy loop), LLaVA-CAM's Grad-CAM from the hidden-state gradient, TAM's
least-squares removal by hand, occlusion against mean-colour views scored one by one, the batched
perturbed probabilities, per-token time split, exact messages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlx.mllm.methods as mm
from vlx.errors import UsageError
from vlx.mllm.context import AnswerContext
from vlx.mllm.methods import (ImagePixelScorer, MLLMMethod, get_mllm_method, perturbed_probabilities,
                              remove_interference)
from vlx.testing.tiny_mllm import PlantedMLLM, planted_image
from vlx.types import ImageInput


@pytest.fixture(scope="module")
def ctx():
    model = PlantedMLLM()
    c = AnswerContext(model, planted_image(), "what colour has it?")
    assert len(c.answer_ids) >= 2
    return c


def _att(ctx):
    return [a[0].double().numpy() for a in ctx.output().attentions]   # (heads, T, T) per layer


def test_attention_mean_over_heads_and_layers(ctx):
    att = _att(ctx)
    img = ctx.image_positions.numpy()
    for layers, use in (("all", att), ("last", att[-1:])):
        m = get_mllm_method("attention", layers=layers)
        vals = m.token_values(ctx, [0, 1])
        for t, (v, det) in zip((0, 1), vals):
            want = np.mean([a.mean(0) for a in use], 0)[ctx.position(t), img]
            np.testing.assert_allclose(v, want, rtol=1e-5, atol=1e-7)
            assert det == {}
    d = get_mllm_method("attention").token_values(ctx, [0])[0][0]
    np.testing.assert_allclose(d, np.mean([a.mean(0) for a in att], 0)[ctx.position(0), img], rtol=1e-5, atol=1e-7)


def test_rollout_numpy_loop(ctx):
    att = _att(ctx)
    T = att[0].shape[-1]
    img = ctx.image_positions.numpy()
    vals = get_mllm_method("rollout").token_values(ctx, [1, 0])
    for (v, _), t in zip(vals, (1, 0)):
        r = np.zeros(T)
        r[ctx.position(t)] = 1
        for a in att[::-1]:
            mix = 0.5 * a.mean(0) + 0.5 * np.eye(T)
            mix = mix / mix.sum(-1, keepdims=True)
            r = r @ mix
        np.testing.assert_allclose(v, r[img], rtol=1e-4, atol=1e-7)


def test_llavacam_grad_cam_of_the_hidden_states(ctx):
    model = ctx.model
    L = model.num_layers
    for layer in sorted({model.default_layer, 0, L - 1}):
        px = dict(ctx.inputs.pixels)
        px[ctx.inputs.pixel_key] = px[ctx.inputs.pixel_key].detach().clone().float().requires_grad_(True)
        out = model.forward(ctx.inputs.with_pixels(px), hidden_states=True)
        h = out.hidden_states[layer]
        img = ctx.image_positions
        opts = {} if layer == model.default_layer else {"layer": layer}
        vals = get_mllm_method("llavacam", **opts).token_values(ctx, [0, 1])
        for t, (v, det) in zip((0, 1), vals):
            g = torch.autograd.grad(out.logits[0, ctx.position(t), ctx.answer_ids[t]], h, retain_graph=True)[0]
            a = h[0, img].detach().double().numpy()
            gm = g[0, img].double().numpy().mean(0)
            want = np.maximum((a * gm[None]).sum(-1), 0)
            assert t == 1 or layer == L - 1 or want.max() > 0
            np.testing.assert_allclose(v, want, rtol=1e-4, atol=1e-6)
            assert det == {"layer": layer}
    for bad in (L + 1, L, -1):
        with pytest.raises(ValueError, match=rf"^llavacam layer {bad} must be in 0\.\.{L - 1}$"):
            get_mllm_method("llavacam", layer=bad).token_values(ctx, [0])


def test_remove_interference_by_hand():
    base = torch.tensor([3.0, 1.0, 0.0])
    maps = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    w = torch.tensor([1.0, 3.0])
    # I = maps @ w / 4 = (0.5, 1.5, 1.0); <b, I> = 3; <I, I> = 3.5 -> alpha = 6/7
    got, alpha = remove_interference(base, maps, w)
    assert alpha == pytest.approx(6 / 7)
    np.testing.assert_allclose(got.numpy(), np.maximum([3 - 3 / 7, 1 - 9 / 7, -6 / 7], 0), rtol=1e-6)
    same, a0 = remove_interference(base, torch.zeros(3, 2), w)      # zero interference
    assert a0 == 0.0 and same is base
    same, a0 = remove_interference(base, maps, torch.zeros(2))
    assert a0 == 0.0 and same is base


def test_tam_options_and_details(ctx):
    raw, det = get_mllm_method("tam", weights="none").token_values(ctx, [0])[0]
    img = ctx.output().hidden_states[-1][0][ctx.image_positions]
    c = ctx.answer_ids[0]
    want = np.maximum(ctx.model.lens_logits(img, torch.tensor([c]))[:, 0].detach().double().numpy(), 0)
    np.testing.assert_allclose(raw, want, rtol=1e-5, atol=1e-6)
    assert det == {"weights": "none"}
    m = get_mllm_method("tam", weights="none", filter=False)
    values, flat = m.to_image(ctx, raw)
    np.testing.assert_allclose(values, ctx.inputs.layout.to_image(raw.astype(np.float32)), atol=1e-7)
    np.testing.assert_array_equal(flat, raw.astype(np.float32))
    raw, det = get_mllm_method("tam").token_values(ctx, [1])[0]
    assert det["weights"] == "tam" and set(det) == {"weights", "alpha", "context_weights", "context_ids"}
    assert ctx.answer_ids[1] not in det["context_ids"]
    assert len(det["context_ids"]) == len(det["context_weights"]) > 0


def test_explain_splits_time_and_names(ctx, monkeypatch):
    clock = iter([1.0, 4.0])
    monkeypatch.setattr(mm.time, "perf_counter", lambda: next(clock))
    maps = get_mllm_method("attention").explain(ctx, [0, 1])
    assert [m.seconds for m in maps] == [1.5, 1.5]
    assert [m.tokens for m in maps] == [(0,), (1,)] and {m.method for m in maps} == {"attention"}
    assert maps[1].text == ctx.token_text((1,))
    assert maps[0].signed is False
    with pytest.raises(NotImplementedError):
        MLLMMethod().token_values(ctx, [0])


def _mean_views(ctx, segs):
    px = ctx.inputs.image.pixels
    fill = np.round(px.reshape(-1, 3).astype(np.float64).mean(0))
    views = []
    for lab in np.unique(segs):
        v = px.astype(np.float64).copy()
        v[segs == lab] = fill
        views.append(np.clip(np.round(v), 0, 255).astype(np.uint8))
    return views


def _prob(ctx, pixels, t):
    inp = ctx.reprepare(ImageInput(pixels))
    with torch.no_grad():
        return float(ctx.model.answer_probability(inp, t, ctx.answer_ids[t])[0])


def test_occlusion_against_mean_colour_views(ctx):
    h, w = ctx.inputs.image.size_hw
    segs = np.zeros((h, w), np.int64)
    segs[: h // 2, : w // 2] = 5
    segs[h // 2:, w // 3:] = 2
    segs[:3, -3:] = 9
    m = get_mllm_method("occlusion", segments=segs, batch_size=3)
    (raw, det), = m.token_values(ctx, [0])
    got_segs, labels, drop = raw
    np.testing.assert_array_equal(labels, [0, 2, 5, 9])
    base = _prob(ctx, ctx.inputs.image.pixels, 0)
    want = [base - _prob(ctx, v, 0) for v in _mean_views(ctx, segs)]
    np.testing.assert_allclose(drop, want, atol=2e-5)
    assert det["n_regions"] == 4 and det["probability"] == pytest.approx(base, abs=1e-6)
    values, flat = m.to_image(ctx, raw)
    lut = dict(zip([0, 2, 5, 9], want))
    np.testing.assert_allclose(values, np.vectorize(lut.get)(segs), atol=2e-5)
    assert values.dtype == np.float32 and flat.dtype == np.float32


def test_perturbed_probabilities_batched(ctx):
    px = ctx.inputs.image.pixels
    rng = np.random.default_rng(0)
    views = [px, 255 - px, rng.integers(0, 256, px.shape).astype(np.uint8)]
    want = np.array([[_prob(ctx, v, t) for t in (0, 1)] for v in views])
    for bs in (1, 2, 8):
        np.testing.assert_allclose(perturbed_probabilities(ctx, views, [0, 1], bs), want, atol=1e-5)
    np.testing.assert_allclose(perturbed_probabilities(ctx, views, [1]), want[:, 1:], atol=1e-5)


def test_scorer_and_option_messages(ctx):
    with pytest.raises(ValueError, match=r"^ImagePixelScorer has no segments; pass segments=$"):
        ImagePixelScorer(ctx, [0]).players(None, 4)
    with pytest.raises(UsageError):
        get_mllm_method("gradxinput", steps=3)
    with pytest.raises(ValueError, match=r"^unknown TAM weights 'arcs'; use tam, arc or none$"):
        get_mllm_method("tam", weights="arcs").token_values(ctx, [0])


def test_gradxinput_is_gradient_times_pixels(ctx):
    vals = get_mllm_method("gradxinput").token_values(ctx, [0, 1])
    key, cd = ctx.inputs.pixel_key, ctx.inputs.channel_dim
    for t, (v, det) in zip((0, 1), vals):
        px = dict(ctx.inputs.pixels)
        x = px[key].detach().clone().float().requires_grad_(True)
        px[key] = x
        score = ctx.model.forward(ctx.inputs.with_pixels(px)).logits[0, ctx.position(t), ctx.answer_ids[t]]
        g = torch.autograd.grad(score, x)[0]
        want = (g * x).detach().double().sum(cd).flatten().numpy()
        assert t == 1 or np.abs(want).max() > 1e-6
        np.testing.assert_allclose(v, want, rtol=1e-4, atol=1e-6)
        assert det == {}
    m = get_mllm_method("gradxinput")
    values, flat = m.to_image(ctx, vals[0][0])
    np.testing.assert_allclose(values, ctx.inputs.pixel_layout.to_image(vals[0][0].astype(np.float32)), atol=1e-7)
    assert m.signed is True and flat.dtype == np.float32


class _StubCtx:
    """Attention of three layers (softmax rows, 2 heads, 7 positions); image tokens at 2..5."""

    def __init__(self):
        g = torch.Generator().manual_seed(3)
        self.att = [torch.randn(1, 2, 7, 7, generator=g).mul(2).softmax(-1) for _ in range(3)]
        self.image_positions = torch.tensor([2, 3, 4, 5])

    def output(self):
        return type("O", (), {"attentions": self.att})()

    def position(self, t):
        return 5 + t


def test_attention_and_rollout_over_several_layers():
    ctx = _StubCtx()
    att = [a[0].double().numpy() for a in ctx.att]
    img = [2, 3, 4, 5]
    for opts, use in (({}, att), ({"layers": "all"}, att), ({"layers": "last"}, att[-1:])):
        (v, _), = get_mllm_method("attention", **opts).token_values(ctx, [1])
        np.testing.assert_allclose(v, np.mean([a.mean(0) for a in use], 0)[6, img], rtol=1e-5)
    assert get_mllm_method("attention").options == {"layers": "all"}
    vals = get_mllm_method("rollout").token_values(ctx, [0, 1])
    for (v, _), t in zip(vals, (0, 1)):
        r = np.zeros(7)
        r[5 + t] = 1
        for a in att[::-1]:
            mix = 0.5 * a.mean(0) + 0.5 * np.eye(7)
            r = r @ (mix / mix.sum(-1, keepdims=True))
        np.testing.assert_allclose(v, r[img], rtol=1e-5)


def _record_batches(ctx, monkeypatch) -> list[int]:
    sizes: list[int] = []
    forward = ctx.model.forward

    def rec(inputs, **kw):
        out = forward(inputs, **kw)
        sizes.append(int(out.logits.shape[0]))
        return out

    monkeypatch.setattr(ctx.model, "forward", rec)
    return sizes


def test_one_token_keeps_all_the_time_and_default_maps_are_float32(ctx, monkeypatch):
    clock = iter([2.0, 5.0])
    monkeypatch.setattr(mm.time, "perf_counter", lambda: next(clock))
    (m,) = get_mllm_method("attention").explain(ctx, [1])
    assert m.seconds == 3.0
    assert m.values.dtype == np.float32 and m.raw.dtype == np.float32


def test_occlusion_defaults_and_options():
    m = get_mllm_method("occlusion")
    assert (m.n_segments, m.segments, m.batch_size) == (24, None, 8)
    assert m.options == {"n_segments": 24, "segments": None, "batch_size": 8}
    segs = np.zeros((4, 4), np.int64)
    m = get_mllm_method("occlusion", n_segments=5, segments=segs, batch_size=2)
    assert m.options["n_segments"] == 5 and m.options["segments"] is segs and m.options["batch_size"] == 2


def test_occlusion_without_segments_runs_slic_on_the_image(ctx, monkeypatch):
    """No ``segments``: SLIC superpixels of the image with ``n_segments``; the map equals occlusion
    over those same labels given explicitly."""
    import vlx.regions.superpixels as sp

    h, w = ctx.inputs.image.size_hw
    segs = np.zeros((h, w), np.int64)
    segs[:, w // 2:] = 1
    calls = []

    def fake(pixels, algorithm, n_segments):
        calls.append((pixels, algorithm, n_segments))
        return segs

    monkeypatch.setattr(sp, "superpixel_labels", fake)
    (raw, det), = get_mllm_method("occlusion", n_segments=5).token_values(ctx, [0])
    assert len(calls) == 1 and calls[0][0] is ctx.inputs.image.pixels and calls[0][1:] == ("slic", 5)
    (want, _), = get_mllm_method("occlusion", segments=segs).token_values(ctx, [0])
    np.testing.assert_array_equal(raw[0], segs)
    np.testing.assert_allclose(raw[2], want[2], atol=1e-6)
    assert det["n_regions"] == 2


def test_occlusion_and_perturbed_probabilities_use_their_batch_size(ctx, monkeypatch):
    h, w = ctx.inputs.image.size_hw
    segs = (np.arange(h * w).reshape(h, w) * 5 // (h * w)).astype(np.int64)     # 5 regions
    sizes = _record_batches(ctx, monkeypatch)
    get_mllm_method("occlusion", segments=segs, batch_size=3).token_values(ctx, [0])
    assert sizes == [2, 3, 2]                       # the image and its baseline, then the 5 occluded views
    sizes.clear()
    get_mllm_method("occlusion", segments=segs).token_values(ctx, [0])
    assert sizes == [2, 5]                          # default 8
    sizes.clear()
    px = ctx.inputs.image.pixels
    perturbed_probabilities(ctx, [px] * 10, [0])
    assert sizes == [8, 2]


def test_tam_defaults_and_arc_weights_wiring(ctx):
    """TAM's options default to the reference's (weights ``tam``, filter on, ARC's k=50, p=0.9); with
    ``weights="arc"`` each context token weighs ``1 - ARC relevance`` (vlx.mllm.arc, checked on its own
    in tests/test_mllm_arc.py) at its score position, with the k and p given."""
    from vlx.mllm.arc import arc_relevance

    assert get_mllm_method("tam").options == {"weights": "tam", "filter": True, "k": 50, "p": 0.9}
    out = ctx.output()
    img = out.hidden_states[-1][0][ctx.image_positions]
    for k, p in ((50, 0.9), (3, 0.5)):
        opts = {} if (k, p) == (50, 0.9) else {"k": k, "p": p}
        for t in (0, 1):
            (raw, det), = get_mllm_method("tam", weights="arc", **opts).token_values(ctx, [t])
            c = ctx.answer_ids[t]
            tc = ctx.text_context(t)
            keep = tc.ids != c
            ids, pos = tc.ids[keep], tc.score_positions[keep]
            w = 1 - arc_relevance(out.logits[0], pos, ctx.position(t), k, p)
            base = ctx.model.lens_logits(img, torch.tensor([c]))[:, 0].clamp(min=0)
            want, alpha = remove_interference(base, ctx.model.lens_logits(img, ids).clamp(min=0), w)
            np.testing.assert_allclose(raw, want.detach().numpy(), rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(det["context_weights"], w.numpy(), rtol=1e-6)
            assert det["weights"] == "arc" and det["alpha"] == pytest.approx(alpha)
    w50 = get_mllm_method("tam", weights="arc").token_values(ctx, [1])[0][1]["context_weights"]
    w3 = get_mllm_method("tam", weights="arc", k=3, p=0.5).token_values(ctx, [1])[0][1]["context_weights"]
    assert not np.allclose(w50, w3)


def test_remove_interference_with_a_small_interference():
    """An interference of norm below 1 is still removed (only a zero one is skipped)."""
    base = torch.tensor([0.3, 0.1])
    maps = torch.tensor([[0.2], [0.1]])
    got, alpha = remove_interference(base, maps, torch.tensor([1.0]))
    # I = (0.2, 0.1); <b, I> = 0.07; <I, I> = 0.05 -> alpha = 1.4
    assert alpha == pytest.approx(1.4)
    np.testing.assert_allclose(got.numpy(), [0.3 - 1.4 * 0.2, 0.0], atol=1e-7)       # 0.1 - 0.14 clipped


def test_scorers_layout_defaults_and_messages(ctx):
    s = mm.PixelTensorScorer(ctx, [0])
    px = ctx.inputs.pixels[ctx.inputs.pixel_key]
    c = px.shape[ctx.inputs.channel_dim]
    assert s.batch_size == 1 and s.x.shape == (1, c, px.numel() // c, 1)
    assert ImagePixelScorer(ctx, [0]).batch_size == 8
    segs = np.zeros(ctx.inputs.image.size_hw, np.int32)
    assert ImagePixelScorer(ctx, [0], segments=segs).players(None, 4).dtype == torch.int64
    with pytest.raises(UsageError, match=r"^MLLM method 'gradxinput' has no option 'steps'"):
        mm.GradientXInput(steps=3)                   # built directly, not through the registry
