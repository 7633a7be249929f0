"""vlx's KernelSHAP against shap on a game with few players, where both are exact.

The game: vlx's superpixels of the image are the players; a coalition ``z`` keeps its players
and replaces the others by the baseline (per-channel mean), ``v(z) = logit_t(x*m(z) + b*(1-m(z)))``.
The test builds that game itself and hands it to shap as a model over binary features (all ones
explained, background all zeros): shap's ``ExactExplainer`` computes exact Shapley values, and its
``KernelExplainer`` enumerates every coalition when ``nsamples >= 2^P - 2``. vlx's KernelSHAP
enumerates every coalition under the same condition. With fewer samples vlx samples coalitions;
its error against the exact values must shrink as samples grow."""

from __future__ import annotations

import numpy as np
import pytest
import shap
import torch

import vlx.attribute  # noqa: F401
from vlx.attribute.base import get_method
from vlx.attribute.perturb import make_baseline, superpixel_players
from vlx.types import ClassTarget

from conftest import pearson, smooth_input

N_SEGMENTS = 8


@pytest.fixture(scope="module")
def game(tiny_vit):
    x = smooth_input(seed=4)
    with torch.no_grad():
        t = int(tiny_vit.logits(x).argmax())
    players = superpixel_players(tiny_vit, x[0], N_SEGMENTS)
    p = int(players.max()) + 1
    assert 6 <= p <= 12, p
    base = make_baseline(x, "mean")
    onehot = torch.nn.functional.one_hot(players, p).permute(2, 0, 1).float()     # (P, h, w)

    @torch.no_grad()
    def value(z: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(np.asarray(z), dtype=torch.float32)
        m = torch.einsum("np,phw->nhw", z, onehot)[:, None]
        out = []
        for i in range(0, len(m), 256):
            mi = m[i:i + 256]
            out.append(tiny_vit.logits(x * mi + base * (1 - mi))[:, t].double())
        return torch.cat(out).numpy()

    return tiny_vit, x, t, players, p, value


def per_player(amap: torch.Tensor, players: torch.Tensor, p: int) -> np.ndarray:
    return np.array([float(amap[players == s][0]) for s in range(p)])


def test_exact_kernelshap_equals_shap_exact_and_kernel_explainers(game, record):
    model, x, t, players, p, value = game
    ours = per_player(get_method("kernelshap", n_segments=N_SEGMENTS, n_samples=2 ** p)
                      .attribute(model, x, ClassTarget(t))[0], players, p)
    ones, zeros = np.ones((1, p)), np.zeros((1, p))
    exact = shap.explainers.Exact(value, shap.maskers.Independent(zeros, max_samples=1))(ones).values[0]
    kernel = np.asarray(shap.KernelExplainer(value, zeros).shap_values(ones, nsamples=2 ** p, silent=True))[0]
    scale = float(np.abs(exact).max())
    assert scale > 1e-4
    for name, theirs in (("shap.Exact", exact), ("shap.KernelExplainer(all coalitions)", kernel)):
        rel = float(np.abs(ours - theirs).max()) / scale
        record(name, "kernelshap(exact)", f"tiny-vit P={p}", max_abs_rel=rel, corr=pearson(ours, theirs))
        assert rel < 1e-4, (name, rel, ours, theirs)
    # efficiency holds for the oracle: the test's game is the same as vlx's
    assert abs(exact.sum() - (value(ones) - value(zeros))[0]) < 1e-5 * max(1.0, scale)


def test_sampled_kernelshap_converges_to_exact_shapley_values(game, record):
    model, x, t, players, p, value = game
    exact = shap.explainers.Exact(value, shap.maskers.Independent(np.zeros((1, p)), max_samples=1))(
        np.ones((1, p))).values[0]
    errors = {}
    big = min(1024, 2 ** p - 4)                     # still sampled, not enumerated
    for n in (64, big):
        runs = [per_player(get_method("kernelshap", n_segments=N_SEGMENTS, n_samples=n, seed=s)
                           .attribute(model, x, ClassTarget(t))[0], players, p) for s in range(3)]
        errors[n] = float(np.mean([np.sqrt(np.mean((r - exact) ** 2)) for r in runs]))
    scale = float(np.sqrt(np.mean(exact ** 2)))
    record("shap.Exact", "kernelshap(sampled)", f"tiny-vit P={p}", rmse_rel_64=errors[64] / scale,
           rmse_rel_big=errors[big] / scale)
    assert errors[big] < 0.5 * errors[64], errors
    assert errors[big] < 0.1 * scale, (errors, scale)
