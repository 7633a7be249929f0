"""SAM 2 preprocessing against transformers' own ``Sam2Processor`` (its image processor needs
torchvision, which vlx does not: tests/test_sam2.py skips this check in ``.venv``). vlx resizes
and normalises in torch; the processor's pixel values are the oracle."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers.models.sam2", reason="this transformers has no SAM 2")


@pytest.fixture(scope="module")
def tiny_sam2_dir(tmp_path_factory):
    from vlx.testing.tiny_sam import tiny_sam2_folder

    return tiny_sam2_folder(tmp_path_factory.mktemp("tiny-sam2"))


@pytest.mark.parametrize("hw", [(120, 160), (97, 61)])
def test_sam2_preprocessing_matches_sam2_processor(tiny_sam2_dir, record, hw):
    from transformers import Sam2Processor

    from vlx.models.segmenter import load_segmenter

    pixels = np.random.default_rng(2).integers(0, 255, (*hw, 3), dtype=np.uint8)
    ours, _ = load_segmenter(f"hf:{tiny_sam2_dir}").preprocess(pixels)
    theirs = Sam2Processor.from_pretrained(str(tiny_sam2_dir))(images=pixels, return_tensors="pt")["pixel_values"]
    assert ours.shape == theirs.shape
    diff = (ours - theirs.to(torch.float32)).abs()
    record("Sam2Processor", "sam2 preprocess", f"{hw[0]}x{hw[1]}", mean_abs=float(diff.mean()),
           max_abs=float(diff.max()))
    assert float(diff.mean()) < 0.02
