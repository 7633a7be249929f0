"""Tiny transformers models built from configs with random weights, saved to a folder so the
real loading code (``hf:<path>``) is exercised without a download."""

from __future__ import annotations

from pathlib import Path


def tiny_vit_folder(folder: str | Path, image_size: int = 32, patch_size: int = 8, num_labels: int = 3,
                    model_type: str = "vit", seed: int = 0) -> Path:
    """Save a randomly initialised tiny ViT (or DeiT with ``model_type="deit"``) image classifier
    and its image-processor config to ``folder``; returns the folder."""
    import json

    import torch
    from transformers import (DeiTConfig, DeiTForImageClassificationWithTeacher, ViTConfig,
                              ViTForImageClassification)

    torch.manual_seed(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    common = dict(image_size=image_size, patch_size=patch_size, hidden_size=32, num_hidden_layers=2,
                  num_attention_heads=2, intermediate_size=64, num_labels=num_labels,
                  id2label={i: f"thing {i}" for i in range(num_labels)},
                  label2id={f"thing {i}": i for i in range(num_labels)})
    if model_type == "deit":
        model = DeiTForImageClassificationWithTeacher(DeiTConfig(**common))
    else:
        model = ViTForImageClassification(ViTConfig(**common))
    model.save_pretrained(folder)
    proc = {"do_resize": True, "size": {"height": image_size, "width": image_size}, "do_normalize": True,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_rescale": True,
            "rescale_factor": 1 / 255, "image_processor_type": "ViTImageProcessor"}
    (folder / "preprocessor_config.json").write_text(json.dumps(proc))
    return folder
