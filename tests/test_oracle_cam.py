"""The CAM family against closed forms on planted models (``vlx.testing.planted_cam``).

The planted layer ``A`` (``K`` channels with distinct rectangles, gains of both signs) and the
head ``logit_c = sum_k w_ck sum_ij A_k(ij)^2 / 2 + l_ck sum_ij A_k(ij) + bias_c`` are
re-implemented here in float64 numpy from the planted parameters; every expected map below is
computed from them with plain numpy, never with vlx code. The gradient of the target logit with
respect to the layer is ``G_k(ij) = w_ck A_k(ij) + l_ck``: it varies over positions and has
both signs, so pooling, sign handling and higher-order terms all change the answer
(``test_planted_model_tells_variants_apart`` checks that it does, by a wide margin).

Maps are compared at the layer's grid, unnormalised, within float32 tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute.base import get_method
from vlx.errors import UsageError
from vlx.testing.planted_cam import planted_cam_classifier
from vlx.types import ClassTarget, ContrastTarget

SIZE, STRIDE = 32, 4
TARGETS = (0, 2)


@pytest.fixture(scope="module")
def models():
    # The CNN's layer is non-negative (softplus, like a post-ReLU layer); the ViT's tokens are
    # signed (identity), like a transformer's residual stream.
    return {"cnn": planted_cam_classifier("cnn", SIZE, STRIDE, act="softplus"),
            "vit": planted_cam_classifier("vit", SIZE, STRIDE, act="identity")}


def inputs(seed: int = 0, batch: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand((batch, 3, SIZE, SIZE), generator=g)


# -- the planted function, in numpy ------------------------------------------------------------

def softplus(v: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, v)


def np_layer(p, x: np.ndarray) -> np.ndarray:
    """A ``(B, K, h, w)``: ``M_k * act(a_k * blockmean(U_k . x) + b_k)``."""
    b, _, s, _ = x.shape
    n = s // p.stride
    mixed = np.einsum("kc,bchw->bkhw", p.U, x)
    z = mixed.reshape(b, len(p.a), n, p.stride, n, p.stride).mean(axis=(3, 5))
    pre = p.a[:, None, None] * z + p.b[:, None, None]
    return p.masks * (softplus(pre) if p.act == "softplus" else pre)


def np_logits(p, acts: np.ndarray, kind: str, cls: np.ndarray | None = None) -> np.ndarray:
    """Logits ``(B, C)`` from the layer; the ViT adds ``e @ cls`` (``cls`` may be ablated)."""
    out = 0.5 * (acts ** 2).sum((2, 3)) @ p.w.T + acts.sum((2, 3)) @ p.l.T + p.bias
    if kind == "vit":
        out = out + (p.cls if cls is None else cls) @ p.e.T
    return out


def np_grads(p, acts: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """d score / d A for ``score = sum_c coef[b, c] logit_c``: ``sum_c coef_c (w_ck A + l_ck)``."""
    w = coef @ p.w      # (B, K)
    l = coef @ p.l
    return w[:, :, None, None] * acts + l[:, :, None, None]


def coefs(targets: tuple[int, ...], num_classes: int = 3, other: tuple[int, ...] | None = None) -> np.ndarray:
    c = np.zeros((len(targets), num_classes))
    c[np.arange(len(targets)), targets] = 1.0
    if other is not None:
        c[np.arange(len(targets)), other] -= 1.0
    return c


def relu(v: np.ndarray) -> np.ndarray:
    return np.maximum(v, 0.0)


# -- closed forms ------------------------------------------------------------------------------

def weighted(weights: np.ndarray, acts: np.ndarray) -> np.ndarray:
    return relu((weights[:, :, None, None] * acts).sum(1))


def gradcam(A, G):
    # Selvaraju et al.: channel weight = spatial mean of the gradient.
    return weighted(G.mean((2, 3)), A)


def gradcampp(A, G, third_order: bool = True):
    # Chattopadhay et al., eq. 19 with exp(score): alpha = g^2 / (2 g^2 + sum_ab A_ab g^3),
    # alpha = 0 where g = 0; weight = sum_ij alpha_ij ReLU(g_ij) (as pytorch-grad-cam).
    s = A.sum((2, 3), keepdims=True)
    denom = 2 * G ** 2 + (s * G ** 3 if third_order else 0.0)
    alpha = np.where(G != 0, G ** 2 / np.where(denom != 0, denom, 1.0), 0.0)
    return weighted((alpha * relu(G)).sum((2, 3)), A)


def xgradcam(A, G, normalise: bool = True):
    # Fu et al.: weight = sum_ij (A_ij / sum_ab A_ab) g_ij.
    s = A.sum((2, 3)) if normalise else 1.0
    return weighted((A * G).sum((2, 3)) / s, A)


def hirescam(A, G):
    # Draelos & Carin: ReLU(sum_k g_k * A_k), elementwise, signed gradient.
    return relu((G * A).sum(1))


def layercam(A, G):
    # Jiang et al.: ReLU(sum_k ReLU(g_k) * A_k).
    return relu((relu(G) * A).sum(1))


def eigencam(A):
    # First principal component: rows = positions, columns = channels, centred per channel;
    # project the centred rows on the first right singular vector. Sign convention (vlx): the
    # projection correlates non-negatively with the centred channel-mean activation. Then ReLU.
    b, k, h, w = A.shape
    out = np.zeros((b, h, w))
    for i in range(b):
        flat = A[i].reshape(k, h * w).T
        centred = flat - flat.mean(0)
        evals, evecs = np.linalg.eigh(centred.T @ centred)   # covariance eigenvectors, ascending
        proj = centred @ evecs[:, -1]
        ref = flat.mean(1) - flat.mean()
        if (proj * ref).sum() < 0:
            proj = -proj
        out[i] = relu(proj).reshape(h, w)
    return out


def bilinear(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of ``(..., n, n)`` to ``(..., size, size)``, half-pixel centres
    (``align_corners=False``), edges clamped."""
    n = img.shape[-1]
    src = np.maximum((np.arange(size) + 0.5) * n / size - 0.5, 0.0)
    i0 = np.floor(src).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    f = src - i0
    rows = img[..., i0, :] * (1 - f)[:, None] + img[..., i1, :] * f[:, None]
    return rows[..., i0] * (1 - f) + rows[..., i1] * f


