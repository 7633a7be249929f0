"""Saliency, input × gradient, Integrated Gradients and SmoothGrad against closed forms on the
planted models of ``vlx.testing.planted_cam``, re-implemented here in float64 numpy.

For input pixel ``(c, P, Q)`` in grid cell ``(i, j) = (P // s, Q // s)`` (``s`` the stride):

    d logit_t / d x_c(PQ) = sum_k (w_tk A_k(ij) + l_tk) * M_k(ij) act'(pre_k(ij)) a_k U_kc / s^2

with ``pre_k = a_k z_k + b_k`` and ``z_k`` the block mean of ``U_k . x``. Along the IG path
``alpha * x`` (zero baseline) ``pre_k = alpha t_k + b_k`` with ``t_k = a_k z_k``, so the path
integral has a closed form (``F_k`` in ``ig_closed_form``). With ``act = identity`` the logit is
a quadratic polynomial of ``x`` and SmoothGrad of input × gradient has an exact expectation:

    E[(x + n)_c grad_c(x + n)] = x_c grad_c(x) + sigma^2 sum_k M_k w_tk a_k^2 U_kc^2 / s^4.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute.base import get_method
from vlx.testing.planted_cam import planted_cam_classifier
from vlx.types import ClassTarget, ContrastTarget

SIZE, STRIDE = 16, 2
TARGETS = (0, 2)


@pytest.fixture(scope="module")
def models():
    out = {(kind, act): planted_cam_classifier(kind, SIZE, STRIDE, act=act)
           for kind in ("cnn", "vit") for act in ("softplus", "identity")}
    # SmoothGrad: stride 1 on 8 × 8 inputs makes the sigma^2 term large against the sampling noise.
    out["smooth"] = planted_cam_classifier("cnn", 8, 1, act="identity")
    return out


def inputs(seed: int = 0, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((batch, 3, SIZE, SIZE), generator=g)


def softplus(v):
    return np.logaddexp(0.0, v)


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def pre_act(p, x: np.ndarray) -> np.ndarray:
    """``pre_k(ij) = a_k z_k(ij) + b_k`` ``(N, K, h, w)`` for inputs ``(N, 3, S, S)``."""
    n = x.shape[-1] // p.stride
    z = np.einsum("kc,bchw->bkhw", p.U, x).reshape(x.shape[0], len(p.a), n, p.stride, n, p.stride).mean((3, 5))
    return p.a[:, None, None] * z + p.b[:, None, None]


def act(p, v):
    return softplus(v) if p.act == "softplus" else v


def dact(p, v):
    return sigmoid(v) if p.act == "softplus" else np.ones_like(v)


def coef_rows(targets, n, other=None) -> np.ndarray:
    c = np.zeros((n, 3))
    c[np.arange(n), targets] = 1.0
    if other is not None:
        c[np.arange(n), other] -= 1.0
    return c


def to_pixels(p, cell: np.ndarray) -> np.ndarray:
    """``(N, K, h, w)`` per-cell values → ``(N, K, S, S)`` (each cell's value on its pixels)."""
    return cell.repeat(p.stride, axis=2).repeat(p.stride, axis=3)


def input_grad(p, x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """d score / d x ``(N, 3, S, S)`` for ``score = sum_t coef[:, t] logit_t``."""
    pre = pre_act(p, x)
    A = p.masks * act(p, pre)
    w, l = coef @ p.w, coef @ p.l                                     # (N, K)
    dA = w[:, :, None, None] * A + l[:, :, None, None]                # d score / d A
    per_k = dA * p.masks * dact(p, pre) * p.a[:, None, None] / p.stride ** 2
    return np.einsum("nkhw,kc->nchw", to_pixels(p, per_k), p.U)


def logits(p, x: np.ndarray, kind: str) -> np.ndarray:
    A = p.masks * act(p, pre_act(p, x))
    out = 0.5 * (A ** 2).sum((2, 3)) @ p.w.T + A.sum((2, 3)) @ p.l.T + p.bias
    return out + (p.cls @ p.e.T if kind == "vit" else 0.0)


def ig_closed_form(p, x: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """IG per channel from a zero baseline: ``x_c * sum_k M_k a_k U_kc / s^2 * F_k`` with
    ``F_k = int_0^1 (w A_k(alpha x) + l) act'(alpha t + b) d alpha``; for softplus (u = alpha t + b,
    du = t d alpha, softplus' = sigmoid) ``F = [w sp(u)^2 / 2 + l sp(u)]_b^{t+b} / t``; for the
    identity ``F = w (t / 2 + b) + l`` (on the mask)."""
    pre = pre_act(p, x)
    b = np.broadcast_to(p.b[:, None, None], pre.shape)
    t = pre - b
    w, l = (coef @ p.w)[:, :, None, None], (coef @ p.l)[:, :, None, None]
    if p.act == "softplus":
        hi, lo = softplus(t + b), softplus(b)
        safe = np.where(np.abs(t) > 1e-9, t, 1.0)
        F = np.where(np.abs(t) > 1e-9, (w * (hi ** 2 - lo ** 2) / 2 + l * (hi - lo)) / safe,
                     (w * lo + l) * sigmoid(b))
        F = F * p.masks + (1 - p.masks) * 0.0
        # w A_k uses M_k * softplus; outside the mask A = 0 and the mask kills the term anyway.
    else:
        F = w * p.masks * (t / 2 + b) + l
    per_k = F * p.masks * p.a[:, None, None] / p.stride ** 2
    return x * np.einsum("nkhw,kc->nchw", to_pixels(p, per_k), p.U)


def close(ours: torch.Tensor, expected: np.ndarray, what: str, rel: float = 2e-4) -> None:
    ours = ours.detach().double().numpy()
    assert ours.shape == expected.shape, (what, ours.shape, expected.shape)
    scale = float(np.abs(expected).max())
    assert scale > 1e-4, (what, "expected map is all zero")
    err = float(np.abs(ours - expected).max())
    assert err <= rel * scale, (what, err, scale)


KINDS = [("cnn", "softplus"), ("vit", "softplus"), ("cnn", "identity")]


@pytest.mark.parametrize("key", KINDS)
def test_saliency_and_input_x_gradient(models, key):
    model, p = models[key], models[key].module.params
    x = inputs()
    xn = x.double().numpy()
    for target, coef in ((ClassTarget(TARGETS), coef_rows(TARGETS, 2)),
                         (ContrastTarget((1, 0), (2, 2)), coef_rows((1, 0), 2, other=(2, 2)))):
        g = input_grad(p, xn, coef)
        # Saliency (Simonyan et al.): max over colour channels of |d score / d x|.
        close(get_method("saliency").attribute(model, x, target), np.abs(g).max(1), f"saliency {key}")
        # Input × gradient, summed over colour channels (signed).
        close(get_method("input_x_gradient").attribute(model, x, target), (xn * g).sum(1), f"ixg {key}")


@pytest.mark.parametrize("key", KINDS)
def test_integrated_gradients_closed_form(models, key):
    model, p = models[key], models[key].module.params
    x = inputs(seed=1)
    xn = x.double().numpy()
    coef = coef_rows(TARGETS, 2)
    expected = ig_closed_form(p, xn, coef)
    ig = get_method("integrated_gradients", n_steps=32)
    close(ig.attribute(model, x, ClassTarget(TARGETS)), expected.sum(1), f"ig {key}")
    # Completeness: the closed form sums to f(x) - f(0); vlx records that delta and its gap.
    f = (logits(p, xn, key[0]) * coef).sum(1) - (logits(p, np.zeros_like(xn), key[0]) * coef).sum(1)
    assert np.allclose(expected.sum((1, 2, 3)), f, rtol=1e-9, atol=1e-9)
    assert np.allclose(ig.last_score_delta.double().numpy(), f, rtol=1e-4, atol=1e-4)
    assert np.abs(ig.last_completeness_gap.double().numpy()).max() <= 1e-4 * np.abs(f).max()


@pytest.mark.parametrize("method", ["riemann_trapezoid", "riemann_middle"])
def test_integrated_gradients_riemann_rules_converge_at_second_order(models, method):
    """Both rules are O(1/n^2) on the smooth softplus path: the error against the closed form
    falls about 4× when n doubles (1.05/n^2-ish) and is small at n = 64."""
    model, p = models[("cnn", "softplus")], models[("cnn", "softplus")].module.params
    x = inputs(seed=2)
    expected = ig_closed_form(p, x.double().numpy(), coef_rows(TARGETS, 2)).sum(1)
    scale = float(np.abs(expected).max())
    errs = []
    for n in (16, 32, 64):
        ours = get_method("integrated_gradients", n_steps=n, method=method).attribute(model, x, ClassTarget(TARGETS))
        errs.append(float(np.abs(ours.double().numpy() - expected).max()) / scale)
    assert errs[2] < 2e-3, errs
    assert 2.5 < errs[0] / errs[1] < 6 and 2.5 < errs[1] / errs[2] < 6, errs


# -- SmoothGrad ----------------------------------------------------------------------------------

N_REF = 20_000


def sampled_reference(p, x1: np.ndarray, t: int, sigma: float, base: str, seed: int = 123):
    """Monte-Carlo mean and per-pixel variance of the base map under ``N(0, sigma^2)`` noise,
    from ``N_REF`` draws of our own (numpy RNG), with the closed-form gradient."""
    rng = np.random.default_rng(seed)
    total = np.zeros(x1.shape[-2:])
    total2 = np.zeros(x1.shape[-2:])
    for _ in range(N_REF // 1000):
        xs = x1[None] + rng.standard_normal((1000, *x1.shape)) * sigma
        g = input_grad(p, xs, coef_rows([t] * 1000, 1000))
        m = np.abs(g).max(1) if base == "saliency" else (xs * g).sum(1)
        total += m.sum(0)
        total2 += (m ** 2).sum(0)
    mean = total / N_REF
    return mean, total2 / N_REF - mean ** 2


@pytest.mark.parametrize("base", ["saliency", "input_x_gradient"])
def test_smoothgrad_within_a_bound_that_shrinks_with_samples(models, base):
    """SmoothGrad's estimate ``m_n`` over n noisy copies has ``E |m_n - mu|^2 = var / n`` per
    pixel; we check ``rms(m_n - mu_ref) <= 2 sqrt(mean(var) (1/n + 1/N_REF))`` at n = 256 and
    n = 4096 (the bound shrinks 4×). Too much or too little noise moves the mean and the
    variance (10× noise: 100× the variance) and breaks the bound. For input × gradient the
    reference mean is also checked against the exact expectation of the quadratic model, whose
    sigma^2 term is several times the bound at n = 4096 (so half the noise fails too). The input
    range is 0.4, so a noise scale that ignores the range is caught as well."""
    model, p = models["smooth"], models["smooth"].module.params
    g = torch.Generator().manual_seed(5)
    x = 0.2 + 0.4 * torch.rand((1, 3, 8, 8), generator=g)
    x1 = x[0].double().numpy()
    noise_level = 0.3
    sigma = noise_level * (x1.max() - x1.min())
    t = 1
    mu, var = sampled_reference(p, x1, t, sigma, base)
    if base == "input_x_gradient":
        g = input_grad(p, x1[None], coef_rows([t], 1))[0]
        extra = sigma ** 2 * np.einsum("khw,k,kc->chw", to_pixels(p, p.masks[None])[0],
                                       p.w[t] * p.a ** 2, p.U ** 2).sum(0) / p.stride ** 4
        exact = (x1 * g).sum(0) + extra
        assert np.sqrt(((mu - exact) ** 2).mean()) <= 2 * np.sqrt(var.mean() / N_REF)
        assert np.sqrt((extra ** 2).mean()) > 5 * np.sqrt(var.mean() / 4096)   # the sigma^2 term is visible
        mu = exact
    bounds = []
    for n in (256, 4096):
        sg = get_method("smoothgrad", base=base, n_samples=n, noise_level=noise_level, batch_size=256, seed=0)
        est = sg.attribute(model, x, ClassTarget(t))[0].double().numpy()
        rms = float(np.sqrt(((est - mu) ** 2).mean()))
        bound = 2 * float(np.sqrt(var.mean() * (1 / n + (1 / N_REF if base == "saliency" else 0))))
        assert rms <= bound, (base, n, rms, bound)
        bounds.append(bound)
    assert bounds[1] < bounds[0] / 3


def test_smoothgrad_without_noise_is_the_base_method(models):
    """noise_level = 0: every copy is x itself, so the mean over copies is the base map (exactly
    up to float rounding), whatever the number of samples or the batch size."""
    model = models[("cnn", "softplus")]
    x = inputs(seed=6)
    for base in ("saliency", "input_x_gradient"):
        plain = get_method(base).attribute(model, x, ClassTarget(TARGETS))
        sg = get_method("smoothgrad", base=base, n_samples=5, noise_level=0.0, batch_size=2)
        close(sg.attribute(model, x, ClassTarget(TARGETS)), plain.double().numpy(), base, rel=1e-6)


# -- options, nodes, batching and the noise protocol (mutation survivors) ------------------------

def test_ig_nodes_by_hand():
    from vlx.attribute.gradient import _ig_nodes

    r3 = 1 / np.sqrt(3)
    for method, n, alphas, weights in (
            ("gausslegendre", 2, [0.5 - 0.5 * r3, 0.5 + 0.5 * r3], [0.5, 0.5]),
            ("gausslegendre", 1, [0.5], [1.0]),
            ("riemann_trapezoid", 2, [0.0, 1.0], [0.5, 0.5]),
            ("riemann_trapezoid", 3, [0.0, 0.5, 1.0], [0.25, 0.5, 0.25]),
            ("riemann_trapezoid", 5, [0, .25, .5, .75, 1], [.125, .25, .25, .25, .125]),
            ("riemann_middle", 4, [1 / 8, 3 / 8, 5 / 8, 7 / 8], [.25, .25, .25, .25]),
            ("riemann_middle", 1, [0.5], [1.0])):
        a, w = _ig_nodes(n, method)
        assert a.dtype == torch.float64 and w.dtype == torch.float64, method
        assert np.allclose(a.numpy(), alphas, rtol=0, atol=1e-15), (method, n, a)
        assert np.allclose(w.numpy(), weights, rtol=0, atol=1e-15), (method, n, w)


def test_ig_options_are_checked():
    with pytest.raises(ValueError, match=r"^riemann_trapezoid needs n_steps >= 2$"):
        get_method("integrated_gradients", n_steps=1, method="riemann_trapezoid")
    with pytest.raises(ValueError, match=r"^unknown integration method 'simpson'; use gausslegendre, "
                                         r"riemann_trapezoid or riemann_middle$"):
        get_method("integrated_gradients", method="simpson")
    ig = get_method("integrated_gradients", n_steps="8", batch_size="3", method="riemann_middle")
    assert (ig.n_steps, ig.batch_size, ig.method) == (8, 3, "riemann_middle")
    assert ig.options == {"n_steps": "8", "batch_size": "3", "method": "riemann_middle"}   # as given
    assert ig.last_completeness_gap is None and ig.last_score_delta is None               # before a call
    assert get_method("integrated_gradients").batch_size is None
    assert get_method("integrated_gradients").n_steps == 64


def test_ig_chunks_across_samples_and_contrasts(models):
    """Chunks of 5 (sample, step) rows straddle the two samples; a contrast with per-sample
    classes must follow each row to its own sample. Against the closed form; the model's default
    batch size (here 3) is used when none is given."""
    model, p = models[("cnn", "softplus")], models[("cnn", "softplus")].module.params
    x = inputs(seed=3)
    xn = x.double().numpy()
    target = ContrastTarget((2, 0), (1, 1))
    coef = coef_rows((2, 0), 2, other=(1, 1))
    expected = ig_closed_form(p, xn, coef)
    f = (logits(p, xn, "cnn") * coef).sum(1) - (logits(p, np.zeros_like(xn), "cnn") * coef).sum(1)
    old = model.batch_size
    try:
        model.batch_size = 3
        for opts in ({"batch_size": 5}, {}):
            ig = get_method("integrated_gradients", n_steps=16, **opts)
            close(ig.attribute(model, x, target), expected.sum(1), f"ig contrast {opts}")
            close(ig.channel_attributions(model, x, target), expected, f"ig channels {opts}")
            assert np.allclose(ig.last_score_delta.double().numpy(), f, rtol=1e-4, atol=1e-4)
            gap = ig.last_completeness_gap.double().numpy()
            assert gap.shape == (2,)
            assert np.allclose(gap, expected.sum((1, 2, 3)) - ig.last_score_delta.double().numpy(), atol=1e-3)
    finally:
        model.batch_size = old


def test_smoothgrad_is_the_mean_over_its_documented_noise(models):
    """The noise of each sample: a CPU generator seeded with ``seed``, ``randn`` in chunks of
    ``batch_size`` copies, scaled by ``noise_level * (max(x_i) - min(x_i))``; the map is the mean
    of the base's closed-form maps over those copies (numpy), for each sample and its own class."""
    model, p = models[("cnn", "softplus")], models[("cnn", "softplus")].module.params
    x = inputs(seed=4)
    x[1] *= 0.5                                          # a different value range per sample
    n, bs, level, seed = 5, 3, 0.2, 11
    for base in ("saliency", "input_x_gradient"):
        sg = get_method("smoothgrad", base=base, n_samples=n, noise_level=level, batch_size=bs, seed=seed)
        ours = sg.attribute(model, x, ContrastTarget(TARGETS, (1, 1)))
        for i, t in enumerate(TARGETS):
            g = torch.Generator().manual_seed(seed)
            noise = torch.cat([torch.randn((k, 3, SIZE, SIZE), generator=g) for k in (3, 2)]).double().numpy()
            xi = x[i].double().numpy()
            xs = xi[None] + noise * level * (xi.max() - xi.min())
            grad = input_grad(p, xs, coef_rows([t] * n, n, other=[1] * n))
            maps = np.abs(grad).max(1) if base == "saliency" else (xs * grad).sum(1)
            close(ours[i], maps.mean(0), f"smoothgrad {base} sample {i}", rel=1e-4)


def test_smoothgrad_options(models):
    with pytest.raises(ValueError, match=r"^smoothgrad cannot wrap itself$"):
        get_method("smoothgrad", base="smoothgrad")
    sg = get_method("smoothgrad", base="input_x_gradient")
    assert sg.signed is True and sg.needs_layer is False
    assert (sg.n_samples, sg.noise_level, sg.batch_size, sg.seed) == (32, 0.15, None, 0)
    assert get_method("smoothgrad").signed is False and get_method("smoothgrad").base.name == "saliency"
    cam = get_method("smoothgrad", base="gradcam")
    assert cam.needs_layer is True and cam.signed is False
    ig = get_method("smoothgrad", base="integrated_gradients", base_options={"n_steps": 4})
    assert ig.base.n_steps == 4 and ig.signed is True
    inst = get_method("saliency")
    assert get_method("smoothgrad", base=inst).base is inst
    s = get_method("smoothgrad", n_samples="7", noise_level="0.5", batch_size="2", seed="3")
    assert s.options == {"base": "saliency", "n_samples": "7", "noise_level": "0.5", "batch_size": "2",
                         "seed": "3", "base_options": None}
    assert (s.n_samples, s.noise_level, s.batch_size, s.seed) == (7, 0.5, 2, 3)
    # the model's batch size when none is given: 4 copies in chunks of 3 = one call per copy count
    model = models[("cnn", "softplus")]
    x = inputs(seed=9, batch=1)
    a = get_method("smoothgrad", n_samples=4, noise_level=0.1, batch_size=3).attribute(model, x, ClassTarget(0))
    old = model.batch_size
    try:
        model.batch_size = 3
        b = get_method("smoothgrad", n_samples=4, noise_level=0.1).attribute(model, x, ClassTarget(0))
    finally:
        model.batch_size = old
    assert torch.equal(a, b)


def test_integrated_gradients_accumulate_in_float32_whatever_the_default_dtype(models):
    # The running sum is float32 by choice, not by torch's default dtype: under a float64 default
    # IG still runs and gives the same float32 map as under the usual float32 default.
    key = KINDS[0]
    model = models[key]
    x = inputs(seed=1)
    ig = get_method("integrated_gradients", n_steps=8)
    ref = ig.attribute(model, x, ClassTarget(TARGETS))
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = ig.attribute(model, x, ClassTarget(TARGETS))
    finally:
        torch.set_default_dtype(old)
    assert out.dtype == torch.float32
    assert torch.equal(out, ref)


def test_smoothgrad_noise_follows_the_input_dtype_whatever_the_default_dtype(models):
    """Under a float64 default, the noise is still cast to the float32 input (the model's dtype):
    SmoothGrad runs, gives a float32 map, and that map is the documented mean over the float64
    default's own draws (``randn`` in the default dtype, cast to the input's)."""
    model, p = models[("cnn", "softplus")], models[("cnn", "softplus")].module.params
    x = inputs(seed=5, batch=1)
    n, level, seed = 3, 0.2, 2
    sg = get_method("smoothgrad", base="saliency", n_samples=n, noise_level=level, batch_size=2, seed=seed)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        out = sg.attribute(model, x, ClassTarget(1))
        g = torch.Generator().manual_seed(seed)
        noise = torch.cat([torch.randn((k, 3, SIZE, SIZE), generator=g) for k in (2, 1)]).float()
    finally:
        torch.set_default_dtype(old)
    assert out.dtype == torch.float32 and out.shape == (1, SIZE, SIZE)
    xs = (x[0][None] + noise * level * float(x[0].max() - x[0].min())).double().numpy()
    grad = input_grad(p, xs, coef_rows([1] * n, n))
    close(out[0], np.abs(grad).max(1).mean(0), "smoothgrad under a float64 default", rel=1e-4)


def test_smoothgrad_passes_the_layer_to_its_base():
    """Without noise, SmoothGrad of Grad-CAM at a named layer is Grad-CAM at that layer (checked
    against its closed forms in test_oracle_cam.py), not at the model's default layer."""
    from vlx.testing import planted_classifier

    model = planted_classifier("top-right", size=32)
    x = inputs(seed=6, batch=2).repeat(1, 1, 2, 2)                     # 32 × 32
    target = ClassTarget(TARGETS)
    first = get_method("gradcam").attribute(model, x, target, "features.0")
    default = get_method("gradcam").attribute(model, x, target, model.layer(None)[0])
    assert first.shape == (2, 32, 32) and default.shape == (2, 16, 16)   # a CAM is at its layer's grid
    assert first.abs().max() > 0
    sg = get_method("smoothgrad", base="gradcam", n_samples=2, noise_level=0.0, batch_size=2)
    torch.testing.assert_close(sg.attribute(model, x, target, "features.0"), first, rtol=1e-5, atol=1e-6)
