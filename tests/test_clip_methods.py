"""CLIP zero-shot classification (``clip:hf:<folder>`` + a label set) under every attribution
method, its logits against transformers' own ``CLIPModel``, label targets, contrastive targets,
multi-layer CAMs, and the CLI path."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute.base import attribute, get_method, upsample
from vlx.errors import UsageError
from vlx.image import from_array
from vlx.models import load_classifier
from vlx.models.clip_classifier import parse_labels
from vlx.registry import METHODS
from vlx.testing.tiny_vlm import tiny_clip_folder
from vlx.types import ClassTarget, ContrastTarget

LABELS = "cat,dog,thing"
FAST = {"rise": {"n_masks": 200}, "lime": {"n_samples": 100}, "kernelshap": {"n_samples": 100},
        "smoothgrad": {"n_samples": 4}, "integrated_gradients": {"n_steps": 8}, "xrai": {"n_steps": 4}}
VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return tiny_clip_folder(tmp_path_factory.mktemp("tiny-clip"), vision_layers=3)


@pytest.fixture(scope="module")
def clf(clip_dir):
    return load_classifier(f"clip:hf:{clip_dir}", "cpu", labels=LABELS)


def image(h: int = 32, w: int = 32, seed: int = 0):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
    pix = np.kron(small, np.ones((8, 8, 1)))[:32, :32]
    pix = np.clip(pix + rng.normal(0, 10, pix.shape), 0, 255).astype(np.uint8)
    if (h, w) != (32, 32):
        pix = np.resize(pix, (h, w, 3)).astype(np.uint8)
    return from_array(pix, id=f"img{seed}")


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_runs_on_clip(clf, method):
    img = image(24, 40)
    m = get_method(method, **FAST.get(method, {}))
    amap = attribute(clf, img, ClassTarget(clf.class_index("dog"), "dog"), m)
    assert amap.values.shape == (24, 40)
    assert np.isfinite(amap.values).all()
    if m.needs_layer:
        assert amap.layer == "vision_model.encoder.layers.1"   # input of the last block, picked automatically


def test_labels_and_default_layer(clf):
    assert clf.labels == ["cat", "dog", "thing"]
    assert clf.class_index("dog") == 1
    assert clf.layer("auto")[0] == "vision_model.encoder.layers.1"
    assert clf.layer("encoder.layers.-2")[0] == clf.layer("vision_model.encoder.layers.-2")[0]
    assert clf.predict(image(), k=3).labels[0] in ("cat", "dog", "thing")
    with pytest.raises(UsageError):
        clf.class_index("zebra")


def test_logits_match_transformers(clf, clip_dir):
    from transformers import AutoTokenizer, CLIPModel

    ref = CLIPModel.from_pretrained(str(clip_dir)).eval()
    tok = AutoTokenizer.from_pretrained(str(clip_dir))
    enc = tok([f"a photo of a {lab}." for lab in clf.labels], padding=True, return_tensors="pt")
    x = clf.to_input(image())
    with torch.no_grad():
        want = ref(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], pixel_values=x).logits_per_image
        got = clf.logits(x)
    assert got.shape == (1, 3)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_prompt_template_changes_text_embeddings(clip_dir, clf):
    other = load_classifier(f"clip:hf:{clip_dir}", "cpu", labels=LABELS, prompt_template="{}")
    x = clf.to_input(image())
    with torch.no_grad():
        assert not torch.allclose(other.logits(x), clf.logits(x))
    with pytest.raises(UsageError):
        load_classifier(f"clip:hf:{clip_dir}", "cpu", labels=LABELS, prompt_template="no slot")


def test_label_parsing(tmp_path):
    f = tmp_path / "labels.txt"
    f.write_text("tabby cat\n\n# comment\ngolden retriever\n")
    assert parse_labels(f"@{f}") == ("tabby cat", "golden retriever")
    assert parse_labels(" cat, dog ,car ") == ("cat", "dog", "car")
    with pytest.raises(UsageError):
        load_classifier("clip:hf:/nonexistent", "cpu")             # no labels: refused before loading
    with pytest.raises(UsageError):
        load_classifier("effnet-lite0", "cpu", labels="cat,dog")   # labels on a fixed-label model


def test_contrastive_target_differs_from_pointwise(clf):
    """Planted by linearity: for a gradient method the contrast map is exactly
    map(dog) - map(cat), which differs from map(dog) because cat's gradient is not zero."""
    x = clf.to_input(image())
    dog, cat = clf.class_index("dog"), clf.class_index("cat")
    m = get_method("input_x_gradient")
    a_dog = m.attribute(clf, x, ClassTarget(dog))
    a_cat = m.attribute(clf, x, ClassTarget(cat))
    a_con = m.attribute(clf, x, ContrastTarget(dog, cat))
    torch.testing.assert_close(a_con, a_dog - a_cat, rtol=1e-4, atol=1e-6)
    assert a_cat.abs().max() > 0
    assert not torch.allclose(a_con, a_dog, atol=1e-6)
    g_con = get_method("gradcam").attribute(clf, x, ContrastTarget(dog, cat), "encoder.layers.-2")
    g_dog = get_method("gradcam").attribute(clf, x, ClassTarget(dog), "encoder.layers.-2")
    assert not torch.allclose(g_con, g_dog)


@pytest.mark.parametrize("method", ["gradcam", "layercam", "eigencam", "scorecam"])
def test_multi_layer_cam_is_the_mean(clf, method):
    img = image()                                   # 32×32 = the model input, so no second resize
    x = clf.to_input(img)
    t = ClassTarget(clf.class_index("dog"))
    m = get_method(method)
    layers = ["encoder.layers.-2", "encoder.layers.-3"]
    singles = [upsample(m.attribute(clf, x, t, layer), (32, 32)) for layer in layers]
    both = m.attribute(clf, x, t, ",".join(layers))
    torch.testing.assert_close(both, torch.stack(singles).mean(0))
    amap = attribute(clf, img, t, m, ",".join(layers))
    assert amap.layer == "vision_model.encoder.layers.1,vision_model.encoder.layers.0"
    np.testing.assert_allclose(amap.values, torch.stack(singles).mean(0)[0].numpy(), rtol=1e-5, atol=1e-7)


def _vlx(*args):
    assert VLX, "the vlx console script is not installed"
    return subprocess.run([VLX, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_cli_clip_zero_shot(clip_dir, tmp_path):
    from PIL import Image

    png = tmp_path / "img.png"
    Image.fromarray(image(40, 48).pixels).save(png)
    p = _vlx("explain", png, "--model", f"clip:hf:{clip_dir}", "--labels", "a,b,c", "--target", "b",
             "--layer", "encoder.layers.-2,encoder.layers.-3", "--out", tmp_path / "out", "--json", "-q")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout)
    assert res["target"]["label"] == "b"
    assert [r["label"] for r in res["prediction"]] and set(r["label"] for r in res["prediction"]) <= {"a", "b", "c"}
    assert (tmp_path / "out" / "img" / "report.html").exists()

    p = _vlx("explain", png, "--model", f"clip:hf:{clip_dir}", "--out", tmp_path / "out2")
    lines = p.stderr.strip().splitlines()
    assert p.returncode != 0 and len(lines) == 1 and lines[0].startswith("vlx: error:") and "--labels" in lines[0]
