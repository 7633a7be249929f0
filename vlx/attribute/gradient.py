"""Gradient methods: saliency, input × gradient, Integrated Gradients and SmoothGrad.

All work on model inputs ``x`` ``(B, 3, h, w)`` and return maps ``(B, h, w)`` at the model input's
resolution. A sample's map never depends on its batch mates (noise and steps are drawn per sample
from the same seed), so a batch gives the same maps as one call per image.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import numpy as np
import torch

from vlx.attribute.base import AttributionMethod, get_method
from vlx.models.classifier import ImageClassifier
from vlx.registry import METHODS
from vlx.types import Target


def target_rows(target: Target, samples: Sequence[int]) -> Target:
    """A target for a batch whose row ``r`` is a copy of sample ``samples[r]`` of the original batch.

    Per-sample indices (tuples) are gathered; a single index stays as it is.
    """
    changes = {}
    for f in ("index", "other"):
        v = getattr(target, f, None)
        if isinstance(v, tuple):
            changes[f] = tuple(int(v[s]) for s in samples)
    return dataclasses.replace(target, **changes) if changes else target


class GradientBase(AttributionMethod):
    """Methods built on ``d score / d x``."""

    needs_gradients = True

    def __init__(self) -> None:
        """Saliency and input × gradient take no options (an unknown one is a TypeError)."""
        super().__init__()

    @staticmethod
    def gradients(model: ImageClassifier, x: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of the target score w.r.t. ``x`` ``(B, 3, h, w)`` and the scores ``(B,)``.

        Samples are independent (the model is in eval mode), so one backward pass of the summed
        scores gives every sample's own gradient.
        """
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            score = target.score(model.logits(x))
            (grad,) = torch.autograd.grad(score.sum(), x)
        return grad.detach(), score.detach()


@METHODS.register
class Saliency(GradientBase):
    """Saliency (Simonyan et al. 2014): ``max_c |d score / d x_c|`` per pixel, ``(B, h, w)``, ``>= 0``."""

    name = "saliency"
    summary = "Saliency: absolute input gradient, maximum over colour channels."

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        return self.gradients(model, x, target)[0].abs().amax(1)


@METHODS.register
class InputXGradient(GradientBase):
    """Input × gradient: ``sum_c x_c * d score / d x_c`` per pixel, ``(B, h, w)``, signed (model space)."""

    name = "input_x_gradient"
    summary = "Input × gradient, summed over colour channels (signed)."
    signed = True

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        return (x.detach() * self.gradients(model, x, target)[0]).sum(1)


