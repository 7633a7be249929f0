"""A tiny randomly initialised transformers ``SamModel`` (or SAM 2 ``Sam2Model``) built from a
config and saved to a folder with its image-processor config, so the real loading path
(``hf:<folder>``) is exercised without any download."""

from __future__ import annotations

import json
from pathlib import Path


def tiny_sam_config(image_size: int = 64, patch_size: int = 8, hidden: int = 32):
    """A ``SamConfig`` a few hundred kB in size: ``image_size`` px input (longest side), a
    ``image_size / patch_size`` embedding grid, ``hidden`` channels everywhere."""
    from transformers import SamConfig

    vision = dict(hidden_size=hidden, output_channels=hidden, num_hidden_layers=2, num_attention_heads=2,
                  image_size=image_size, patch_size=patch_size, window_size=4, global_attn_indexes=[1],
                  mlp_dim=2 * hidden, num_pos_feats=hidden // 2, initializer_range=0.02)
    prompt = dict(hidden_size=hidden, image_size=image_size, patch_size=patch_size, mask_input_channels=4)
    decoder = dict(hidden_size=hidden, mlp_dim=2 * hidden, num_hidden_layers=2, num_attention_heads=2,
                   iou_head_hidden_dim=hidden)
    return SamConfig(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def tiny_sam_folder(folder: str | Path, image_size: int = 64, patch_size: int = 8, seed: int = 0,
                    quality: float = 0.9) -> Path:
    """Save a random tiny ``SamModel`` and a ``SamImageProcessor`` config (resize the longest
    side to ``image_size``, ImageNet mean/std, pad to ``image_size``) to ``folder``; returns it.
    The IoU head is set to predict about ``quality`` for every mask (random weights would
    predict ~0, which would zero every mask's weight), and the mask logits are scaled to a
    standard deviation of about 4, so that some masks are stable. Load it with
    ``vlx.models.segmenter.load_segmenter("hf:<folder>")``."""
    import torch
    from transformers import SamModel

    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = SamModel(tiny_sam_config(image_size, patch_size)).eval()
    head = model.mask_decoder.iou_prediction_head.proj_out
    with torch.no_grad():
        head.weight.mul_(0.01)  # random weights predict IoU ~0; make the quality score a plausible ~0.9
        head.bias.fill_(quality)
        # random decoders give mask logits ~1e-4 (every mask unstable); scale them to std ~4
        emb = model.get_image_embeddings(torch.randn(1, 3, image_size, image_size))
        pts = torch.rand(1, 8, 1, 2) * image_size
        logits = model(image_embeddings=emb, input_points=pts, input_labels=torch.ones(1, 8, 1, dtype=torch.long))
        factor = 4.0 / float(logits.pred_masks.std())
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(factor)
            mlp.proj_out.bias.mul_(factor)
    model.save_pretrained(folder)
    proc = {"image_processor_type": "SamImageProcessor", "processor_class": "SamProcessor",
            "do_resize": True, "size": {"longest_edge": image_size}, "do_rescale": True, "rescale_factor": 1 / 255,
            "do_normalize": True, "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
            "do_pad": True, "pad_size": {"height": image_size, "width": image_size},
            "mask_size": {"longest_edge": image_size // 4}, "do_convert_rgb": True}
    (folder / "preprocessor_config.json").write_text(json.dumps(proc, indent=2))
    return folder


def tiny_sam2_config(image_size: int = 64, hidden: int = 32):
    """A tiny ``Sam2Config`` (SAM 2, Hiera backbone) for ``image_size`` px square inputs
    (a multiple of 32): four Hiera stages of 8/16/32/64 channels at strides 4/8/16/32, an FPN of
    ``hidden`` channels, a ``image_size / 16`` embedding grid and ``image_size / 4`` low-res masks.
    Needs a transformers with SAM 2 (``transformers.Sam2Config``)."""
    from transformers import Sam2Config

    s = image_size
    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=8, num_attention_heads=1, image_size=[s, s],
                    window_positional_embedding_background_size=[4, 4], blocks_per_stage=[1, 1, 2, 1],
                    embed_dim_per_stage=[8, 16, 32, 64], num_attention_heads_per_stage=[1, 1, 1, 1],
                    window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[3], num_query_pool_stages=3)
    vision = dict(backbone_config=backbone, backbone_channel_list=[64, 32, 16, 8],
                  backbone_feature_sizes=[[s // 4, s // 4], [s // 8, s // 8], [s // 16, s // 16]],
                  fpn_hidden_size=hidden)
    prompt = dict(hidden_size=hidden, image_size=s, patch_size=16, mask_input_channels=4)
    decoder = dict(hidden_size=hidden, mlp_dim=2 * hidden, num_hidden_layers=2, num_attention_heads=2,
                   iou_head_hidden_dim=hidden)
    return Sam2Config(vision_config=vision, prompt_encoder_config=prompt, mask_decoder_config=decoder)


def tiny_sam2_folder(folder: str | Path, image_size: int = 64, seed: int = 0, quality: float = 0.9) -> Path:
    """Save a random tiny ``Sam2Model`` and a ``Sam2ImageProcessor`` config (resize to
    ``image_size × image_size``, ImageNet mean/std, no padding) to ``folder``; returns it. As in
    ``tiny_sam_folder`` the IoU head predicts about ``quality`` (its output is a sigmoid, so the
    bias is set to ``logit(quality)``) and the mask logits are scaled to a standard deviation of
    about 4. Load it with ``vlx.models.segmenter.load_segmenter("hf:<folder>")``."""
    import math

    import torch
    from transformers import Sam2Model

    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = Sam2Model(tiny_sam2_config(image_size)).eval()
    head = model.mask_decoder.iou_prediction_head.proj_out
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.fill_(math.log(quality / (1 - quality)))
        emb = model.get_image_embeddings(torch.randn(1, 3, image_size, image_size))
        pts = torch.rand(1, 8, 1, 2) * image_size
        out = model(image_embeddings=emb, input_points=pts, input_labels=torch.ones(1, 8, 1, dtype=torch.long))
        factor = 4.0 / float(out.pred_masks.std())
        for mlp in model.mask_decoder.output_hypernetworks_mlps:
            mlp.proj_out.weight.mul_(factor)
            mlp.proj_out.bias.mul_(factor)
    model.save_pretrained(folder)
    proc = {"image_processor_type": "Sam2ImageProcessor", "processor_class": "Sam2Processor",
            "do_resize": True, "size": {"height": image_size, "width": image_size}, "resample": 2,
            "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
            "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225],
            "mask_size": {"height": image_size // 4, "width": image_size // 4}, "do_convert_rgb": True}
    (folder / "preprocessor_config.json").write_text(json.dumps(proc, indent=2))
    return folder
