"""The CAM family over one base: a method supplies channel weights (or overrides ``combine``).

Activations of the chosen layer are captured with a hook; token layers of ViTs are reshaped to
their patch grid automatically (``vlx.models.layers.to_spatial``)."""

from __future__ import annotations

import torch

from vlx.attribute.base import AttributionMethod
from vlx.attribute.hooks import capture
from vlx.models.classifier import ImageClassifier
from vlx.models.layers import to_spatial
from vlx.registry import METHODS
from vlx.types import Target


class CAMBase(AttributionMethod):
    """Class activation maps: ``ReLU(sum_c w_c A_c)`` over a layer's activations ``A``."""

    needs_layer = True

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        _, module = model.layer(layer)
        x = x.detach().requires_grad_(True)
        with torch.enable_grad(), capture(module) as cap:
            score = target.score(model.logits(x))
        if cap.output is None:
            raise RuntimeError(f"layer {layer!r} produced no tensor in the forward pass")
        grads = torch.autograd.grad(score.sum(), cap.output)[0]
        hw = tuple(x.shape[-2:])
        acts = to_spatial(cap.output.detach(), hw)
        grads = to_spatial(grads.detach(), hw)
        return self.combine(acts, grads)

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """Channel weights ``(B, C)`` from activations and gradients ``(B, C, h, w)``."""
        raise NotImplementedError

    def combine(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        """The map ``(B, h, w)``: ReLU of the weighted sum of activation channels."""
        w = self.weights(acts, grads)
        return torch.relu((w[:, :, None, None] * acts).sum(1))


@METHODS.register("gradcam")
class GradCAM(CAMBase):
    name = "gradcam"
    summary = "Grad-CAM: channel weights are the spatial mean of the gradients."

    def weights(self, acts: torch.Tensor, grads: torch.Tensor) -> torch.Tensor:
        return grads.mean(dim=(2, 3))