def _ig_nodes(n_steps: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Integration nodes ``alpha`` in ``[0, 1]`` and their weights (both ``(n_steps,)``)."""
    if method == "gausslegendre":
        a, w = np.polynomial.legendre.leggauss(n_steps)
        return torch.tensor(0.5 * (a + 1)), torch.tensor(0.5 * w)
    if method == "riemann_trapezoid":
        if n_steps < 2:
            raise ValueError("riemann_trapezoid needs n_steps >= 2")
        a = torch.linspace(0, 1, n_steps, dtype=torch.float64)
        w = torch.full((n_steps,), 1.0 / (n_steps - 1), dtype=torch.float64)
        w[0] = w[-1] = 0.5 / (n_steps - 1)
        return a, w
    if method == "riemann_middle":
        return (torch.arange(n_steps, dtype=torch.float64) + 0.5) / n_steps, torch.full((n_steps,), 1.0 / n_steps,
                                                                                         dtype=torch.float64)
    raise ValueError(f"unknown integration method {method!r}; use gausslegendre, riemann_trapezoid or riemann_middle")


@METHODS.register
class IntegratedGradients(GradientBase):
    """Integrated Gradients (Sundararajan et al. 2017) from a baseline of zeros in model space.

    ``IG(x) = (x - x0) * integral_0^1 grad(x0 + a (x - x0)) da``, summed over colour channels:
    ``(B, h, w)``, signed. The integral uses ``n_steps`` nodes (Gauss–Legendre by default, as in
    captum), evaluated ``batch_size`` rows at a time over all (sample, step) pairs.

    After each call, ``last_completeness_gap`` ``(B,)`` holds ``sum(IG) - (f(x) - f(x0))`` and
    ``last_score_delta`` ``(B,)`` holds ``f(x) - f(x0)`` (completeness says the gap is 0).

    Args:
        n_steps: integration nodes (64).
        batch_size: interpolated inputs per forward/backward pass (default: the model's).
        method: ``gausslegendre``, ``riemann_trapezoid`` or ``riemann_middle``.
    """

    name = "integrated_gradients"
    summary = "Integrated Gradients from a zero baseline (signed; completeness gap recorded)."
    signed = True

    def __init__(self, n_steps: int = 64, batch_size: int | None = None, method: str = "gausslegendre") -> None:
        _ig_nodes(int(n_steps), method)          # unknown rule or too few steps: fail here, not later
        AttributionMethod.__init__(self, n_steps=n_steps, batch_size=batch_size, method=method)
        self.n_steps, self.batch_size, self.method = int(n_steps), batch_size and int(batch_size), method
        self.last_completeness_gap: torch.Tensor | None = None
        self.last_score_delta: torch.Tensor | None = None

    def channel_attributions(self, model: ImageClassifier, x: torch.Tensor, target: Target) -> torch.Tensor:
        """IG per channel, ``(B, 3, h, w)``; also records the completeness gap."""
        x = x.detach()
        baseline = torch.zeros_like(x)
        alphas, weights = _ig_nodes(self.n_steps, self.method)
        alphas, weights = alphas.to(x.device, x.dtype), weights.to(x.device, torch.float32)
        b, n = x.shape[0], self.n_steps
        total = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        bs = self.batch_size or model.batch_size
        for r0 in range(0, b * n, bs):
            rows = torch.arange(r0, min(b * n, r0 + bs), device=x.device)
            s, k = rows // n, rows % n
            xi = baseline[s] + alphas[k].view(-1, 1, 1, 1) * (x[s] - baseline[s])
            g, _ = self.gradients(model, xi, target_rows(target, s.tolist()))
            total.index_add_(0, s, g.float() * weights[k].view(-1, 1, 1, 1))
        attr = (x - baseline).float() * total
        with torch.no_grad():
            f = target_rows(target, [*range(b), *range(b)]).score(model.logits(torch.cat([x, baseline]))).float()
        delta = f[:b] - f[b:]
        self.last_score_delta = delta
        self.last_completeness_gap = attr.sum(dim=(1, 2, 3)) - delta
        return attr

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        return self.channel_attributions(model, x, target).sum(1)


@METHODS.register
class SmoothGrad(AttributionMethod):
    """SmoothGrad (Smilkov et al. 2017): the mean of a base method's maps over ``n_samples`` noisy
    copies ``x + N(0, (noise_level * (max(x) - min(x)))^2)``.

    Wraps any registered method (``base="saliency"`` by default). The noise of each sample is drawn
    from a generator seeded with ``seed``, so results are reproducible and independent of the batch.
    Returns what the base returns, ``(B, h', w')``; ``signed`` follows the base.

    Args:
        base: registered method name (or an instance) to smooth.
        n_samples: noisy copies per image (32).
        noise_level: noise standard deviation as a share of the input's value range (0.15).
        batch_size: noisy copies per call of the base method (default: the model's).
        seed: seed of the noise.
        base_options: options for the base method when ``base`` is a name.
    """

    name = "smoothgrad"
    summary = "SmoothGrad: a gradient method averaged over noisy copies (saliency by default)."

    def __init__(self, base: str | AttributionMethod = "saliency", n_samples: int = 32, noise_level: float = 0.15,
                 batch_size: int | None = None, seed: int = 0, base_options: dict[str, Any] | None = None) -> None:
        super().__init__(base=base, n_samples=n_samples, noise_level=noise_level, batch_size=batch_size,
                         seed=seed, base_options=base_options)
        if isinstance(base, str) and base == self.name:
            raise ValueError("smoothgrad cannot wrap itself")
        self.base = get_method(base, **(base_options or {})) if isinstance(base, str) else base
        self.n_samples, self.noise_level = int(n_samples), float(noise_level)
        self.batch_size, self.seed = batch_size and int(batch_size), int(seed)
        self.signed = self.base.signed
        self.needs_layer = self.base.needs_layer

    def attribute(self, model: ImageClassifier, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        x = x.detach()
        out = []
        for i in range(x.shape[0]):
            g = torch.Generator(device="cpu").manual_seed(self.seed)
            sigma = self.noise_level * float(x[i].max() - x[i].min())
            t_i = target_rows(target, [i])
            acc = None
            bs = self.batch_size or model.batch_size
            for s0 in range(0, self.n_samples, bs):
                n = min(bs, self.n_samples - s0)
                noise = torch.randn((n, *x.shape[1:]), generator=g).to(x.device, x.dtype) * sigma
                m = self.base.attribute(model, x[i:i + 1] + noise, target_rows(t_i, [0] * n), layer).float().sum(0)
                acc = m if acc is None else acc + m
            out.append(acc / self.n_samples)
        return torch.stack(out)
