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


pytestmark = pytest.mark.usefixtures("one_thread")     # see tests/conftest.py


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


# -- the contract in vlx.attribute.base -----------------------------------------------------------

def test_function_scorer_messages_defaults_and_layers():
    from torch import nn

    from vlx.attribute import base

    fn = FunctionScorer(lambda x: x.flatten(1)[:, :3])
    assert fn.batch_size == 8 and type(FunctionScorer(lambda x: x, batch_size=4.0).batch_size) is int
    with pytest.raises(ValueError, match=r"^a score function must return \(B, K\) scores for B=2 inputs, got \(1, 3\)$"):
        FunctionScorer(lambda x: x.flatten(1)[:1, :3]).logits(torch.ones(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r"got \(2, 2, 2\)$"):
        FunctionScorer(lambda x: x[:, 0]).logits(torch.ones(2, 1, 2, 2))
    assert fn.logits(torch.ones(2, 1, 2, 2)).shape == (2, 3)
    with pytest.raises(UsageError, match=r"^this score function has no layers; layer methods \(CAMs\) need FunctionScorer\(layers=\.\.\.\)$"):
        fn.layer()
    a, b = nn.Linear(1, 1), nn.Linear(1, 1)
    d = FunctionScorer(lambda x: x, layers={"a": a, "b": b})
    for spec in (None, "", "auto"):
        assert d.layer(spec) == ("a", a)
    assert d.layer("b") == ("b", b)
    with pytest.raises(UsageError, match=r"^unknown layer 'c'; choose one of: a, b\.$"):
        d.layer("c")
    seq = nn.Sequential(a, nn.Sequential(b))
    m = FunctionScorer(lambda x: x, layers=seq)
    assert m.layer("1.0")[1] is b
    for spec in (None, "", "auto"):
        with pytest.raises(UsageError, match=r"^name the layer to explain \(this score function has no default layer\)$"):
            m.layer(spec)
    assert base.AttributionMethod.needs_gradients and not base.AttributionMethod.needs_layer
    assert not base.AttributionMethod.signed and base.AttributionMethod.name == ""
    with pytest.raises(NotImplementedError):
        base.AttributionMethod().attribute(fn, torch.ones(1, 1, 2, 2), ClassTarget(0))


def test_function_scorer_players_tensor_callable_and_slic_of_the_rescaled_image():
    from vlx.regions.superpixels import slic_segments

    labels = torch.tensor([[0, 1], [1, 0]])
    assert FunctionScorer(lambda x: x, players=labels).players(torch.ones(1, 3, 2, 2), 4) is labels
    seen = []
    cb = FunctionScorer(lambda x: x, players=lambda x, n: seen.append(n) or torch.zeros(2, 2, dtype=torch.long))
    assert cb.players(torch.ones(1, 3, 2, 2), 7).shape == (2, 2) and seen == [7]
    with pytest.raises(UsageError, match=r"^superpixel players need 3-channel inputs; pass FunctionScorer\(players=\.\.\.\)$"):
        FunctionScorer(lambda x: x).players(torch.ones(1, 1, 4, 4), 4)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(1, 3, 24, 20, generator=g) * 4 - 3                   # any range: rescaled to [0, 255]
    v = x[0].double().numpy()
    px = np.round((v - v.min()) / (v.max() - v.min()) * 255).astype(np.uint8).transpose(1, 2, 0)
    got = FunctionScorer(lambda x: x).players(x, 6)
    assert got.dtype == torch.int64
    np.testing.assert_array_equal(got.numpy(), slic_segments(px, 6))


def test_function_scorer_hands_slic_the_image_rescaled_to_uint8_and_players_follow_the_input(monkeypatch):
    from torch import nn

    from vlx.regions import superpixels

    seen = {}

    def fake_slic(px, n):
        seen["px"], seen["n"] = px, n
        return np.arange(px.shape[0] * px.shape[1], dtype=np.int32).reshape(px.shape[:2])

    monkeypatch.setattr(superpixels, "slic_segments", fake_slic)
    # range 0.5 (below 1) from -0.2 (negative): x = -0.2 + s / 510 is rescaled to exactly s, as uint8 (H, W, C)
    s = np.array([[[0, 153], [255, 102]], [[37, 12], [200, 229]], [[180, 64], [91, 7]]])
    x = torch.tensor(-0.2 + s / 510, dtype=torch.float32)[None]
    want = s.astype(np.uint8).transpose(1, 2, 0)
    got = FunctionScorer(lambda x: x).players(x, 5)
    assert seen["n"] == 5 and seen["px"].dtype == np.uint8 and seen["px"].shape == (2, 2, 3)
    np.testing.assert_array_equal(seen["px"], want)
    assert got.dtype == torch.int64 and got.tolist() == [[0, 1], [2, 3]]
    # fixed players move to the input's device; a callable gets the input itself
    labels = torch.tensor([[0, 1], [1, 0]])
    meta = torch.empty(1, 3, 2, 2, device="meta")
    assert FunctionScorer(lambda x: x, players=labels).players(meta, 4).device == meta.device
    cb = FunctionScorer(lambda x, n: x, players=lambda x, n: (x[0, 0] > n).long())
    assert cb.players(torch.tensor([[[[1.0, 5.0], [3.0, 0.0]]]]), 2).tolist() == [[0, 1], [1, 0]]
    # layer() with no spec is the first named layer
    a, b = nn.Linear(1, 1), nn.Linear(1, 1)
    assert FunctionScorer(lambda x: x, layers={"a": a, "b": b}).layer() == ("a", a)


def test_a_method_class_names_itself_in_an_unknown_option_error():
    with pytest.raises(UsageError, match=r"^method 'kernelshap' has no option 'n_segment'\. Did you mean n_segments\?"):
        perturb.KernelSHAP(n_segment=8)
    with pytest.raises(UsageError, match=r"^method 'occlusion' has no option 'windw'\."):
        perturb.Occlusion(windw=3)


def test_layer_names_resolve_layers_and_upsample():
    from vlx.attribute.base import layer_names, resolve_layers, upsample

    assert layer_names(None) == [] and layer_names("") == [] and layer_names(" a , ,b,") == ["a", "b"]

    class M:
        method_layers = {"fusedcam": "x,y"}

        def layer(self, spec):
            return ("L" + spec, None)

    assert resolve_layers(M(), None) == "Lauto" and resolve_layers(M(), "auto", "gradcam") == "Lauto"
    for spec in (None, "", "auto"):
        assert resolve_layers(M(), spec, "fusedcam") == "Lx,Ly"
    assert resolve_layers(M(), "p, q", "fusedcam") == "Lp,Lq"
    assert resolve_layers(object.__new__(type("N", (), {"layer": M.layer})), None, "fusedcam") == "Lauto"
    m = torch.tensor([[[0.0, 4.0], [8.0, 12.0]]], dtype=torch.float64)
    assert upsample(m, (2, 2)) is m
    # bilinear, half-pixel centres (align_corners=False): 1-D [a, b] -> [a, (3a+b)/4, (a+3b)/4, b]
    r = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    got = upsample(m, (4, 4))
    assert got.dtype == torch.float32 and got.shape == (1, 4, 4)
    np.testing.assert_allclose(got[0].numpy(), r @ m[0].numpy() @ r.T, atol=1e-6)


def test_attribute_fills_the_map_from_the_method_and_the_model(monkeypatch):
    from vlx.attribute import base
    from vlx.attribute.base import AttributionMethod, attribute
    from vlx.types import ImageInput

    class Model:
        method_layers = {"planted": "deep"}

        def layer(self, spec):
            return ("blocks." + spec, None)

        def to_input(self, image):
            self.image = image
            return torch.full((1, 1, 2, 2), 4.0)

    class Planted(AttributionMethod):
        name, needs_layer, signed = "planted", True, True

        def attribute(self, model, x, target, layer=None):
            assert isinstance(model, Model) and model.image is image and target == ClassTarget(2)
            torch.testing.assert_close(x, torch.full((1, 1, 2, 2), 4.0))
            self.seen = layer
            self.last_info = [{"max_samples": 9, "stderr": np.float64(0.5), "n": 3, "sampler": "sobol"}]
            return torch.tensor([[[-1.0, 3.0], [5.0, 7.0]]], dtype=torch.float64, requires_grad=True) * 1

    image = ImageInput(np.zeros((4, 4, 3), np.uint8))
    meth = Planted()
    clock = iter([10.0, 12.5])                                        # the call starts at 10 s, ends at 12.5 s
    monkeypatch.setattr(base, "time", type("Clock", (), {"perf_counter": staticmethod(lambda: next(clock))}))
    amap = attribute(Model(), image, ClassTarget(2), meth)
    assert amap.seconds == 2.5
    monkeypatch.undo()
    assert meth.seen == "blocks.deep" and amap.layer == "blocks.deep" and amap.method == "planted"
    assert amap.signed is True and amap.target == ClassTarget(2)
    assert amap.raw.dtype == np.float32 and amap.values.dtype == np.float32 and amap.values.shape == (4, 4)
    np.testing.assert_array_equal(amap.raw, [[-1, 3], [5, 7]])
    r = np.array([[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    np.testing.assert_allclose(amap.values, r @ amap.raw @ r.T, atol=1e-6)
    assert amap.sampling == {"max_samples": 9, "stderr": 0.5, "n": 3, "sampler": "sobol"}
    assert type(amap.sampling["stderr"]) is float and type(amap.sampling["n"]) is int      # only floats converted
    amap = attribute(Model(), image, ClassTarget(2), meth, layer="x")
    assert amap.layer == "blocks.x"
    Planted.needs_layer = False
    assert attribute(Model(), image, ClassTarget(2), meth, layer="x").layer is None and meth.seen is None
    meth.last_info = [{"n": 1}]
    from vlx.attribute.base import sampling_info
    assert sampling_info(meth) == {} and sampling_info(Planted()) == {}
    meth.last_info = []
    assert sampling_info(meth) == {}
    names = []
    monkeypatch.setattr(base, "get_method", lambda name: names.append(name) or meth)
    attribute(Model(), image, ClassTarget(2))
    attribute(Model(), image, ClassTarget(2), "planted")
    assert names == ["gradcam", "planted"]                      # a name is looked up; Grad-CAM by default
