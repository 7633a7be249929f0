"""Forward hooks that are always removed (``try/finally``), even when the forward pass fails."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from vlx.models.layers import first_tensor


class Capture:
    """What a hooked module produced in the last forward pass (its first output tensor)."""

    def __init__(self) -> None:
        self.output: torch.Tensor | None = None


@contextmanager
def capture(module: nn.Module) -> Iterator[Capture]:
    """Record ``module``'s output during the ``with`` block; the hook is removed on exit.

    The recorded tensor stays in the autograd graph, so ``torch.autograd.grad(score, cap.output)``
    gives the gradient with respect to it.
    """
    cap = Capture()

    def hook(_m, _inp, out):
        cap.output = first_tensor(out)

    handle = module.register_forward_hook(hook)
    try:
        yield cap
    finally:
        handle.remove()
