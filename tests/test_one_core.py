"""One core (issue 13 item 1-2): methods take a score function; the MLLM and few-shot baselines
are adapters over the same classes; unknown options are one-line errors with a did-you-mean."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute import perturb
from vlx.attribute.base import FunctionScorer, Scorer, get_method
from vlx.registry import check_options
from vlx.attribute.gradient import IntegratedGradients
from vlx.errors import UsageError
from vlx.testing import planted_classifier
from vlx.types import ClassTarget

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- unknown options ------------------------------------------------------------------------------

def test_misspelt_option_is_a_one_line_error_with_did_you_mean():
    with pytest.raises(UsageError) as e:
        get_method("integrated_gradients", n_stpes=10)
    msg = str(e.value)
    assert "\n" not in msg and "'n_stpes'" in msg and "Did you mean n_steps?" in msg
    assert msg.endswith(".") and all(o in msg.split("Its options:")[1] for o in ("batch_size", "method", "n_steps"))
    with pytest.raises(UsageError, match="'n_segment'.*Did you mean n_segments"):
        perturb.KernelSHAP(n_segment=8)                       # the class validates, not only get_method
    with pytest.raises(TypeError, match="'n_stpes'"):         # an explicit signature: Python's own check
        IntegratedGradients(n_stpes=3)


def test_options_of_base_classes_are_accepted():
    # batch_size / baseline / seed live on PerturbationBase, n_samples on SuperpixelSurrogate.
    m = get_method("kernelshap", seed=3, baseline="zero", batch_size=4, n_samples=16, n_segments=8)
    assert (m.seed, m.baseline, m.batch_size, m.n_samples) == (3, "zero", 4, 16)
    assert get_method("rise", score="logit", centre=False, n_masks=8).score == "logit"
    with pytest.raises(UsageError, match="Its options: .*window"):
        get_method("occlusion", windw=3)
    with pytest.raises(UsageError, match="Its options: none"):
        get_method("gradcam", foo=1)


def test_check_options_reads_every_init_on_the_mro():
    class A:
        def __init__(self, alpha: int = 1, **kw):
            pass

    class B(A):
        name = "b"

        def __init__(self, beta: int = 2, **kw):
            super().__init__(**kw)

    check_options(B, {"alpha": 1, "beta": 2}, "thing 'b'")
    with pytest.raises(UsageError, match="thing 'b' has no option 'gamma'.*Its options: beta, alpha"):
        check_options(B, {"gamma": 1}, "thing 'b'")


def test_mllm_baselines_reject_unknown_options():
    from vlx.mllm.methods import get_mllm_method

    with pytest.raises(UsageError, match="Did you mean n_segments"):
        get_mllm_method("occlusion", n_segment=4)
    with pytest.raises(UsageError, match="Its options: none"):
        get_mllm_method("gradxinput", layer=3)


# -- score functions ------------------------------------------------------------------------------

def test_image_classifier_is_a_scorer_and_a_plain_function_gives_the_same_maps():
    model = planted_classifier("top-left", 32)
    assert isinstance(model, Scorer) and isinstance(FunctionScorer(model.logits), Scorer)
    x = torch.rand((2, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    fn = FunctionScorer(model.logits, batch_size=4, layers=model.module)
    for name, opts in (("integrated_gradients", {"n_steps": 8}), ("occlusion", {"window": 8}),
                       ("input_x_gradient", {})):
        a = get_method(name, **opts).attribute(model, x, ClassTarget(0))
        b = get_method(name, **opts).attribute(fn, x, ClassTarget(0))
        torch.testing.assert_close(a, b)
    layer = model.layer("auto")[0]
    torch.testing.assert_close(get_method("gradcam").attribute(model, x, ClassTarget(0), layer),
                               get_method("gradcam").attribute(fn, x, ClassTarget(0), layer))


def test_function_scorer_checks_shapes_and_players():
    fn = FunctionScorer(lambda x: x.sum((1, 2, 3)))                  # (B,) reads as (B, 1)
    assert fn.logits(torch.ones(2, 1, 2, 2)).shape == (2, 1)
    with pytest.raises(ValueError, match=r"\(B, K\)"):
        FunctionScorer(lambda x: x.sum()).logits(torch.ones(2, 1, 2, 2))
    with pytest.raises(UsageError, match="3-channel"):
        perturb.players_of(fn, torch.ones(1, 1, 4, 4), 4)
    with pytest.raises(UsageError, match="no layers"):
        fn.layer("auto")
    labels = torch.tensor([[5, 5], [9, 2]])
    got = perturb.players_of(FunctionScorer(lambda x: x.sum((1, 2, 3)), players=labels), torch.ones(1, 1, 2, 2), 4)
    assert torch.equal(got, torch.tensor([[1, 1], [2, 0]]))          # renumbered 0..P-1, order kept


# -- few-shot: one KernelSHAP / occlusion / IG ----------------------------------------------------

def _planted_fewshot():
    import sys

    sys.path.insert(0, str(ROOT / "tests"))
    from test_fewshot import PlantedFewShot, planted_episode

    from vlx.fewshot import prepare

    model = PlantedFewShot()
    q, sup, masks = planted_episode()
    sup[0][4:8, 4:12] = 128                                   # half the key is grey: a non-trivial game
    return model, prepare(model, q, sup, masks)


def test_fewshot_kernelshap_is_the_exact_shapley_value_of_support_tiles():
    from vlx.fewshot.baselines import SupportScorer, _tiles
    from vlx.fewshot.inputs import roi_score

    model, inputs = _planted_fewshot()
    tiles = _tiles(inputs, 2)                                  # 4 tiles per shot, 8 players
    s = SupportScorer(model, inputs, tiles)
    out = s.maps(perturb.KernelSHAP(n_samples=256, baseline="zero").attribute(s, s.x, ClassTarget(0)))
    # The game, straight from the model: a coalition keeps its tiles, the rest of each shot is 0.
    k, h, w = inputs.support.shape[1], *inputs.support.shape[-2:]
    per_shot = tiles.view(k, h, w)

    def value(coalition: frozenset) -> float:
        keep = torch.stack([torch.isin(per_shot[j], torch.tensor(sorted(coalition), dtype=torch.long))
                            for j in range(k)]).float()
        with torch.no_grad():
            o = model.forward(inputs.query, inputs.support * keep[None, :, None], inputs.masks)
        return float(roi_score(o, inputs.roi)[0])

    n = 8
    exact = np.zeros(n)
    import itertools
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            wt = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for sub in itertools.combinations(others, size):
                exact[i] += wt * (value(frozenset(sub) | {i}) - value(frozenset(sub)))
    got = np.array([float(out[per_shot == p][0]) for p in range(n)])
    np.testing.assert_allclose(got, exact, atol=1e-4)
    assert abs(exact).max() > 0.1                              # the test is not vacuous


def test_fewshot_baselines_have_no_algorithm_of_their_own(monkeypatch):
    """They call the vlx.attribute classes (and their source has no solver or sampler)."""
    from vlx.fewshot import explain_support

    src = (ROOT / "vlx/fewshot/baselines.py").read_text()
    for banned in ("linalg", "lstsq", "np.random", "default_rng", "autograd.grad(roi_score(out, inputs.roi).sum(), x)"):
        assert banned not in src, banned
    calls = []
    for cls in (perturb.KernelSHAP, perturb.LIME, perturb.Occlusion):
        orig = cls.reduce
        monkeypatch.setattr(cls, "reduce", lambda self, *a, _o=orig, _c=cls.__name__: calls.append(_c) or _o(self, *a))
    model, inputs = _planted_fewshot()
    for name in ("kernelshap", "lime", "occlusion"):
        explain_support(model, None, [np.zeros((32, 32, 3), np.uint8)] * 2, None, name, inputs=inputs)
    assert calls == ["KernelSHAP", "LIME", "Occlusion"]


# -- MLLM: occlusion over players, every answer token from the same passes -----------------------

def test_mllm_occlusion_is_the_core_occlusion_and_tokens_share_passes(monkeypatch):
    from vlx.mllm.context import AnswerContext
    from vlx.mllm.methods import get_mllm_method
    from vlx.testing.tiny_mllm import PlantedMLLM, planted_image

    ctx = AnswerContext(PlantedMLLM(), planted_image(), "what colour has it?")
    seen = []
    orig = perturb.PerturbationBase.attribute_targets
    monkeypatch.setattr(perturb.PerturbationBase, "attribute_targets",
                        lambda self, *a: seen.append(type(self).__name__) or orig(self, *a))
    both = get_mllm_method("occlusion", n_segments=8).explain(ctx, [0, 1])
    alone = get_mllm_method("occlusion", n_segments=8).explain(ctx, [1])
    assert seen == ["Occlusion", "Occlusion"]
    np.testing.assert_allclose(both[1].values, alone[0].values, atol=1e-6)
    p0 = float(ctx.model.answer_probability(ctx.inputs, 0, ctx.answer_ids[0])[0])
    assert both[0].details["probability"] == pytest.approx(p0, abs=1e-5)
