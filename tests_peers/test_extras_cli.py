"""The optional extras for real, through ``vlx explain`` as a user runs it: ``timm:`` and
``torchvision:`` classifiers and an ``open_clip:`` zero-shot model with random weights saved to a
file, each with a CAM (default layer picked automatically), a gradient and a perturbation
method; and ``sam:vit_b=<checkpoint>`` (segment-anything's own ``sam_model_registry["vit_b"]``,
random weights) as the region segmenter. Nothing is downloaded (``HF_HUB_OFFLINE=1``; every
loader is handed a local file)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "images" / "chelsea.png"
METHODS = ("gradcam", "saliency", "occlusion")


def vlx(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", "import sys; from vlx.cli import main; sys.exit(main())",
                           *map(str, args)], capture_output=True, text=True, env=env, timeout=900)


def explain(tmp: Path, model: str, method: str, *extra: str) -> tuple[dict, np.ndarray]:
    out = tmp / f"out-{method}"
    p = vlx("explain", str(EXAMPLE), "--model", model, "--method", method, "--out", str(out), "--device", "cpu",
            "--describer", "none", *extra)
    assert p.returncode == 0, p.stderr
    folder = out / EXAMPLE.stem
    return json.loads((folder / "explanation.json").read_text()), np.load(folder / "map.npy")


def check_map(values: np.ndarray, doc: dict, method: str) -> None:
    assert values.shape == (doc["image"]["height"], doc["image"]["width"])
    assert np.isfinite(values).all()
    assert np.abs(values).max() > 0, f"{method}: all-zero map"
    if method == "gradcam":
        assert doc["layer"], "a CAM must report the layer it used"
    else:
        assert doc["layer"] is None


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Random-weight checkpoints, one file per model, as users pass them."""
    import open_clip
    import timm
    import torchvision

    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    files = {}
    for name in ("resnet18", "vit_tiny_patch16_224"):
        files[f"timm:{name}"] = d / f"{name}.pth"
        torch.save(timm.create_model(name, pretrained=False).state_dict(), files[f"timm:{name}"])
    files["torchvision:mobilenet_v3_small"] = d / "mobilenet_v3_small.pth"
    torch.save(torchvision.models.get_model("mobilenet_v3_small", weights=None).state_dict(),
               files["torchvision:mobilenet_v3_small"])
    files["open_clip:ViT-S-32"] = d / "vit_s_32.pt"
    torch.save(open_clip.create_model("ViT-S-32", pretrained=None).state_dict(), files["open_clip:ViT-S-32"])
    return files


@pytest.mark.slow
@pytest.mark.parametrize("spec,layer_prefix", [("timm:resnet18", "layer4"), ("timm:vit_tiny_patch16_224", "blocks."),
                                               ("torchvision:mobilenet_v3_small", "features"),
                                               ("open_clip:ViT-S-32", "visual.transformer.resblocks.")])
def test_extra_classifier_through_the_cli(weights, tmp_path, spec, layer_prefix):
    model = f"{spec}={weights[spec]}"
    extra = ("--labels", "cat,dog,car") if spec.startswith("open_clip:") else ()
    for method in METHODS:
        doc, values = explain(tmp_path, model, method, *extra)
        assert doc["model"]["name"] if isinstance(doc["model"], dict) else doc["model"]
        check_map(values, doc, method)
        if method == "gradcam":
            assert doc["layer"].startswith(layer_prefix), doc["layer"]


@pytest.fixture(scope="module")
def sam_checkpoint(tmp_path_factory):
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("sam") / "sam_vit_b_random.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), path)
    return path


@pytest.mark.slow
def test_segment_anything_vit_b_as_segmenter_through_the_cli(sam_checkpoint, tmp_path):
    doc, values = explain(tmp_path, "effnet-lite0", "gradcam", "--segmenter", f"sam:vit_b={sam_checkpoint}")
    check_map(values, doc, "gradcam")
    assert doc["regions"], "SAM cut no region"
    h, w = doc["image"]["height"], doc["image"]["width"]
    for r in doc["regions"]:
        x0, y0, x1, y1 = r["bbox_xyxy"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


def test_sam_segmenter_predicts_masks_at_image_resolution(sam_checkpoint):
    """The adapter straight: boxes and points prompts give masks of the image's size."""
    from vlx.models.segmenter import SegmentAnythingSam, load_segmenter

    seg = load_segmenter(f"sam:vit_b={sam_checkpoint}", "cpu")
    assert isinstance(seg, SegmentAnythingSam)
    pixels = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    seg.set_image(pixels)
    seg.set_image(pixels.copy())
    assert seg.encoder_calls == 1
    pred = seg.predict(np.array([[[80.0, 60.0]]]), np.array([[1]]))
    assert pred.masks.shape[-2:] == (120, 160)
    assert pred.iou.shape == pred.stability.shape == pred.masks.shape[:2]
    pred = seg.predict(None, None, boxes=np.array([[20.0, 10.0, 100.0, 90.0]]))
    assert pred.masks.shape[-2:] == (120, 160)


def test_sam_segmenter_honours_min_quality(sam_checkpoint):
    """Candidates below the quality thresholds come back empty (segment-anything's adapter used to
    ignore ``min_quality`` and return them all)."""
    from vlx.models.segmenter import load_segmenter

    seg = load_segmenter(f"sam:vit_b={sam_checkpoint}", "cpu")
    pixels = np.random.default_rng(1).integers(0, 255, (64, 96, 3), dtype=np.uint8)
    seg.set_image(pixels)
    pts, lab = np.array([[[40.0, 30.0]]]), np.array([[1]])
    everything = seg.predict(pts, lab)
    assert everything.masks.any()
    assert not seg.predict(pts, lab, min_quality=(2.0, 0.0)).masks.any()     # IoU never reaches 2
    thr = float(np.median(everything.iou))
    some = seg.predict(pts, lab, min_quality=(thr, 0.0))
    for k in range(some.masks.shape[1]):
        assert some.masks[0, k].any() == (everything.iou[0, k] >= thr and everything.masks[0, k].any())
