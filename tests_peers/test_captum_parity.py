"""vlx's gradient and perturbation methods against captum's implementations of the same
definitions, on EfficientNet-Lite0 (the cat photo) and a tiny ViT. Beyond tests/test_captum_agreement.py
(rank correlation on a planted CNN), these compare values: max abs difference relative to the
map's largest magnitude, and the Pearson correlation.

Matched definitions:
- saliency = captum ``Saliency(abs=True)``, max over colour channels;
- input × gradient = ``InputXGradient``, summed over channels;
- IG = ``IntegratedGradients`` (zero baseline, Gauss-Legendre, same steps), summed;
- SmoothGrad over input × gradient = ``NoiseTunnel(InputXGradient, "smoothgrad")`` with
  ``stdevs = noise_level * (max(x) - min(x))``: captum draws its noise with ``torch.normal`` from
  the global generator, one ``(n, 3, h, w)`` draw; seeding it with vlx's seed gives the same noise
  as vlx's ``randn`` draw, so the maps agree to float precision (the mean over samples commutes
  with the channel sum, which it does not for saliency's channel max);
- occlusion = ``Occlusion`` (window over all channels, zero baseline);
- feature ablation = ``FeatureAblation`` over a grid of square cells: vlx's occlusion with
  ``stride == window`` is that ablation;
- LIME = ``Lime`` with the same players (vlx's superpixels as ``feature_mask``), the same
  coalitions (fed through ``perturb_func``), the same kernel (exponential of the cosine distance,
  width 0.25), the same baseline (per-channel mean) and the same surrogate (ridge, ``alpha=1``,
  with intercept);
- KernelSHAP: captum samples coalitions its own way, so vlx's exact values (every coalition
  enumerated) are compared with captum's estimate from many samples by correlation (shap gives
  the exact oracle: test_shap_parity.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import (FeatureAblation, InputXGradient, IntegratedGradients, KernelShap, Lime, NoiseTunnel,
                         Occlusion, Saliency)
from captum._utils.models.linear_model import SkLearnRidge
from captum.attr._core.lime import get_exp_kernel_similarity_function

import vlx.attribute  # noqa: F401
from vlx.attribute.base import get_method
from vlx.attribute.perturb import make_baseline, superpixel_players
from vlx.types import ClassTarget

from conftest import pearson, smooth_input


@pytest.fixture(scope="module")
def cases(effnet, chelsea_input, tiny_vit):
    out = {}
    for name, model, x in (("effnet-lite0", effnet, chelsea_input), ("tiny-vit", tiny_vit, smooth_input(seed=1))):
        with torch.no_grad():
            out[name] = (model, x, int(model.logits(x).argmax()))
    return out


def compare(record, method: str, model_name: str, ours: torch.Tensor, theirs: torch.Tensor,
            rel_tol: float = 1e-4, min_corr: float | None = None) -> None:
    ours, theirs = ours.detach().double(), theirs.detach().double()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = float(theirs.abs().max())
    assert scale > 0, "captum's map is all zeros: the comparison would be vacuous"
    rel = float((ours - theirs).abs().max()) / scale
    corr = pearson(ours.numpy(), theirs.numpy())
    record("captum", method, model_name, max_abs_rel=rel, corr=corr)
    if min_corr is None:
        assert rel < rel_tol, (method, model_name, rel, corr)
    else:
        assert corr >= min_corr, (method, model_name, rel, corr)


@pytest.mark.parametrize("model_name", ["effnet-lite0", "tiny-vit"])
def test_saliency_and_input_x_gradient(cases, record, model_name):
    model, x, t = cases[model_name]
    compare(record, "saliency", model_name, get_method("saliency").attribute(model, x, ClassTarget(t)),
            Saliency(model.logits).attribute(x, target=t, abs=True).amax(1))
    compare(record, "input_x_gradient", model_name,
            get_method("input_x_gradient").attribute(model, x, ClassTarget(t)),
            InputXGradient(model.logits).attribute(x, target=t).sum(1))


@pytest.mark.parametrize("model_name", ["effnet-lite0", "tiny-vit"])
def test_integrated_gradients(cases, record, model_name):
    model, x, t = cases[model_name]
    steps = 16 if model_name == "effnet-lite0" else 64
    ours = get_method("integrated_gradients", n_steps=steps, batch_size=16).attribute(model, x, ClassTarget(t))
    theirs = IntegratedGradients(model.logits).attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=steps,
                                                         method="gausslegendre", internal_batch_size=16)
    compare(record, "integrated_gradients", model_name, ours, theirs.sum(1))


@pytest.mark.parametrize("model_name", ["effnet-lite0", "tiny-vit"])
def test_smoothgrad_with_matched_noise(cases, record, model_name):
    model, x, t = cases[model_name]
    n, level, seed = 8, 0.15, 5
    ours = get_method("smoothgrad", base="input_x_gradient", n_samples=n, noise_level=level, seed=seed,
                      batch_size=n).attribute(model, x, ClassTarget(t))
    torch.manual_seed(seed)
    theirs = NoiseTunnel(InputXGradient(model.logits)).attribute(
        x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=n,
        stdevs=level * float(x.max() - x.min()), target=t)
    compare(record, "smoothgrad(input_x_gradient)", model_name, ours, theirs.sum(1))


@pytest.mark.parametrize("model_name", ["effnet-lite0", "tiny-vit"])
def test_occlusion(cases, record, model_name):
    model, x, t = cases[model_name]
    win, stride = (56, 28) if model_name == "effnet-lite0" else (8, 4)
    ours = get_method("occlusion", window=win, stride=stride, batch_size=1).attribute(model, x, ClassTarget(t))
    theirs = Occlusion(model.logits).attribute(x, sliding_window_shapes=(3, win, win), strides=(3, stride, stride),
                                               baselines=0.0, target=t)
    compare(record, "occlusion", model_name, ours, theirs[:, 0])


@pytest.mark.parametrize("model_name", ["effnet-lite0", "tiny-vit"])
def test_feature_ablation_on_a_grid(cases, record, model_name):
    model, x, t = cases[model_name]
    cell = 32 if model_name == "effnet-lite0" else 8
    h, w = x.shape[-2:]
    ids = (torch.arange(h)[:, None] // cell) * (w // cell) + torch.arange(w)[None, :] // cell
    ours = get_method("occlusion", window=cell, stride=cell, batch_size=1).attribute(model, x, ClassTarget(t))
    theirs = FeatureAblation(model.logits).attribute(x, baselines=0.0, target=t,
                                                     feature_mask=ids[None, None].expand(1, 3, h, w))
    compare(record, "feature_ablation(grid)", model_name, ours, theirs[:, 0])


def lime_kernel(width: float):
    """LIME's kernel (lime_image, and captum's ``get_exp_kernel_similarity_function``):
    ``exp(-d^2 / (2 width^2))`` with ``d`` the cosine distance between the coalition and the full
    image *in the interpretable space* (captum's own similarity measures it between input tensors)."""

    def sim(_orig, _pert, interp, **_kw):
        z = interp.double().ravel()
        d = 1.0 - float(z.sum() / (z.norm() * z.numel() ** 0.5).clamp_min(1e-12))
        return float(np.exp(-d * d / (2 * width * width)))

    return sim


def run_lime(model, x, t, kernel_width: float, n_seg: int = 16, n_samples: int = 96, seed: int = 3):
    lime = get_method("lime", n_segments=n_seg, n_samples=n_samples, seed=seed, sampler="iid")   # captum draws iid
    ours = lime.attribute(model, x, ClassTarget(t))[0]
    players = superpixel_players(model, x[0], n_seg)
    z, _ = lime.coalitions(int(players.max()) + 1, torch.Generator().manual_seed(seed))  # vlx's coalitions, in order
    rows = iter(z.tolist())

    def perturb(_inp, **_kw):
        return torch.tensor([next(rows)])

    theirs = Lime(model.logits, interpretable_model=SkLearnRidge(alpha=1.0), similarity_func=lime_kernel(kernel_width),
                  perturb_func=perturb).attribute(
        x, target=t, baselines=make_baseline(x, "mean"), feature_mask=players[None, None].expand_as(x),
        n_samples=n_samples, perturbations_per_eval=16)[0, 0]
    return lime, ours, theirs


@pytest.mark.parametrize("model_name", ["effnet-lite0", "tiny-vit"])
def test_lime_same_players_coalitions_kernel_and_surrogate(cases, record, model_name):
    """vlx weighs coalitions by ``exp(-d^2 / w^2)``, i.e. LIME's kernel with width ``w / sqrt(2)``:
    captum is given that width, so everything else (players, baseline, scoring, ridge) is compared."""
    model, x, t = cases[model_name]
    lime, ours, theirs = run_lime(model, x, t, get_method("lime").kernel_width / np.sqrt(2))
    compare(record, "lime(width matched)", model_name, ours, theirs, rel_tol=1e-3)


@pytest.mark.xfail(reason="vlx's LIME kernel is exp(-d^2/w^2); lime and captum use exp(-d^2/(2 w^2)): "
                          "at the same kernel_width (0.25) vlx's kernel is narrower by sqrt(2)", strict=True)
def test_lime_default_kernel_width_means_what_it_means_in_lime(cases, record):
    model, x, t = cases["tiny-vit"]
    lime, ours, theirs = run_lime(model, x, t, get_method("lime").kernel_width)
    compare(record, "lime(same kernel_width)", "tiny-vit", ours, theirs, rel_tol=1e-3)


@pytest.mark.slow
def test_kernelshap_exact_vs_captum_sampled(cases, record):
    model, x, t = cases["tiny-vit"]
    players = superpixel_players(model, x[0], 8)
    p = int(players.max()) + 1
    assert p <= 12, p
    ours = get_method("kernelshap", n_segments=8, n_samples=2 ** p).attribute(model, x, ClassTarget(t))[0]
    torch.manual_seed(0)
    theirs = KernelShap(model.logits).attribute(x, baselines=make_baseline(x, "mean"), target=t,
                                                feature_mask=players[None, None].expand_as(x), n_samples=3000,
                                                perturbations_per_eval=250)[0, 0]
    per = lambda m: torch.stack([m[players == s][0] for s in range(p)])  # noqa: E731
    compare(record, "kernelshap(exact vs sampled)", "tiny-vit", per(ours), per(theirs), min_corr=0.95)