def scorecam(p, x, A, kind, targets, class_of_weights=None, subset=None, weights="probability"):
    # Wang et al.: mask_k = minmax(upsample(A_k)); S_k = the model's output on x * mask_k.
    # weights="probability" (paper's S_k^c, authors' code): w_k = softmax over classes of S_k, at
    # the target. weights="channel_softmax" (pytorch-grad-cam): w = softmax over channels of the
    # target logits. The map combines the channels' positive parts (vlx's documented variant).
    # subset[i]: only those channels are scored; the others get the mean score of the scored.
    out = []
    for i, t in enumerate(targets):
        up = bilinear(A[i], x.shape[-1])                          # (K, S, S)
        lo, hi = up.min((1, 2), keepdims=True), up.max((1, 2), keepdims=True)
        m = np.where(hi > lo, (up - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
        masked = x[i][None] * m[:, None]                           # (K, 3, S, S)
        logits = np_logits(p, np_layer(p, masked), kind)           # (K, classes)
        if weights == "probability":
            e = np.exp(logits - logits.max(1, keepdims=True))
            logits = e / e.sum(1, keepdims=True)
        s = logits[:, t if class_of_weights is None else class_of_weights]
        if subset is not None:
            s = np.where(np.isin(np.arange(len(s)), subset[i]), s, s[subset[i]].mean())
        if weights == "channel_softmax":
            s = np.exp(s - s.max())
            s /= s.sum()
        out.append(relu((s[:, None, None] * relu(A[i])).sum(0)))
    return np.stack(out)


def ablationcam(p, A, kind, targets, subset=None, estimate=None):
    # Desai & Ramaswamy: weight_k = (y - y_k) / y with y_k the score with channel k zeroed
    # (in every token, CLS included, for the ViT); vlx divides by |y| (same when y > 0).
    y = np_logits(p, A, kind)
    out = []
    for i, t in enumerate(targets):
        ws = []
        for k in range(A.shape[1]):
            if subset is not None and k not in subset[i]:
                # not ablated: the first-order drop sum_ij G A (rank="gradient"), else 0
                ws.append(0.0 if estimate is None else estimate[i, k] / abs(y[i, t]))
                continue
            Ak = A[i:i + 1].copy()
            Ak[:, k] = 0
            cls = p.cls.copy()
            cls[k] = 0
            ws.append((y[i, t] - np_logits(p, Ak, kind, cls)[0, t]) / abs(y[i, t]))
        out.append(relu((np.array(ws)[:, None, None] * A[i]).sum(0)))
    return np.stack(out)


GRADIENT_CAMS = {"gradcam": gradcam, "gradcampp": gradcampp, "xgradcam": xgradcam,
                 "hirescam": hirescam, "layercam": layercam}


def vlx_map(model, method: str, x: torch.Tensor, target, **options) -> np.ndarray:
    m = get_method(method, **options)
    return m.attribute(model, x, target, model.layer("auto")[0]).double().numpy()


def assert_close(ours: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert ours.shape == expected.shape, (what, ours.shape, expected.shape)
    scale = float(np.abs(expected).max())
    assert scale > 1e-3, (what, "the expected map is (nearly) all zero: the test would be vacuous")
    err = float(np.abs(ours - expected).max())
    assert err <= 2e-4 * scale + 1e-6, (what, err, scale)


# -- the tests ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["cnn", "vit"])
@pytest.mark.parametrize("method", sorted(GRADIENT_CAMS))
def test_gradient_cams_match_closed_forms(models, kind, method):
    model = models[kind]
    p = model.module.params
    x = inputs()
    A = np_layer(p, x.double().numpy())
    for targets in (TARGETS, (1, 1)):
        G = np_grads(p, A, coefs(targets))
        ours = vlx_map(model, method, x, ClassTarget(targets))
        assert_close(ours, GRADIENT_CAMS[method](A, G), f"{method} {kind} {targets}")


@pytest.mark.parametrize("method", sorted(GRADIENT_CAMS))
def test_gradient_cams_of_a_contrast(models, method):
    # "A and not B": the score is logit_A - logit_B, so G = G_A - G_B.
    model = models["cnn"]
    p = model.module.params
    x = inputs(seed=3)
    A = np_layer(p, x.double().numpy())
    G = np_grads(p, A, coefs((2, 0), other=(1, 1)))
    ours = vlx_map(model, method, x, ContrastTarget((2, 0), (1, 1)))
    assert_close(ours, GRADIENT_CAMS[method](A, G), method)


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_eigencam_matches_first_principal_component(models, kind):
    model = models[kind]
    x = inputs(seed=1)
    A = np_layer(model.module.params, x.double().numpy())
    assert_close(vlx_map(model, "eigencam", x, ClassTarget(0)), eigencam(A), f"eigencam {kind}")


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_scorecam_matches_closed_form(models, kind):
    model = models[kind]
    p = model.module.params
    x = inputs(seed=2)
    A = np_layer(p, x.double().numpy())
    for targets in (TARGETS, (1, 1)):
        for weights in ("probability", "channel_softmax"):
            ours = vlx_map(model, "scorecam", x, ClassTarget(targets), batch_size=4, weights=weights)
            assert_close(ours, scorecam(p, x.double().numpy(), A, kind, targets, weights=weights),
                         f"scorecam {kind} {targets} {weights}")


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_ablationcam_matches_closed_form(models, kind):
    model = models[kind]
    p = model.module.params
    x = inputs(seed=4)
    A = np_layer(p, x.double().numpy())
    for targets in (TARGETS, (1, 1)):
        ours = vlx_map(model, "ablationcam", x, ClassTarget(targets), batch_size=4)
        assert_close(ours, ablationcam(p, A, kind, targets), f"ablationcam {kind} {targets}")


def test_planted_model_tells_variants_apart(models):
    """Each plausible slip changes the expected map far beyond the tolerance above, so the
    closed-form tests can fail (the hand audit's planted bugs, written as variants)."""
    p = models["cnn"].module.params
    x = inputs().double().numpy()
    A = np_layer(p, x)
    G = np_grads(p, A, coefs(TARGETS))

    def far(a, b):
        scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
        return float(np.abs(a - b).max()) > 0.05 * scale

    assert far(gradcampp(A, G), gradcampp(A, G, third_order=False))
    assert far(xgradcam(A, G), xgradcam(A, G, normalise=False))
    assert far(hirescam(A, G), relu((np.abs(G) * A).sum(1)))
    assert far(hirescam(A, G), layercam(A, G))
    assert far(layercam(A, G), relu((np.abs(G) * A).sum(1)))
    assert far(layercam(A, G), hirescam(A, G))
    assert far(gradcam(A, G), hirescam(A, G))
    assert far(gradcam(A, G), xgradcam(A, G))
    assert far(eigencam(A), relu(-eigencam(A) + eigencam(A).max()))
    for weights in ("probability", "channel_softmax"):
        sc = scorecam(p, x, A, "cnn", TARGETS, weights=weights)
        for c in range(3):
            variant = scorecam(p, x, A, "cnn", TARGETS, class_of_weights=c, weights=weights)
            assert far(sc, variant), (weights, c)
    assert far(scorecam(p, x, A, "cnn", TARGETS), scorecam(p, x, A, "cnn", TARGETS, weights="channel_softmax"))


# -- fewer passes: Score-CAM and Ablation-CAM on the channels that matter -----------------------

@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_fast_cams_with_all_channels_equal_the_full_method(models, method):
    model, x = models["cnn"], inputs(seed=5)
    full = get_method(method, batch_size=4).attribute(model, x, ClassTarget(TARGETS), "features")
    for k in (6, 100):
        for rank in ("gradient", "mass"):
            fast = get_method(method, batch_size=4, channels=k, rank=rank).attribute(
                model, x, ClassTarget(TARGETS), "features")
            assert torch.equal(fast, full), (method, k, rank)


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_fast_cams_score_the_top_channels(models, kind):
    """``channels=3`` of 6: the channels chosen are the top 3 of the documented key, computed here
    in closed form; the map is the method restricted to them (others weigh 0)."""
    model = models[kind]
    p = model.module.params
    x = inputs(seed=6)
    xn = x.double().numpy()
    A = np_layer(p, xn)
    G = np_grads(p, A, coefs(TARGETS))
    keys = {
        "gradient": {"scorecam": (relu(G) * relu(A)).sum((2, 3)),
                     "ablationcam": np.abs((G * A).sum((2, 3)))},
        "mass": {"scorecam": relu(A).sum((2, 3)), "ablationcam": relu(A).sum((2, 3))},
    }
    full_abl = ablationcam(p, A, kind, TARGETS)
    for rank, per_method in keys.items():
        for method, key in per_method.items():
            mass = relu(A).sum((2, 3))
            # top 3 by key; ties by mass, then by index
            chosen = [sorted(np.lexsort((np.arange(6), -mass[i], -key[i]))[:3].tolist()) for i in range(2)]
            ours = vlx_map(model, method, x, ClassTarget(TARGETS), batch_size=2, channels=3, rank=rank)
            if method == "scorecam":
                expected = scorecam(p, xn, A, kind, TARGETS, subset=chosen)
            else:
                expected = ablationcam(p, A, kind, TARGETS, subset=chosen,
                                       estimate=(G * A).sum((2, 3)) if rank == "gradient" else None)
            assert_close(ours, expected, f"{method} {rank} {kind}")
            assert not np.allclose(expected, scorecam(p, xn, A, kind, TARGETS) if method == "scorecam" else full_abl)


def test_cam_options_are_checked():
    for method in ("gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "eigencam"):
        with pytest.raises(UsageError, match="has no option"):   # the registry's one-line check
            get_method(method, batch_size=4)
    for method in ("scorecam", "ablationcam"):
        with pytest.raises(UsageError, match="has no option"):   # the registry's one-line check
            get_method(method, n_samples=4)
        with pytest.raises(ValueError):
            get_method(method, channels=0)
        with pytest.raises(ValueError):
            get_method(method, rank="random")
    with pytest.raises(ValueError):
        get_method("scorecam", weights="logit")
    with pytest.raises(UsageError, match="has no option"):   # the registry's one-line check
        get_method("ablationcam", weights="probability")


# -- Fused CAM (vlx variant): geometric mean of max-normalised parts -----------------------------

def fused(*maps: np.ndarray) -> np.ndarray:
    """``(prod_i M_i / max M_i) ** (1 / k)`` per sample, a zero part giving zeros."""
    out = np.ones_like(maps[0])
    for m in maps:
        peak = m.max(axis=(1, 2), keepdims=True)
        out = out * np.where(peak > 0, m / np.where(peak > 0, peak, 1.0), 0.0)
    return out ** (1.0 / len(maps))


@pytest.mark.parametrize("kind", ["cnn", "vit"])
def test_fusedcam_matches_closed_form(models, kind):
    # Both parts at the planted layer: sqrt(GradCAM / max * LayerCAM / max) from the closed forms.
    model = models[kind]
    p = model.module.params
    x = inputs(seed=5)
    A = np_layer(p, x.double().numpy())
    G = np_grads(p, A, coefs(TARGETS))
    layer = model.layer("auto")[0]
    for methods, parts in (("gradcam,layercam", (gradcam, layercam)), ("gradcampp,hirescam", (gradcampp, hirescam)),
                           ("gradcam,layercam,xgradcam", (gradcam, layercam, xgradcam))):
        fm = get_method("fusedcam", methods=methods)
        ours = fm.attribute(model, x, ClassTarget(TARGETS), ",".join([layer] * len(parts))).double().numpy()
        expected = fused(*(f(A, G) for f in parts))
        assert_close(ours, expected, f"fusedcam {methods} {kind}")
        assert ours.max() <= 1 + 1e-6
    # the fusion is not the mean, nor a single part: the planted model tells them apart
    ours = get_method("fusedcam").attribute(model, x, ClassTarget(TARGETS), f"{layer},{layer}").double().numpy()
    for other in (fused(gradcam(A, G)), fused(layercam(A, G)), (fused(gradcam(A, G)) + fused(layercam(A, G))) / 2,
                  fused(gradcam(A, G)) * fused(layercam(A, G))):
        assert np.abs(ours - other).max() > 0.05


class _TwoScales(torch.nn.Module):
    """(B, 3, 16, 16) → conv1 (8 × 8) → conv2 (4 × 4) → mean → 3 logits (signed weights)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.conv1 = torch.nn.Conv2d(3, 6, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(6, 5, 3, stride=2, padding=1)
        self.fc = torch.nn.Linear(5, 3)
        with torch.no_grad():
            for prm in self.parameters():
                prm.copy_(torch.randn(prm.shape, generator=g))

    def forward(self, x):
        h = torch.nn.functional.softplus(self.conv1(x))
        return self.fc(torch.nn.functional.softplus(self.conv2(h)).pow(2).mean((2, 3)))


def test_fusedcam_fuses_at_the_finest_grid_from_one_pass():
    # Parts at two resolutions: the 4 × 4 part is upsampled (bilinear, half-pixel) to the 8 × 8
    # grid, then fused. Each part's reference is vlx's own single method (checked against closed
    # forms above); what is under test is the shared pass, the grid choice and the fusion.
    from vlx.attribute.base import FunctionScorer

    net = _TwoScales().eval()
    scorer = FunctionScorer(net, layers={"conv1": net.conv1, "conv2": net.conv2})
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    t = ClassTarget((0, 2))
    g = get_method("gradcam").attribute(scorer, x, t, "conv2").double().numpy()
    lc = get_method("layercam").attribute(scorer, x, t, "conv1").double().numpy()
    assert g.shape == (2, 4, 4) and lc.shape == (2, 8, 8)
    calls = []
    handle = net.register_forward_hook(lambda *a: calls.append(1))
    try:
        ours = get_method("fusedcam").attribute(scorer, x, t, "conv2,conv1").double().numpy()
    finally:
        handle.remove()
    assert len(calls) == 1                                        # one forward (and one backward) for both parts
    assert_close(ours, fused(bilinear(g, 8), lc), "fusedcam two scales")
    swapped = get_method("fusedcam", methods="layercam,gradcam").attribute(scorer, x, t, "conv1,conv2")
    assert_close(swapped.double().numpy(), ours, "fusedcam part order")


def test_fusedcam_options_and_errors(models):
    model = models["cnn"]
    layer = model.layer("auto")[0]
    x = inputs()
    with pytest.raises(UsageError, match="at least two methods"):
        get_method("fusedcam", methods="gradcam")
    for bad in ("gradcam,scorecam", "gradcam,eigencam", "gradcam,fusedcam", "gradcam,saliency"):
        with pytest.raises(UsageError, match=f"must be gradient CAMs .*'{bad.split(',')[1]}' is not"):
            get_method("fusedcam", methods=bad)
    with pytest.raises(UsageError, match="one layer per part"):
        get_method("fusedcam").attribute(model, x, ClassTarget(0), f"{layer},{layer},{layer}")
    with pytest.raises(UsageError, match="one layer per part"):
        get_method("fusedcam").attribute(model, x, ClassTarget(0), "")
    one = get_method("fusedcam").attribute(model, x, ClassTarget(0), layer)        # one layer serves every part
    assert torch.equal(one, get_method("fusedcam").attribute(model, x, ClassTarget(0), f"{layer},{layer}"))
    with pytest.raises(UsageError):
        get_method("fusedcam", method="gradcam,layercam")
    assert get_method("fusedcam", methods=["gradcam", "layercam"]).options == {"methods": "gradcam,layercam"}
    # a part whose map is all zero makes the fused map zero (not NaN)
    zero = get_method("fusedcam").attribute(model, torch.zeros_like(x), ClassTarget(0), f"{layer},{layer}")
    assert torch.isfinite(zero).all()


class _Grids(torch.nn.Module):
    """conv (B, 4, 16, 16) pooled to four grids, each feeding the logits: (6, 3) 18 positions,
    (4, 5) 20, (2, 8) 16, (5, 5) 25."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.grids = torch.nn.ModuleDict({f"g{h}x{w}": torch.nn.AdaptiveAvgPool2d((h, w))
                                          for h, w in ((6, 3), (4, 5), (2, 8), (5, 5))})
        self.fc = torch.nn.Linear(4 * len(self.grids), 2)
        with torch.no_grad():
            self.fc.weight.abs_()                   # every grid raises the logit: no part map is all zero

    def forward(self, x):
        a = torch.nn.functional.softplus(self.conv(x))
        return self.fc(torch.cat([g(a).pow(2).mean((2, 3)) for g in self.grids.values()], 1))


def test_fusedcam_grid_is_the_part_with_most_positions():
    # The fused grid is the one with the most positions (not the tallest, not the widest).
    from vlx.attribute.base import FunctionScorer

    net = _Grids().eval()
    scorer = FunctionScorer(net, layers=dict(net.grids.items()))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    fm = get_method("fusedcam")
    for layers, grid in (("g6x3,g4x5", (4, 5)), ("g4x5,g6x3", (4, 5)), ("g2x8,g5x5", (5, 5)), ("g5x5,g2x8", (5, 5))):
        out = fm.attribute(scorer, x, ClassTarget(0), layers)
        assert tuple(out.shape) == (1, *grid), layers
        assert float(out.max()) > 0


# -- the CAM base: several layers, default batch, messages, hook outputs (mutation survivors) ----

def test_cam_over_several_layers_is_the_mean_of_the_upsampled_maps(models):
    # ViT: the embedding's output and the last block's patch tokens are the same grid A (identity
    # blocks), with the same gradient, so each layer's Grad-CAM is the closed form; the two-layer
    # map is their mean at input resolution: the closed form upsampled by a numpy bilinear.
    model = models["vit"]
    p = model.module.params
    x = inputs(seed=7)
    A = np_layer(p, x.double().numpy())
    expected = bilinear(gradcam(A, np_grads(p, A, coefs(TARGETS))), SIZE)
    for method, layer in (("gradcam", "embed,blocks.1"), ("gradcam", "embed , blocks.1,")):
        ours = get_method(method).attribute(model, x, ClassTarget(TARGETS), layer).double().numpy()
        assert_close(ours, expected, layer)
    # two different maps: the mean, not the sum or either one
    ours = get_method("gradcam").attribute(models["cnn"], x, ClassTarget(TARGETS), "features,features")
    Ac = np_layer(models["cnn"].module.params, x.double().numpy())
    one = bilinear(gradcam(Ac, np_grads(models["cnn"].module.params, Ac, coefs(TARGETS))), SIZE)
    assert_close(ours.double().numpy(), one, "cnn twice")


@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_forward_cams_default_batch_is_the_models(models, method):
    model = planted_cam_classifier("cnn", SIZE, STRIDE, act="softplus")
    model.batch_size = 5                     # not a divisor of the 6 channels: a short last chunk
    p = model.module.params
    x = inputs(seed=8)
    A = np_layer(p, x.double().numpy())
    expected = (scorecam(p, x.double().numpy(), A, "cnn", TARGETS) if method == "scorecam"
                else ablationcam(p, A, "cnn", TARGETS))
    assert_close(vlx_map(model, method, x, ClassTarget(TARGETS)), expected, method)


def test_forward_cam_option_messages():
    for method in ("scorecam", "ablationcam"):
        with pytest.raises(ValueError, match=r"^channels must be a positive number of channels or None, got 0$"):
            get_method(method, channels=0)
        ranks = r"\('gradient', 'mass', 'cluster'\)" if method == "scorecam" else r"\('gradient', 'mass'\)"
        with pytest.raises(ValueError, match=rf"^rank must be one of {ranks}, got 'random'$"):
            get_method(method, rank="random")
        assert get_method(method, channels=1).channels == 1     # the smallest valid count
    with pytest.raises(ValueError, match=r"^rank must be one of \('gradient', 'mass'\), got 'cluster'$"):
        get_method("ablationcam", rank="cluster")              # Ablation-CAM's drop is not a function of the mask
    assert get_method("scorecam").options["rank"] == "cluster" and get_method("ablationcam").options["rank"] == "gradient"
    with pytest.raises(ValueError, match=r"^weights must be one of \('probability', 'channel_softmax'\), "
                                         r"got 'logit'$"):
        get_method("scorecam", weights="logit")
    assert get_method("scorecam", weights="channel_softmax").options["weights"] == "channel_softmax"


class _Tagged(torch.nn.Module):
    """A submodule whose output holds no tensor."""

    def forward(self, x):
        return ("no tensor here",)


class _NoTensorNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.tag = _Tagged()
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        self.tag(x)
        return self.lin(x.mean((2, 3)))


def test_a_layer_without_a_tensor_output_is_an_error():
    from vlx.models.classifier import ImageClassifier, Preprocess

    pre = Preprocess(size=(8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    model = ImageClassifier(_NoTensorNet(), "t", "t", ["a", "b"], pre, torch.device("cpu"))
    x = torch.rand(1, 3, 8, 8)
    with pytest.raises(RuntimeError, match=r"^layer _Tagged produced no tensor in the forward pass$"):
        get_method("gradcam").attribute(model, x, ClassTarget(0), "tag")
    with pytest.raises(RuntimeError, match=r"^layer 'tag' produced no tensor in the forward pass$"):
        get_method("eigencam").attribute(model, x, ClassTarget(0), "tag")


def test_replace_first_tensor():
    from vlx.attribute.cam import replace_first_tensor

    a, b, new = torch.zeros(1), torch.ones(1), torch.full((1,), 7.0)
    assert replace_first_tensor(a, new) is new
    out = replace_first_tensor((a, b, "x"), new)
    assert type(out) is tuple and out[0] is new and out[1] is b and out[2] == "x" and len(out) == 3
    out = replace_first_tensor([a, b], new)
    assert type(out) is list and out[0] is new and out[1] is b and len(out) == 2
    for bad, kind in (({"a": a}, "dict"), ((), "tuple"), (("x", a), "tuple")):
        with pytest.raises(TypeError, match=rf"^cannot replace the output of type {kind} in a forward hook$"):
            replace_first_tensor(bad, new)


def test_xgradcam_weights_and_minmax_by_hand():
    from vlx.attribute.cam import _minmax

    # channel 0: sum(A) = 4, sum(A g) = 1*2 + 3*(-1) = -1 -> -0.25; channel 1: sum(A) = 0 exactly,
    # replaced by EPS = 1e-7 -> sum(A g) / 1e-7 = (2*3 - 2*1) / 1e-7 = 4e7.
    acts = torch.tensor([[[[1.0, 3.0]], [[2.0, -2.0]]]], dtype=torch.float64)
    grads = torch.tensor([[[[2.0, -1.0]], [[3.0, 1.0]]]], dtype=torch.float64)
    w = get_method("xgradcam").weights(acts, grads)
    assert torch.allclose(w, torch.tensor([[-0.25, 4e7]], dtype=torch.float64), rtol=1e-12, atol=0)
    # |sum(A)| <= EPS, at the boundary and negative: still replaced by +EPS, so -1e-7 * 1 / 1e-7 = -1
    w = get_method("xgradcam").weights(torch.full((1, 1, 1, 1), -1e-7, dtype=torch.float64),
                                       torch.ones((1, 1, 1, 1), dtype=torch.float64))
    assert torch.allclose(w, torch.tensor([[-1.0]], dtype=torch.float64), rtol=1e-12, atol=0)
    # min-max per plane; a constant plane becomes 0 (not NaN)
    a = torch.tensor([[[[1.0, 3.0], [2.0, 5.0]], [[7.0, 7.0], [7.0, 7.0]], [[0.5, 0.25], [0.0, 0.125]]]])
    out = _minmax(a)
    assert torch.equal(out, torch.tensor([[[[0.0, 0.5], [0.25, 1.0]], [[0.0, 0.0], [0.0, 0.0]],
                                           [[1.0, 0.5], [0.0, 0.25]]]]))


@pytest.mark.parametrize("method", ["gradcam", "eigencam", "scorecam", "ablationcam"])
def test_cam_hooks_are_removed(models, method):
    model = models["vit"]
    x = inputs(seed=9, batch=1)
    opts = {"batch_size": 6} if method in ("scorecam", "ablationcam") else {}
    get_method(method, **opts).attribute(model, x, ClassTarget(0), "blocks.1")
    assert all(not m._forward_hooks for m in model.module.modules())


def test_gradcampp_weights_guards_by_hand():
    # alpha = g^2 / (2 g^2 + sum(A) g^3), weight = sum(alpha * ReLU(g)) over positions.
    # channel 0: sum(A) = 4; g = 1 -> 1 / (2 + 4) = 1/6; g = 0 -> alpha 0 (no 0/0) -> w = 1/6.
    # channel 1: sum(A) = -2; g = 1 -> denominator 2 - 2 = 0 exactly: the guard divides by 1,
    #   alpha = 1, weight 1 (finite, not inf); g = -1 -> ReLU(g) = 0 -> w = 1.
    # channel 2: sum(A) = 2; g = -1 -> 0; g = 2 -> 4 / (8 + 16) = 1/6, times ReLU(2) -> w = 1/3.
    acts = torch.tensor([[[[1.0, 3.0]], [[-1.0, -1.0]], [[2.0, 0.0]]]], dtype=torch.float64)
    grads = torch.tensor([[[[1.0, 0.0]], [[1.0, -1.0]], [[-1.0, 2.0]]]], dtype=torch.float64)
    w = get_method("gradcampp").weights(acts, grads)
    assert torch.isfinite(w).all()
    assert torch.allclose(w, torch.tensor([[1 / 6, 1.0, 1 / 3]], dtype=torch.float64), rtol=1e-12, atol=0)
    # the map: ReLU(sum_c w_c A_c) = ReLU([1/6 - 1 + 2/3, 1/2 - 1 + 0]) = [0, 0]; flip channel 1's sign
    m = get_method("gradcampp").combine(acts * torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)[:, None, None],
                                         grads)
    # channel 1 now has sum(A) = 2: g = 1 -> 1 / (2 + 2) = 1/4 -> w1 = 1/4; map = [1/6 + 1/4 + 2/3, 1/2 + 1/4]
    assert torch.allclose(m, torch.tensor([[[1 / 6 + 1 / 4 + 2 / 3, 1 / 2 + 1 / 4]]], dtype=torch.float64),
                          rtol=1e-12, atol=0)


def test_gradcampp_weights_by_hand():
    # channel 0: A = [1, 2, 0], g = [1, 2, 0], sum(A) = 3: alpha = 1/(2 + 3) = 0.2 and
    # 4/(8 + 24) = 0.125, and 0 where g = 0: w = 0.2*1 + 0.125*2 = 0.45.
    # channel 1: A = [1, 1, 1], g = [-1, 1, 1]: the negative gradient counts 0 (ReLU), alpha = 0.2
    # at the other two: w = 0.4.
    acts = torch.tensor([[[[1.0, 2.0, 0.0]], [[1.0, 1.0, 1.0]]]], dtype=torch.float64)
    grads = torch.tensor([[[[1.0, 2.0, 0.0]], [[-1.0, 1.0, 1.0]]]], dtype=torch.float64)
    w = get_method("gradcampp").weights(acts, grads)
    assert torch.allclose(w, torch.tensor([[0.45, 0.4]], dtype=torch.float64), rtol=1e-12, atol=0)


def test_forward_cam_options_and_ties():
    m = get_method("scorecam", batch_size="4", channels="2", rank="mass", weights="channel_softmax")
    assert (m.batch_size, m.channels, m.rank, m.weights_mode) == (4, 2, "mass", "channel_softmax")
    assert m.options == {"batch_size": "4", "channels": "2", "rank": "mass", "weights": "channel_softmax"}
    a = get_method("ablationcam")
    assert (a.batch_size, a.channels, a.rank) == (None, None, "gradient")
    assert a.options == {"batch_size": None, "channels": None, "rank": "gradient"}
    assert get_method("scorecam").weights_mode == "probability"
    # rank="mass" with tied masses: ties go to the lower channel index; negative parts do not count
    # (channel masses 1, 3, 3, 3, 0, 3: channel 5 is 5 - 2 = 3 if negatives counted, but 5 alone).
    planes = [[1.0, 0.0], [3.0, 0.0], [1.5, 1.5], [3.0, 0.0], [0.0, -4.0], [5.0, -2.0]]
    acts = torch.tensor(planes)[None, :, None, :].repeat(2, 1, 1, 1)
    acts[1, 0, 0, 0] = 9.0                                  # the second image: channel 0 first
    chosen, grads = get_method("ablationcam", channels=2, rank="mass").selected(None, None, None, None, acts)
    assert grads is None
    assert chosen.tolist() == [[1, 5], [0, 5]]
    chosen, _ = get_method("ablationcam", channels=4, rank="mass").selected(None, None, None, None, acts)
    assert chosen.tolist() == [[1, 2, 3, 5], [0, 1, 2, 5]]


def test_eigencam_sign_follows_the_channel_mean():
    # numpy oracle: first principal component of the centred (positions x channels) matrix, its
    # sign chosen so the projection correlates positively with the channel-mean activation, ReLU.
    # acts and -acts in one batch: whatever sign the SVD returns, one of the two must be flipped.
    a = torch.tensor([[[0.0, 10.0, 20.0, 5.0]], [[0.0, -30.0, -60.0, 1.0]]], dtype=torch.float64)
    acts = torch.stack([a, -a])                                  # (2, 2, 1, 4)
    out = get_method("eigencam").combine_forward(None, None, None, None, acts)
    for b in range(2):
        flat = acts[b].reshape(2, 4).T.numpy()
        centred = flat - flat.mean(0)
        p = centred @ np.linalg.svd(centred, full_matrices=False)[2][0]
        ref = flat.mean(1) - flat.mean()
        p = -p if (p * ref).sum() < 0 else p
        assert np.allclose(out[b].reshape(4).double().numpy(), np.maximum(p, 0), rtol=1e-5, atol=1e-5)
    assert out.sum() > 0


def test_eigencam_sign_rule_on_both_signs_of_the_data():
    """Random activations and their negation: whatever sign the SVD returns, the map correlates
    with the channel-mean activation (numpy's eigh as the oracle), so some cases need the flip."""
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((4, 5, 3, 4)) + np.linspace(0, 2, 12).reshape(1, 1, 3, 4)
    acts = np.concatenate([acts, -acts])
    ours = get_method("eigencam").combine_forward(None, None, None, None, torch.tensor(acts, dtype=torch.float32))
    expected = eigencam(acts)
    assert_close(ours.double().numpy(), expected, "eigencam signs")


def test_forward_cam_selection_ties_on_a_wide_layer(monkeypatch):
    """40 channels with keys and masses from {1, 2} (many ties): the chosen channels are the first
    ``k`` by (key desc, mass desc, index asc), written out with Python's sort. Torch's default sort
    does not keep the order of equal keys beyond 16 items, so both sorts must be stable."""
    import vlx.attribute.cam as cam

    rng = np.random.default_rng(3)
    b, c, k = 2, 40, 15
    mass = rng.integers(1, 3, (b, c)).astype(float)
    key = rng.integers(1, 3, (b, c)).astype(float)
    acts = torch.tensor(mass[:, :, None, None])
    grads = torch.tensor((key / mass)[:, :, None, None])          # AblationCAM's key |sum g A| = key
    monkeypatch.setattr(cam, "layer_gradients", lambda model, x, target, module: (acts, grads))
    for rank, order in (("mass", lambda i: lambda ch: (-mass[i, ch], ch)),
                        ("gradient", lambda i: lambda ch: (-key[i, ch], -mass[i, ch], ch))):
        chosen, _ = get_method("ablationcam", channels=k, rank=rank).selected(None, None, None, None, acts)
        want = [sorted(sorted(range(c), key=order(i))[:k]) for i in range(b)]
        assert chosen.tolist() == want, rank


def test_layer_gradients_ask_for_input_gradients_only_for_a_frozen_model():
    """A model with trainable weights before the layer: one forward pass, the input not asking for
    a gradient; frozen: a second pass with the input asking for one (else the layer's output has no
    graph). The maps agree."""
    from vlx.testing import planted_classifier

    model = planted_classifier("top-right", size=32)
    x = inputs(seed=2, batch=1)
    layer = model.layer("auto")[0]
    seen = []
    handle = model.module.register_forward_pre_hook(lambda m, args: seen.append(args[0].requires_grad))
    try:
        trainable = get_method("gradcam").attribute(model, x, ClassTarget(0), layer)
        assert seen == [False]
        for p in model.module.parameters():
            p.requires_grad_(False)
        seen.clear()
        frozen = get_method("gradcam").attribute(model, x, ClassTarget(0), layer)
        assert seen == [False, True]
    finally:
        handle.remove()
    assert torch.allclose(frozen, trainable, atol=1e-6) and trainable.max() > 0


@pytest.mark.parametrize("method", ["scorecam", "ablationcam"])
def test_forward_cams_as_wide_as_the_layer_need_no_gradients(models, method, monkeypatch):
    """``channels`` equal to (or above) the layer's width is the full method: no channel ranking,
    so no backward pass."""
    import vlx.attribute.cam as cam

    model = models["cnn"]
    width = model.module.params.masks.shape[0]

    def no_gradients(*a):
        raise AssertionError("a backward pass for a full-width selection")

    full = vlx_map(model, method, inputs(), ClassTarget(TARGETS))
    monkeypatch.setattr(cam, "layer_gradients", no_gradients)
    for k in (width, width + 1):
        got = vlx_map(model, method, inputs(), ClassTarget(TARGETS), channels=k, rank="gradient")
        assert np.array_equal(got, full), k
