"""The Affinity Explainer against an independent port of AffinityExplainer's formulas
(``affex/explainer/affinity.py``: softmax over support positions, each support position's
affinity normalised over all query positions, mean over the query region, per-level sum-1
normalisation, mean or feature-ablation level weights from the absolute change of the
foreground logit, masked / signed variants) on a small model with known scores.

The oracle is plain numpy with loops over support positions; resizing is avoided by giving the
model's query grid the output size and its support grid the input size, so every comparison is
exact up to float precision. The reference min-max scales each final map; vlx keeps the sum-1
scale, so maps are compared after min-max scaling and, for the sign, raw.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from vlx.fewshot import FewShotOutput, explain_support, prepare
from vlx.fewshot.explain import MASK_BLUR_SIGMA, ablation_weights, support_contribution

NQ_HW, NS_HW, K = (6, 6), (8, 8), 2


class KnownScores:
    """A few-shot model whose affinities and logits are fixed arrays: two levels; level ``l``
    adds ``G[l]`` to the foreground logit and ``H[l]`` to the background logit, scaled by its
    level weight."""

    name, levels, input_size, supports_level_weights = "known", ("l0", "l1"), NS_HW, True
    device = torch.device("cpu")

    def __init__(self, scores: list[np.ndarray], g: np.ndarray, h: np.ndarray) -> None:
        self.scores, self.g, self.h = scores, g, h

    def to_input(self, images):
        return torch.stack([torch.from_numpy(np.asarray(a, np.float32)).permute(2, 0, 1)[:, :8, :8] / 255
                            for a in images])

    def forward(self, query, support, support_masks, level_weights=None):
        b = support.shape[0]
        lw = torch.ones(2) if level_weights is None else level_weights.float()
        fg = sum(lw[i] * torch.from_numpy(self.g[i]).float() for i in range(2))
        bg = sum(lw[i] * torch.from_numpy(self.h[i]).float() for i in range(2))
        logits = torch.stack([bg, fg])[None].expand(b, -1, -1, -1)
        aff = [torch.from_numpy(s).float()[None].expand(b, -1, -1, -1) for s in self.scores]
        return FewShotOutput(logits, aff, [NQ_HW] * 2, [NS_HW] * 2, [])


# ------------------------------------------------------------------------------- the oracle
def ref_level(scores: np.ndarray, roi: np.ndarray) -> np.ndarray:
    """scores (K, Nq, Ns), roi bool (Nq,) → contribution (K, Ns), sum 1 over shots."""
    k, nq, ns = scores.shape
    flat = np.concatenate([scores[i] for i in range(k)], axis=1)          # (Nq, K·Ns), shot-major
    soft = np.exp(flat - flat.max(1, keepdims=True))
    soft = soft / soft.sum(1, keepdims=True)
    out = np.zeros(k * ns)
    for col in range(k * ns):
        qmap = soft[:, col] / (soft[:, col].sum() + 1e-6)                   # normalised over the query
        out[col] = qmap[roi].mean()
    out = out.reshape(k, ns)
    return out / (out.sum() + 1e-6)


def ref_weights(model: KnownScores, roi: np.ndarray) -> np.ndarray:
    full = (model.g[0] + model.g[1]).ravel()[roi].mean()
    diffs = np.array([abs(full - model.g[1 - i].ravel()[roi].mean()) for i in range(2)])
    return diffs / diffs.sum()


def ref_map(model: KnownScores, roi: np.ndarray, masks: np.ndarray, variant: str, combine: str) -> np.ndarray:
    levels = np.stack([ref_level(s, roi) for s in model.scores])          # (L, K, Ns)
    w = ref_weights(model, roi) if combine == "ablation" else np.full(2, 0.5)
    m = (levels * w[:, None, None]).sum(0).reshape(K, *NS_HW)
    sigma = max(0.5, MASK_BLUR_SIGMA * max(NS_HW))
    blur = np.stack([gaussian_filter(x.astype(np.float64), sigma, mode="nearest", truncate=4.0) for x in masks])
    if variant == "masked":
        m = m * blur
    elif variant == "signed":
        m = m * (2 * blur - 1)
    return m


def min_max(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / (a.max() - a.min())


# ------------------------------------------------------------------------------- the episode
@pytest.fixture(scope="module")
def episode():
    rng = np.random.default_rng(0)
    nq, ns = NQ_HW[0] * NQ_HW[1], NS_HW[0] * NS_HW[1]
    scores = [rng.normal(0, 1.5, (K, nq, ns)) for _ in range(2)]
    # one support position every query position attends to: a raw mean ranks it first
    scores[0][0, :, 10] += 4.0
    scores[1][0, :, 10] += 4.0
    g = np.stack([rng.normal(-1.0, 1, NQ_HW), rng.normal(2.0, 1, NQ_HW)])   # level 0 lowers the fg logit
    h = np.stack([rng.normal(-3.0, 1, NQ_HW), rng.normal(0.0, 1, NQ_HW)])
    model = KnownScores(scores, g, h)
    query = rng.integers(0, 255, (*NQ_HW, 3)).astype(np.uint8)
    supports = [rng.integers(0, 255, (*NS_HW, 3)).astype(np.uint8) for _ in range(K)]
    masks = [np.zeros(NS_HW, bool) for _ in range(K)]
    masks[0][1:5, 2:7] = True
    masks[1][3:8, 0:4] = True
    roi = np.zeros(NQ_HW, bool)
    roi[1:4, 2:6] = True
    return model, query, supports, masks, roi


@pytest.mark.parametrize("variant", ["unmasked", "masked", "signed"])
@pytest.mark.parametrize("combine", ["mean", "ablation"])
def test_affinity_explainer_matches_reference(episode, variant, combine):
    model, query, supports, masks, roi = episode
    name = "affinity" + ("" if variant == "unmasked" else f"-{variant}")
    name += "-ablation" if combine == "ablation" else ""
    a = explain_support(model, query, supports, masks, name, roi=roi)
    want = ref_map(model, roi.ravel(), np.stack(masks), variant, combine)
    np.testing.assert_allclose(a.raw, want, rtol=2e-4, atol=1e-8)
    np.testing.assert_allclose(min_max(a.raw), min_max(want), atol=1e-5)
    assert a.signed == (variant == "signed")
    if variant == "signed":
        assert (a.raw < 0).any() and (a.raw > 0).any()


def test_popular_support_position_is_not_ranked_first(episode):
    model, query, supports, masks, roi = episode
    a = explain_support(model, query, supports, masks, "affinity", roi=roi)
    order = np.argsort(-a.raw.ravel(), kind="stable")
    rank = int(np.nonzero(order == 10)[0][0])                  # shot 0, support position 10
    want = ref_map(model, roi.ravel(), np.stack(masks), "unmasked", "mean").ravel()
    assert rank == int(np.nonzero(np.argsort(-want, kind="stable") == 10)[0][0])
    assert rank >= 10  # first under the raw mean of affinities
    raw_mean = np.mean([s[0][roi.ravel()].mean(0) for s in model.scores], 0)  # the old, unnormalised rule
    assert int(np.argmax(raw_mean)) == 10


def test_support_contribution_small_case():
    # 2 query positions, 1 shot, 2 support positions; scores chosen so the softmax is exact
    s = torch.tensor([[[np.log(3.0), 0.0], [0.0, 0.0]]])      # rows: softmax (3/4, 1/4), (1/2, 1/2)
    c = support_contribution(s, torch.tensor([1.0, 0.0]))
    # columns normalised over the query: (3/4)/(5/4) = 0.6 and (1/4)/(3/4) = 1/3
    np.testing.assert_allclose(c.numpy(), [[0.6, 1 / 3]], rtol=1e-5)


def test_ablation_weights_use_the_absolute_foreground_change(episode):
    model, query, supports, masks, roi = episode
    inp = prepare(model, query, supports, masks, roi)
    got = ablation_weights(model, inp).numpy()
    np.testing.assert_allclose(got, ref_weights(model, roi.ravel()), rtol=1e-5)
    assert got.min() > 0.05                                     # the level that lowers fg still counts


# ------------------------------------------------------------------------------- the metrics
class MaskSensitive:
    """Foreground logit at query position q: ``5 · <(support red + 0.5) × mask, V_q> / n - 1``, fixed
    random ``V``; background 0. Removing a pixel from the image or only from the mask changes it."""

    name, levels, input_size, supports_level_weights = "mask-sensitive", ("l0",), NS_HW, False
    device = torch.device("cpu")

    def __init__(self) -> None:
        self.v = torch.from_numpy(np.random.default_rng(5).random((NQ_HW[0] * NQ_HW[1], K * 64))).float()

    def to_input(self, images):
        return torch.stack([torch.from_numpy(np.asarray(a, np.float32)).permute(2, 0, 1) / 255 for a in images])

    def forward(self, query, support, support_masks, level_weights=None):
        b = support.shape[0]
        x = ((support[:, :, 0] + 0.5) * support_masks).reshape(b, -1)           # (B, K·64)
        fg = (5 * x @ self.v.T / x.shape[1] - 1).view(b, *NQ_HW)
        logits = torch.stack([torch.zeros_like(fg), fg], 1)
        aff = torch.zeros(b, K, NQ_HW[0] * NQ_HW[1], 64)
        return FewShotOutput(logits, [aff], [NQ_HW], [NS_HW], [])


def ref_fss_curve(model, inp, explanation: np.ndarray, mode: str, n_steps: int, measure: str,
                  gt: np.ndarray | None = None, percentage: float | None = None) -> np.ndarray:
    """FSSCausalMetric's loop: substrate zero for the support images *and* masks; step
    intervals ``MHW · i // n_steps``; scores are the mean foreground probability over the ROI
    (``logits``) or the foreground IoU against ``gt`` (``miou``)."""
    images = inp.support[0].numpy().copy()                   # (K, 3, h, w)
    masks = inp.masks[0].numpy().copy()                      # (K, h, w)
    order = np.argsort(-explanation.ravel())                 # distinct values: no ties
    mhw = masks.size
    total = int(mhw * percentage) if percentage else mhw
    steps = [total * i // n_steps for i in range(n_steps + 1)]
    if mode == "del":
        cur_i, cur_m, fin_i, fin_m = images.copy(), masks.copy(), np.zeros_like(images), np.zeros_like(masks)
    else:
        cur_i, cur_m, fin_i, fin_m = np.zeros_like(images), np.zeros_like(masks), images.copy(), masks.copy()
    roi = inp.roi.numpy()
    scores = []
    for i in range(n_steps + 1):
        with torch.no_grad():
            out = model.forward(inp.query, torch.from_numpy(cur_i)[None], torch.from_numpy(cur_m)[None])
        if measure == "miou":
            pred = (out.logits[0].argmax(0) == 1).numpy()
            scores.append((pred & gt).sum() / max(1, (pred | gt).sum()))
        else:
            scores.append(out.logits[0].softmax(0)[1].numpy()[roi].mean())
        if i == n_steps:
            break
        coords = order[steps[i]:steps[i + 1]]
        k, rc = np.unravel_index(coords, masks.shape)[0], np.ravel_multi_index(
            np.unravel_index(coords, masks.shape)[1:], masks.shape[1:])
        for kk, pix in zip(k, rc):
            r, c = divmod(int(pix), masks.shape[2])
            cur_i[kk, :, r, c] = fin_i[kk, :, r, c]
            cur_m[kk, r, c] = fin_m[kk, r, c]
    return np.asarray(scores, np.float64)


def ref_auc(arr: np.ndarray) -> float:
    return float((arr.sum() - arr[0] / 2 - arr[-1] / 2) / (arr.shape[0] - 1))


@pytest.fixture(scope="module")
def metric_episode():
    from vlx.fewshot.explain import SupportAttribution

    rng = np.random.default_rng(2)
    model = MaskSensitive()
    query = rng.integers(0, 255, (*NQ_HW, 3)).astype(np.uint8)
    supports = [rng.integers(0, 255, (*NS_HW, 3)).astype(np.uint8) for _ in range(K)]
    masks = [rng.random(NS_HW) < 0.6 for _ in range(K)]
    inp = prepare(model, query, supports, masks, "image")
    raw = rng.random((K, *NS_HW)).astype(np.float32)
    attr = SupportAttribution(tuple(raw), raw, "random", False, 0.0)
    gt = np.zeros(NQ_HW, bool)
    gt[:, :4] = True
    return model, inp, attr, gt


@pytest.mark.parametrize("mode", ["deletion", "insertion"])
def test_support_curves_match_the_reference_protocol(metric_episode, mode):
    from vlx.fewshot.metrics import REFERENCE_STEPS, fewshot_metrics, support_curve

    model, inp, attr, gt = metric_episode
    x, y = support_curve(model, inp, attr, mode)                       # defaults: the reference protocol
    want = ref_fss_curve(model, inp, attr.raw, mode[:3], REFERENCE_STEPS, "logits")
    assert len(y) == REFERENCE_STEPS + 1
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-7)
    assert np.abs(np.diff(want)).max() > 1e-3                           # the curve moves
    res = {r.name: r.value for r in fewshot_metrics(model, inp, attr, gt)}
    assert res[f"support-{mode}"] == pytest.approx(ref_auc(want), rel=1e-6)
    assert x[1] == (128 // REFERENCE_STEPS) / 128 and x[-1] == 1.0          # floor schedule
    miou_curve = support_curve(model, inp, attr, mode, "miou", gt, steps=16)[1]
    np.testing.assert_allclose(miou_curve, ref_fss_curve(model, inp, attr.raw, mode[:3], 16, "miou", gt), atol=1e-9)


def test_miou_loss_matches_the_reference(metric_episode):
    from vlx.fewshot.metrics import miou_loss

    model, inp, attr, gt = metric_episode
    for p in (5.0, 25.0, 60.0):
        ref = ref_fss_curve(model, inp, attr.raw, "ins", 1, "miou", gt, percentage=p / 100)
        full = ref_fss_curve(model, inp, attr.raw, "ins", 1, "miou", gt)[-1]
        assert miou_loss(model, inp, attr, (p,), gt)[0] == pytest.approx(full - ref[-1], abs=1e-9)
