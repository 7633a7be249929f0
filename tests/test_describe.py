"""Describers: traits measured right on constructed masks, specs parsed in one place, the CLIP
describer and every VLM family end to end on tiny random models saved to folders (the real
``hf:<folder>`` loading path), and ``vlx explain --describer`` through the real entry point."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vlx.describe import TRAIT_RANGES, make_describer, region_traits, traits_phrase
from vlx.describe.clip import ClipDescriber, load_concepts
from vlx.describe.offline import OfflineDescriber
from vlx.describe.traits import hue_name
from vlx.describe.views import masked_crop, outlined, region_view
from vlx.describe.vlm import VlmDescriber
from vlx.errors import ModelNotAvailable, UsageError
from vlx.image import from_array
from vlx.testing import planted_classifier
from vlx.testing.tiny_vlm import VLM_FAMILIES, tiny_clip_folder, tiny_vlm_folder
from vlx.types import Region

H = W = 64


def _region(mask: np.ndarray, rid: int = 0, position: str = "centre") -> Region:
    ys, xs = np.nonzero(mask)
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    return Region(rid, mask, box, float(mask.mean()), 0.5, 0.1, position)


def _disk(cy: int = 32, cx: int = 32, r: int = 20) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _bar() -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[30:33, 4:60] = True
    return m


@pytest.fixture(scope="module")
def scene():
    """Grey left half, noisy red right half, a blue disk at the top."""
    rng = np.random.default_rng(0)
    px = np.full((H, W, 3), 128, np.uint8)
    px[:, 32:] = np.clip(rng.normal([200, 40, 40], 40, (H, 32, 3)), 0, 255).astype(np.uint8)
    px[_disk(12, 16, 8)] = (30, 60, 220)
    return from_array(px, id="scene")


@pytest.fixture(scope="module")
def planted():
    return planted_classifier(size=32)


# ---- traits -------------------------------------------------------------------------------------

def test_thin_bar_is_elongated_and_a_disk_compact(scene):
    bar, disk = region_traits(scene.pixels, _bar()), region_traits(scene.pixels, _disk())
    assert bar["elongation"] > 10 and bar["compactness"] < 0.3
    assert disk["elongation"] < 1.1 and disk["compactness"] > 0.85
    assert traits_phrase(bar).startswith("elongated") and traits_phrase(disk).startswith("compact")
    assert set(bar) == set(TRAIT_RANGES) == set(disk)


def test_flat_patch_has_no_contrast_or_texture_even_beside_an_edge(scene):
    m = np.zeros((H, W), bool)
    m[30:60, 4:32] = True  # grey, touching the noisy red half at x = 32
    t = region_traits(scene.pixels, m)
    assert t["contrast"] == pytest.approx(0.0, abs=1e-6) and t["texture"] == pytest.approx(0.0, abs=1e-6)
    assert t["saturation"] == pytest.approx(0.0, abs=1e-6)
    phrase = traits_phrase(t)
    assert "low-contrast" in phrase and "smooth" in phrase and "muted" in phrase


def test_noisy_patch_is_high_contrast_fine_textured_and_red(scene):
    m = np.zeros((H, W), bool)
    m[8:56, 36:60] = True
    t = region_traits(scene.pixels, m)
    assert t["texture"] > 0.3 and t["contrast"] > 0.1 and t["saturation"] > 0.5
    assert hue_name(t["hue"]) == "red" and "fine texture" in traits_phrase(t)
    blue = region_traits(scene.pixels, _disk(12, 16, 6))
    assert hue_name(blue["hue"]) == "blue" and 215 < blue["hue"] < 235


def test_traits_reject_empty_or_mismatched_masks(scene):
    with pytest.raises(ValueError):
        region_traits(scene.pixels, np.zeros((H, W), bool))
    with pytest.raises(ValueError):
        region_traits(scene.pixels, np.ones((H, W + 1), bool))


def test_offline_describer_stores_and_states_traits(planted, scene):
    regions = [_region(_bar()), _region(_disk(12, 16, 8), 1)]
    descs = OfflineDescriber().describe(planted, scene, regions)
    assert len(descs) == 2
    for d in descs:
        assert set(d.traits) == set(TRAIT_RANGES) and traits_phrase(d.traits) in d.text
        js = json.loads(json.dumps(d.to_json()))
        assert js["traits"]["elongation"] == pytest.approx(d.traits["elongation"])
    assert "elongated" in descs[0].text and descs[1].colors[0] == "blue"


def test_views_crop_and_outline(scene):
    r = _region(_disk(12, 16, 8))
    crop = region_view(scene.pixels, r.mask, r.bbox_xyxy, "crop", margin=0.0)
    assert crop.shape == (17, 17, 3) and np.array_equal(crop, scene.pixels[4:21, 8:25])
    masked = region_view(scene.pixels, r.mask, r.bbox_xyxy, "masked", margin=0.0)
    assert np.array_equal(masked, _masked_oracle(scene.pixels, r.mask, r.bbox_xyxy, 0, 0.2))
    removed = masked_crop(scene.pixels, r.mask, r.bbox_xyxy, margin=0.0, dim=0.0)
    assert (removed[~r.mask[4:21, 8:25]] == 0).all() and np.array_equal(removed[8, 8], scene.pixels[12, 16])
    with pytest.raises(ValueError, match="unknown region view"):
        region_view(scene.pixels, r.mask, r.bbox_xyxy, "blurred")
    full = region_view(scene.pixels, r.mask, r.bbox_xyxy, "outline")
    assert full.shape == scene.pixels.shape and (full != scene.pixels).any()
    assert (outlined(scene.pixels, r.mask)[r.mask] == scene.pixels[r.mask]).mean() > 0.5  # inside mostly kept


# ---- specs --------------------------------------------------------------------------------------

def test_specs_are_parsed_in_one_place():
    assert isinstance(make_describer("offline"), OfflineDescriber)
    assert make_describer(None) is None and make_describer("none") is None
    for bad, needle in [("fancy", "unknown describer"), ("foo:hf:x", "unknown describer"),
                        ("clip", "needs a model"), ("vlm", "needs a model"), ("vlm:./folder", "hf:"),
                        ("clip:hf:", "hf:")]:
        with pytest.raises(UsageError, match=needle) as e:
            make_describer(bad)
        assert "\n" not in str(e.value)


def test_missing_model_folder_is_one_line(tmp_path):
    with pytest.raises(ModelNotAvailable) as e:
        make_describer(f"vlm:hf:{tmp_path / 'missing'}", "cpu")
    assert "no such local folder" in str(e.value)


# ---- CLIP ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_clip_dir(tmp_path_factory):
    return tiny_clip_folder(tmp_path_factory.mktemp("tiny-clip"))


def test_default_concept_vocabulary():
    concepts = load_concepts()
    assert 80 <= len(concepts) <= 150 and len(set(concepts)) == len(concepts)
    assert {"fur", "eye", "wheel", "metal", "stripes", "red"} <= set(concepts)


def test_clip_describer_end_to_end(tiny_clip_dir, planted, scene):
    d = make_describer(f"clip:hf:{tiny_clip_dir}", "cpu", top_k=4)
    assert isinstance(d, ClipDescriber) and d.name.startswith("clip:hf:")
    regions = [_region(_bar()), _region(_disk(), 1), _region(_disk(12, 16, 8), 2)]
    p = d.scores(scene, regions)
    assert p.shape == (3, len(d.concepts)) and p.dtype == np.float32
    assert np.allclose(p.sum(1), 1.0, atol=1e-5) and (p >= 0).all() and (p <= 1).all()
    descs = d.describe(planted, scene, regions)
    for row, desc in zip(p, descs):
        assert len(desc.labels) == 4 and set(desc.labels) <= set(d.concepts)
        assert desc.labels[0] == d.concepts[int(row.argmax())]
        assert list(desc.label_scores) == sorted(desc.label_scores, reverse=True)
        assert desc.label_scores[0] == pytest.approx(float(row.max()))
        assert desc.labels[0] in desc.text and set(desc.traits) == set(TRAIT_RANGES)
    assert not np.allclose(p[0], p[2])  # different crops, different scores


def test_clip_describer_custom_vocabulary(tiny_clip_dir, planted, scene, tmp_path):
    vocab = tmp_path / "v.txt"
    vocab.write_text("# mine\nfur\n\nwheel\nfur\n")
    d = ClipDescriber(f"hf:{tiny_clip_dir}", "cpu", concepts=vocab, top_k=5)
    assert d.concepts == ("fur", "wheel") and d.top_k == 2
    assert d.scores(scene, [_region(_disk())]).shape == (1, 2)


# ---- VLMs ---------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def vlm_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-vlm")
    return {f: tiny_vlm_folder(f, root / f) for f in VLM_FAMILIES}


def _vision_module(model: torch.nn.Module) -> torch.nn.Module:
    for name, mod in model.named_modules():
        if name.split(".")[-1] in ("vision_model", "vision_tower", "visual"):
            return mod
    raise AssertionError("no vision tower found")


def _spy(d: VlmDescriber) -> tuple[dict, object]:
    """Record the image and prompt the VLM gets, the token ids it is fed, and the tensor its vision
    tower sees; returns (record, hook handle)."""
    seen: dict = {}

    def hook(module, args, kwargs):
        seen.setdefault("pixels", args[0] if args else next(iter(kwargs.values())))

    handle = _vision_module(d.vlm.model).register_forward_pre_hook(hook, with_kwargs=True)
    original = d.vlm.inputs

    def spy(image, prompt):
        seen["image"], seen["prompt"] = image, prompt
        enc = original(image, prompt)
        seen["ids"] = enc["input_ids"]
        return enc

    d.vlm.inputs = spy
    return seen, handle


def _masked_oracle(pixels: np.ndarray, mask: np.ndarray, box: tuple, margin_px: int, dim: float) -> np.ndarray:
    x0, y0, x1, y1 = box
    x0, y0, x1, y1 = x0 - margin_px, y0 - margin_px, x1 + margin_px, y1 + margin_px
    crop = pixels[y0:y1, x0:x1].astype(np.float64)
    inside = mask[y0:y1, x0:x1]
    out = np.where(inside[..., None], crop, np.round(crop * dim))
    return out.astype(np.uint8)


@pytest.mark.parametrize("family", VLM_FAMILIES)
@pytest.mark.parametrize("view", ["masked", "crop", "outline"])
def test_vlm_describer_end_to_end(family, view, vlm_dirs, planted, scene):
    spec = f"vlm{'-outline' if view == 'outline' else ''}:hf:{vlm_dirs[family]}"
    d = make_describer(spec, "cpu", max_new_tokens=4, **({"view": "crop"} if view == "crop" else {}))
    assert isinstance(d, VlmDescriber) and d.view == view and d.vlm.family == family and not d.name_class
    seen, handle = _spy(d)
    region = _region(_disk(12, 16, 8), position="top-left")
    try:
        (desc,) = d.describe(planted, scene, [region], label="tabby cat")
    finally:
        handle.remove()
    assert isinstance(desc.text, str) and desc.source == d.name and set(desc.traits) == set(TRAIT_RANGES)
    # by default the class is NOT named: not in the prompt, not in the tokens the VLM reads
    assert "tabby" not in seen["prompt"] and "tabby" not in d.vlm.processor.tokenizer.decode(seen["ids"][0])
    assert isinstance(seen["pixels"], torch.Tensor) and seen["pixels"].is_floating_point()  # the image goes in
    if view == "masked":   # the disk's 17 px box grown by 10% (1 px) a side; outside the disk dimmed to 20%
        want = _masked_oracle(scene.pixels, region.mask, region.bbox_xyxy, 1, 0.2)
        assert seen["image"].shape == (19, 19, 3) and np.array_equal(seen["image"], want)
        corner = seen["image"][0, 0].astype(int)                 # outside the disk: dimmed
        assert (corner * 4 < scene.pixels[3, 7].astype(int) + 3).all()
        assert np.array_equal(seen["image"][9, 9], scene.pixels[12, 16])   # the disk's centre: unchanged
    elif view == "crop":
        assert np.array_equal(seen["image"], scene.pixels[3:22, 7:26])
    else:
        assert seen["image"].shape == scene.pixels.shape
    if not d.vlm.captioner:
        if view == "outline":
            assert "outlined in red" in seen["prompt"] and "top-left" in seen["prompt"]
        if view == "masked":
            assert "dimmed" in seen["prompt"] and "top-left" in seen["prompt"]


@pytest.mark.parametrize("family", ["llava", "blip"])
def test_vlm_class_option_names_the_class(family, vlm_dirs, planted, scene):
    d = make_describer(f"vlm-class:hf:{vlm_dirs[family]}", "cpu", max_new_tokens=2)
    assert d.name_class and d.view == "masked"
    seen, handle = _spy(d)
    try:
        d.describe(planted, scene, [_region(_disk(12, 16, 8))], label="tabby cat")
    finally:
        handle.remove()
    assert "tabby cat" in seen["prompt"] and "tabby cat" in d.vlm.processor.tokenizer.decode(seen["ids"][0])
    plain = VlmDescriber(d.vlm)
    assert "tabby" not in plain.prompt("tabby cat", _region(_disk())) and "tabby cat" in d.prompt("tabby cat")


def test_vlm_default_label_is_the_classifiers_top_class(vlm_dirs, planted, scene):
    d = make_describer(f"vlm-class:hf:{vlm_dirs['llava']}", "cpu", max_new_tokens=2)
    prompts = []
    d.prompt = lambda label, region=None: prompts.append(label) or "describe"
    d.describe(planted, scene, [_region(_disk())])
    top = int(planted.probabilities(planted.to_input(scene))[0].argmax())
    assert prompts == [planted.short_label(top)]


def test_vlm_unknown_options_are_errors(vlm_dirs):
    with pytest.raises(UsageError, match="unknown region view"):
        make_describer(f"vlm:hf:{vlm_dirs['llava']}", "cpu", view="blurred")
    with pytest.raises(UsageError, match="name_class"):
        make_describer(f"vlm:hf:{vlm_dirs['llava']}", "cpu", name_class="yes")
    with pytest.raises(TypeError, match="colour"):
        make_describer(f"vlm:hf:{vlm_dirs['llava']}", "cpu", colour="red")


def test_vlm_rejects_a_non_vlm_folder(tiny_clip_dir):
    with pytest.raises(UsageError, match="not|supports"):
        make_describer(f"vlm:hf:{tiny_clip_dir}", "cpu")


# ---- CLI ----------------------------------------------------------------------------------------

VLX = shutil.which("vlx", path=str(Path(sys.executable).parent)) or shutil.which("vlx")


def test_cli_explain_with_a_vlm_describer(vlm_dirs, tiny_vit_dir, tmp_path):
    img = tmp_path / "scene.png"
    from PIL import Image

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(img)
    p = subprocess.run([VLX, "explain", str(img), "--model", f"hf:{tiny_vit_dir}", "--out", str(tmp_path / "o"),
                        "--describer", f"vlm:hf:{vlm_dirs['blip']}", "--json", "-q"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    regions = json.loads(p.stdout)["regions"]
    assert regions and all(r["description"]["source"].startswith("vlm:hf:") for r in regions)
    assert all(isinstance(r["description"]["text"], str) and r["description"]["traits"] for r in regions)


def test_cli_bad_describer_is_one_line(tiny_vit_dir, tmp_path, capsys):
    from PIL import Image

    from vlx.cli import main

    img = tmp_path / "s.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(img)
    with pytest.raises(SystemExit) as e:
        main(["explain", str(img), "--model", f"hf:{tiny_vit_dir}", "--describer", "gpt:x"])
    lines = [l for l in capsys.readouterr().err.splitlines() if l.strip()]
    assert e.value.code == 2 and len(lines) == 1 and "unknown describer" in lines[0]
