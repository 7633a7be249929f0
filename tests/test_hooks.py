"""``vlx.attribute.hooks.capture``: it records the hooked module's first output tensor (the very
tensor the next module consumes, still in the autograd graph) and always removes its hook."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vlx.attribute.hooks import Capture, capture


class Pair(nn.Module):
    """Returns a tuple whose first element is not a tensor, so the tensor must be searched for."""

    def forward(self, x):
        return ("label", 2.0 * x, 3.0 * x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.pair = Pair()

    def forward(self, x):
        _, a, b = self.pair(x)
        return (a * a).sum() + b.sum()


def test_capture_starts_empty():
    assert Capture().output is None


def test_capture_records_first_tensor_in_graph_and_removes_hook():
    net = Net()
    x = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    with capture(net.pair) as cap:
        assert cap.output is None                        # nothing recorded before a forward pass
        score = net(x)
        assert net.pair._forward_hooks                   # hooked while inside the block
    assert not net.pair._forward_hooks                   # removed on exit
    torch.testing.assert_close(cap.output, 2.0 * x.detach(), rtol=0, atol=0)   # the first tensor, not 3x
    # d/da of sum(a^2) + sum(b), holding b fixed: 2a = 4x (hand-computed)
    (g,) = torch.autograd.grad(score, cap.output)
    torch.testing.assert_close(g, 4.0 * x.detach(), rtol=0, atol=0)


def test_capture_keeps_last_forward_pass():
    net = Net()
    with capture(net.pair) as cap:
        net(torch.ones(2))
        net(torch.full((2,), 5.0))
    torch.testing.assert_close(cap.output, torch.full((2,), 10.0), rtol=0, atol=0)


def test_hook_removed_when_the_block_raises():
    net = Net()
    with pytest.raises(RuntimeError, match="boom"):
        with capture(net.pair):
            raise RuntimeError("boom")
    assert not net.pair._forward_hooks
