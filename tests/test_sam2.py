"""SAM 2 behind the same promptable-segmenter interface: a tiny random ``Sam2Model`` built from
a config and saved to a folder runs the whole region path (``make_segmenter("hf:<folder>")``),
encodes each image once however many prompts follow, and returns masks at image resolution.
Skipped where the installed transformers has no SAM 2."""

from __future__ import annotations

import numpy as np
import pytest

from vlx.image import from_array
from vlx.types import AttributionMap, ClassTarget

pytest.importorskip("transformers")
try:
    from transformers import Sam2Model  # noqa: F401
except ImportError:  # pragma: no cover - older transformers
    pytest.skip("this transformers has no SAM 2 (Sam2Model)", allow_module_level=True)


@pytest.fixture(scope="module")
def tiny_sam2_dir(tmp_path_factory):
    from vlx.testing.tiny_sam import tiny_sam2_folder

    return tiny_sam2_folder(tmp_path_factory.mktemp("tiny-sam2"))


def planted_map(h: int = 120, w: int = 160, box=(40, 30, 100, 80)) -> AttributionMap:
    v = np.zeros((h, w), np.float32)
    x0, y0, x1, y1 = box
    v[y0:y1, x0:x1] = 1.0
    v[y0 + 10:y0 + 20, x0 + 10:x0 + 20] = 2.0
    v[y1 - 20:y1 - 10, x1 - 20:x1 - 10] = 2.0
    return AttributionMap(v, v, "planted", ClassTarget(0))


def test_tiny_sam2_loads_as_sam2(tiny_sam2_dir):
    from vlx.models.segmenter import HFSam2, load_segmenter

    seg = load_segmenter(f"hf:{tiny_sam2_dir}")
    assert isinstance(seg, HFSam2) and seg.longest == 64 and seg.model.config.model_type == "sam2"


def test_tiny_sam2_whole_region_path_encodes_once(tiny_sam2_dir):
    from vlx.regions import make_segmenter
    from vlx.regions.refine import Refiner
    from vlx.regions.sam import SamRegions

    amap = planted_map()
    rng = np.random.default_rng(0)
    image = from_array(rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    seg = make_segmenter(f"hf:{tiny_sam2_dir}", coverage=0.9, pred_iou_thresh=0.0, stability_thresh=0.0,
                         points_per_side=4)
    assert isinstance(seg, SamRegions)
    calls = []
    seg.segmenter.model.vision_encoder.register_forward_hook(lambda *a: calls.append(1))
    masks, q = seg.candidates(image, amap)
    assert masks.dtype == bool and masks.shape == (4, 120, 160) and q.shape == (4,)   # 2 peaks, both, box
    assert np.all((q > 0.5) & (q < 1.0))
    regions = seg.regions(image, amap)
    auto, auto_q = seg.automatic(image)
    assert auto.shape[1:] == (120, 160) and len(auto) == len(auto_q) >= 1
    refined = Refiner("sam", sam=seg).refine(image, amap)
    assert refined.values.sum() == pytest.approx(amap.values.sum(), rel=1e-4)
    assert len(calls) == 1 and seg.segmenter.encoder_calls == 1       # one encoding, however many prompts
    assert regions and all(r.source == "sam" and r.mask.shape == (120, 160) for r in regions)
    union = np.zeros((120, 160), int)
    for r in regions:
        union += r.mask
    assert union.max() <= 1
    assert [r.id for r in regions] == list(range(len(regions)))
    seg.segmenter.set_image(rng.integers(0, 255, (50, 70, 3), dtype=np.uint8))
    assert seg.segmenter.encoder_calls == 2 and len(calls) == 2


def test_sam2_prompts_scaled_per_axis_and_masks_at_image_size(tiny_sam2_dir):
    from vlx.models.segmenter import load_segmenter

    seg = load_segmenter(f"hf:{tiny_sam2_dir}")
    seen = []
    seg.model.prompt_encoder.register_forward_pre_hook(lambda m, a, kw: seen.append(kw), with_kwargs=True)
    pixels = np.random.default_rng(1).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    x, _ = seg.preprocess(pixels)
    assert tuple(x.shape) == (1, 3, 64, 64)                            # squashed to a square, no padding
    seg.set_image(pixels)
    pts = np.array([[[80.0, 60.0], [160.0, 0.0]]])
    pred = seg.predict(pts, np.array([[1, 0]]), np.array([[0.0, 0.0, 160.0, 120.0]]), multimask=True)
    assert pred.masks.shape == (1, 3, 120, 160) and pred.iou.shape == pred.stability.shape == (1, 3)
    np.testing.assert_allclose(seen[-1]["input_points"][0, 0].numpy(), [[32, 32], [64, 0]], atol=1e-5)
    np.testing.assert_allclose(seen[-1]["input_boxes"][0, 0].numpy(), [0, 0, 64, 64], atol=1e-5)
    single = seg.predict(pts, np.array([[1, 0]]), multimask=False)
    assert single.masks.shape == (1, 1, 120, 160)
    skipped = seg.predict(pts, np.array([[1, 0]]), min_quality=(2.0, 0.0))   # nothing passes: empty masks
    assert not skipped.masks.any()
    assert seg.encoder_calls == 1


def test_sam2_preprocessing_matches_transformers_processor(tiny_sam2_dir):
    pytest.importorskip("torchvision")   # Sam2ImageProcessor needs it; vlx does not
    import torch
    from transformers import Sam2Processor

    from vlx.models.segmenter import load_segmenter

    pixels = np.random.default_rng(2).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    ours, _ = load_segmenter(f"hf:{tiny_sam2_dir}").preprocess(pixels)
    theirs = Sam2Processor.from_pretrained(str(tiny_sam2_dir))(images=pixels, return_tensors="pt")
    assert ours.shape == theirs["pixel_values"].shape
    assert float((ours - theirs["pixel_values"].to(torch.float32)).abs().mean()) < 0.02
