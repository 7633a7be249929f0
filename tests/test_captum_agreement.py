"""vlx methods agree with captum's implementations of the same definitions (Spearman rank
correlation of the maps, ties ranked by their average, as scipy's ``rankdata`` does)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401
from vlx.attribute.base import get_method
from vlx.attribute.perturb import make_baseline, superpixel_players
from vlx.models import load_classifier
from vlx.testing import planted_classifier, tiny_vit_folder
from vlx.types import ClassTarget

captum_attr = pytest.importorskip("captum.attr")

SIZE = 32
TARGETS = (0, 2)


def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their average rank."""
    _, inv, counts = np.unique(a, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inv]


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = rankdata(a.detach().double().ravel().numpy()), rankdata(b.detach().double().ravel().numpy())
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / np.sqrt((ra ** 2).sum() * (rb ** 2).sum()))


def test_spearman_helper():
    a = torch.tensor([1.0, 2.0, 2.0, 5.0])
    assert spearman(a, a * 3 + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    vit = load_classifier(f"hf:{tiny_vit_folder(tmp_path_factory.mktemp('vit'))}", "cpu")
    return {"planted": planted_classifier("top-left", SIZE, num_classes=3), "vit": vit}


def inputs(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    quad = torch.rand((2, 3, 2, 2), generator=g).repeat_interleave(SIZE // 2, 2).repeat_interleave(SIZE // 2, 3)
    detail = torch.nn.functional.interpolate(torch.rand((2, 3, 8, 8), generator=g), size=(SIZE, SIZE),
                                             mode="bilinear", align_corners=False)
    return 0.6 * quad + 0.4 * detail


def check(ours: torch.Tensor, theirs: torch.Tensor, threshold: float = 0.99) -> None:
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    for i in range(ours.shape[0]):
        rho = spearman(ours[i], theirs[i])
        assert rho >= threshold, (i, rho)


@pytest.mark.parametrize("model_name", ["planted", "vit"])
def test_gradient_methods_match_captum(models, model_name):
    model, x = models[model_name], inputs()
    fwd, tgt = model.logits, ClassTarget(TARGETS)
    check(get_method("saliency").attribute(model, x, tgt),
          captum_attr.Saliency(fwd).attribute(x, target=list(TARGETS), abs=True).amax(1))
    check(get_method("input_x_gradient").attribute(model, x, tgt),
          captum_attr.InputXGradient(fwd).attribute(x, target=list(TARGETS)).sum(1))
    ours = get_method("integrated_gradients", n_steps=64).attribute(model, x, tgt)
    theirs = captum_attr.IntegratedGradients(fwd).attribute(
        x, baselines=torch.zeros_like(x), target=list(TARGETS), n_steps=64, method="gausslegendre")
    check(ours, theirs.sum(1))
    assert torch.allclose(ours, theirs.sum(1), atol=1e-4 * float(ours.abs().max()))


def test_occlusion_matches_captum(models):
    model, x = models["planted"], inputs()
    # One window per forward pass, as captum's default: outside the planted quadrant the true score
    # drop is exactly 0, and only identical arithmetic gives identical float noise (and ranks) there.
    ours = get_method("occlusion", window=4, stride=2, batch_size=1).attribute(model, x, ClassTarget(TARGETS))
    theirs = captum_attr.Occlusion(model.logits).attribute(
        x, sliding_window_shapes=(3, 4, 4), strides=(3, 2, 2), baselines=0.0, target=list(TARGETS))
    check(ours, theirs[:, 0])
    assert torch.allclose(ours, theirs[:, 0], atol=1e-4 * float(ours.abs().max()))


def test_gradcam_matches_captum_layergradcam(models):
    model, x = models["planted"], inputs()
    name, module = model.layer("auto")
    ours = get_method("gradcam").attribute(model, x, ClassTarget(TARGETS), name)
    theirs = captum_attr.LayerGradCam(model.logits, module).attribute(x, target=list(TARGETS),
                                                                      relu_attributions=True)
    check(ours, theirs[:, 0])


def test_kernelshap_matches_captum(models):
    """Same players (our superpixels as captum's feature mask), same baseline.

    captum draws coalitions from the global torch RNG with its own procedure, so the samples
    cannot be matched one for one. Instead vlx enumerates all coalitions of the few players
    (exact Shapley values) and captum samples many coalitions; captum's estimate converges to
    the same values, so we compare per-player values with a looser threshold (0.95), which
    sampling noise at 2000 samples stays well inside."""
    pytest.importorskip("sklearn")
    model = models["vit"]
    x = (inputs(seed=1) - 0.5) / 0.5
    for i, t in enumerate(TARGETS):
        xi = x[i:i + 1]
        players = superpixel_players(model, xi[0], 16)
        n_players = int(players.max()) + 1
        assert 4 <= n_players <= 13, n_players
        ks = get_method("kernelshap", n_segments=16, n_samples=2 ** n_players)
        ours = ks.attribute(model, xi, ClassTarget(t))[0]
        torch.manual_seed(0)
        theirs = captum_attr.KernelShap(model.logits).attribute(
            xi, baselines=make_baseline(xi, "mean"), target=t, feature_mask=players[None, None].expand_as(xi),
            n_samples=2000, perturbations_per_eval=250)[0, 0]
        ours_p = torch.stack([ours[players == s][0] for s in range(n_players)])
        theirs_p = torch.stack([theirs[players == s][0] for s in range(n_players)])
        rho = spearman(ours_p, theirs_p)
        print(f"kernelshap target {t}: {n_players} players, rho={rho:.3f}")
        assert rho >= 0.95, (t, rho, ours_p, theirs_p)
