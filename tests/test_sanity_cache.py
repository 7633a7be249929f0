"""The cached sanity check (vlx.evaluate.sanity_cache): the weights' fingerprint against hashlib
over the state dict by hand (bfloat16 included), the cache key against its documented description,
every part of the key changing it, and the stored file's content, place and reuse."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

import vlx
import vlx.attribute
from vlx.attribute import attribute, get_method
from vlx.evaluate.sanity import ModelRandomisation
from vlx.evaluate.sanity_cache import REPEATS, THRESHOLD, cached_sanity, sanity_key, weights_fingerprint
from vlx.image import from_array
from vlx.testing.planted import planted_classifier
from vlx.types import ClassTarget, MetricResult


def test_fingerprint_hashes_names_and_bytes_in_state_dict_order() -> None:
    m = torch.nn.Module()
    m.a = torch.nn.Parameter(torch.tensor([1.5, -2.0], dtype=torch.float64))
    m.register_buffer("b", torch.tensor([0.25, 3.0], dtype=torch.bfloat16))
    m.c = torch.nn.Parameter(torch.arange(6, dtype=torch.float32).reshape(2, 3).t())   # not contiguous
    h = hashlib.sha1()
    h.update(b"a")
    h.update(np.array([1.5, -2.0], np.float64).tobytes())
    h.update(b"c")
    h.update(np.arange(6, dtype=np.float32).reshape(2, 3).T.copy().tobytes())
    h.update(b"b")
    h.update(np.array([0.25, 3.0], np.float32).tobytes())      # bfloat16 is hashed as its float32 values
    assert list(m.state_dict()) == ["a", "c", "b"]
    assert weights_fingerprint(m) == h.hexdigest()


@pytest.fixture(scope="module")
def model():
    return planted_classifier("top-left", size=32)


def test_key_is_the_sha1_of_the_documented_description(model) -> None:
    desc = {"model": model.name, "weights": weights_fingerprint(model.module), "method": "gradcam",
            "options": [["layer", "'features'"], ["relu", "True"]], "layer": "features", "repeats": 3,
            "threshold": 0.5, "seed": 0, "vlx": vlx.__version__}
    want = hashlib.sha1(json.dumps(desc, sort_keys=True).encode()).hexdigest()
    assert sanity_key(model, "gradcam", {"relu": True, "layer": "features"}, "features") == want
    assert (REPEATS, THRESHOLD) == (3, 0.5)


def test_every_part_of_the_description_changes_the_key(model) -> None:
    base = dict(method="gradcam", options={"relu": True}, layer="x", repeats=3, threshold=0.5, seed=0)

    def key(**change):
        a = {**base, **change}
        return sanity_key(model, a["method"], a["options"], a["layer"], a["repeats"], a["threshold"], a["seed"])

    keys = [key(), key(method="layercam"), key(options={"relu": False}), key(layer="y"), key(repeats=2),
            key(threshold=0.4), key(seed=1),
            sanity_key(planted_classifier("top-left", size=32, seed=1), "gradcam", {"relu": True}, "x")]
    assert len(set(keys)) == len(keys)
    assert sanity_key(model, "gradcam", {"relu": True}, "x") == key()          # the defaults are 3, 0.5, 0


def test_computed_then_read_back(model, tmp_path, monkeypatch) -> None:
    img = from_array(np.random.default_rng(2).integers(0, 256, (32, 32, 3), dtype=np.uint8), id="noise")
    amap = attribute(model, img, ClassTarget(0, "class 0"), "gradcam")
    method = get_method("saliency")                             # not the map's own method
    calls = []
    real = vlx.attribute.attribute
    monkeypatch.setattr(vlx.attribute, "attribute", lambda *a, **k: calls.append(1) or real(*a, **k))
    folder = tmp_path / "a" / "b"
    got = cached_sanity(model, img, amap, method, {}, 0, repeats=2, threshold=0.3, seed=4, folder=folder)
    assert len(calls) == 2                                      # the fully randomised model only, once per repeat
    monkeypatch.setattr(vlx.attribute, "attribute", real)
    ref = ModelRandomisation(method=get_method("saliency"), every=10**9, threshold=0.3, repeats=2, seed=4)(
        model, img, amap, 0)
    runs = [float(c[-1]) for c in ref.details["spearman_runs"]]
    details = {"passed": bool(ref.value < 0.3), "threshold": 0.3, "repeats": 2, "image": "noise", "spearman_runs": runs}
    assert got == MetricResult("sanity", pytest.approx(ref.value), False, "sanity", {**details, "cached": False})
    key = sanity_key(model, "saliency", {}, amap.layer, 2, 0.3, 4)
    assert sorted(p.name for p in folder.iterdir()) == [key + ".json"]          # no temporary file left
    stored = json.loads((folder / (key + ".json")).read_text())
    assert stored == {"model": model.name, "method": "saliency", "layer": amap.layer, "value": pytest.approx(ref.value),
                      "details": details}
    again = cached_sanity(model, img, amap, method, {}, 0, repeats=2, threshold=0.3, seed=4, folder=folder)
    assert again == MetricResult("sanity", pytest.approx(ref.value), False, "sanity", {**details, "cached": True})
    other = cached_sanity(model, img, amap, method, {}, 0, repeats=1, threshold=0.3, seed=4, folder=folder)
    assert other.details["cached"] is False and len(list(folder.iterdir())) == 2


def test_verdict_uses_the_given_threshold_and_the_write_is_atomic(model, tmp_path, monkeypatch) -> None:
    """Spearman lies in [-1, 1], so a threshold above 1 always passes and one below -1 never does;
    the file is written next to its final name and moved into place (one filesystem, atomic)."""
    import os

    img = from_array(np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8), id="n3")
    amap = attribute(model, img, ClassTarget(0, "class 0"), "gradcam")
    moves = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: moves.append((str(a), str(b))) or real_replace(a, b))
    yes = cached_sanity(model, img, amap, get_method("gradcam"), {}, 0, repeats=1, threshold=1.01, folder=tmp_path)
    no = cached_sanity(model, img, amap, get_method("gradcam"), {}, 0, repeats=1, threshold=-1.01, folder=tmp_path)
    assert yes.details["passed"] is True and no.details["passed"] is False
    assert len(moves) == 2 and all(os.path.dirname(a) == os.path.dirname(b) == str(tmp_path) for a, b in moves)


def test_one_attribution_per_repeat_on_a_deep_model(tmp_path, monkeypatch) -> None:
    """Only the fully randomised model is explained, however many layers the model has (here 120)."""
    from vlx.models.classifier import ImageClassifier, Preprocess

    layers = [torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)] + [torch.nn.Linear(4, 4) for _ in range(119)]
    deep = ImageClassifier(torch.nn.Sequential(*layers), "deep", "Deep", ["a", "b", "c", "d"],
                           Preprocess(size=(8, 8), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)), torch.device("cpu"))
    img = from_array(np.random.default_rng(4).integers(0, 256, (8, 8, 3), dtype=np.uint8), id="d")
    amap = attribute(deep, img, ClassTarget(0, "a"), "saliency")
    calls = []
    real = vlx.attribute.attribute
    monkeypatch.setattr(vlx.attribute, "attribute", lambda *a, **k: calls.append(1) or real(*a, **k))
    cached_sanity(deep, img, amap, get_method("saliency"), {}, 0, repeats=2, folder=tmp_path)
    assert len(calls) == 2
