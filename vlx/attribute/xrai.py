"""XRAI (Kapishnikov et al. 2019): region attribution grown greedily by gain.

As the paper and its authors' code (PAIR-code ``saliency``): Integrated Gradients from a black and
a white baseline (the input's minimum and maximum), averaged, with the maximum over channels as
the per-position attribution; overlapping segments from Felzenszwalb's algorithm at six scales
(50, 100, 150, 250, 500, 1200; sigma 0.8, minimum size 150) on the input rescaled to ``[-1, 1]``
and resized to 224×224, each dilated by a disk of radius 5. Regions are then added greedily: at
each step the segment whose not-yet-covered positions have the highest mean attribution (the
*gain density*) is added, and those new positions get that gain; a segment that would add fewer
than ``min_pixel_diff`` positions is dropped. Positions no segment reaches get their own mean
attribution. Higher value = added earlier = more important.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlx.attribute.base import AttributionMethod, FunctionScorer, Scorer
from vlx.attribute.gradient import IntegratedGradients, target_rows
from vlx.errors import UsageError
from vlx.registry import METHODS
from vlx.types import Target

SCALES = (50, 100, 150, 250, 500, 1200)
SEGMENT_SIZE = 224          # side the segmentation runs at (the authors' resize)
MIN_SEGMENT = 150           # Felzenszwalb min_size at that side
DILATION = 5                # disk radius at that side


def felzenszwalb_masks(x: torch.Tensor, scales: Sequence[int] = SCALES) -> torch.Tensor:
    """Overlapping segment masks of one input ``x`` ``(C, h, w)``: bool ``(M, h, w)``, the
    segments of every scale, each dilated (see the module docstring)."""
    from scipy.ndimage import binary_dilation, find_objects
    from skimage.morphology import disk
    from skimage.segmentation import felzenszwalb

    h, w = x.shape[-2:]
    v = x.detach().float()
    v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12) * 2 - 1
    v = F.interpolate(v[None], size=(SEGMENT_SIZE, SEGMENT_SIZE), mode="bicubic", align_corners=False)[0]
    im = v.permute(1, 2, 0).cpu().numpy().astype(np.float64)
    foot, r, side = disk(DILATION), DILATION, SEGMENT_SIZE
    masks = []
    for scale in scales:
        seg = felzenszwalb(im, scale=scale, sigma=0.8, min_size=MIN_SEGMENT, channel_axis=-1)
        for label, box in enumerate(find_objects(seg + 1)):
            if box is None:
                continue
            ys, xs = box                                  # dilate inside the segment's box + r only
            y0, y1, x0, x1 = max(0, ys.start - r), min(side, ys.stop + r), max(0, xs.start - r), min(side, xs.stop + r)
            m = np.zeros((side, side), bool)
            m[y0:y1, x0:x1] = binary_dilation(seg[y0:y1, x0:x1] == label, foot)
            masks.append(m)
    m = torch.from_numpy(np.stack(masks)).float()[:, None]
    return F.interpolate(m, size=(h, w), mode="nearest")[:, 0].bool().to(x.device)


def xrai_greedy(attr: torch.Tensor, masks: torch.Tensor, min_pixel_diff: int = 1) -> tuple[torch.Tensor, list[int]]:
    """Greedy XRAI region growing.

    Args:
        attr: per-position attribution ``(h, w)``.
        masks: candidate segments, bool ``(M, h, w)`` (may overlap).
        min_pixel_diff: a segment adding fewer new positions than this is dropped.

    Returns:
        The map ``(h, w)`` float64 (each position: the gain density of the step that covered it;
        uncovered positions: their mean attribution) and the indices of the segments in the
        order they were added.
    """
    a = attr.detach().double().flatten().cpu()
    mk = masks.reshape(masks.shape[0], -1).cpu()
    by_pos = mk.T.contiguous()                     # (N, M): which segments hold each position
    count = mk.sum(1).double()                     # new positions each segment would add
    mass = torch.zeros(mk.shape[0], dtype=torch.float64)
    for i in range(0, a.numel(), 4096):
        mass += a[i:i + 4096] @ by_pos[i:i + 4096].double()
    alive = torch.ones(mk.shape[0], dtype=torch.bool)
    covered = torch.zeros(a.numel(), dtype=torch.bool)
    out = torch.full_like(a, -np.inf)
    order: list[int] = []
    while True:
        alive &= count >= min_pixel_diff
        if not alive.any():
            break
        gain = torch.where(alive, mass / count.clamp_min(1), torch.full_like(mass, -np.inf))
        best = int(gain.argmax())
        new = torch.nonzero(mk[best] & ~covered)[:, 0]
        out[new] = gain[best]
        covered[new] = True
        order.append(best)
        alive[best] = False
        rows = by_pos[new].double()                # (n_new, M)
        count -= rows.sum(0)
        mass -= a[new] @ rows
    if not covered.all():
        out[~covered] = a[~covered].mean()
    return out.reshape(attr.shape).to(attr.device), order


@METHODS.register
class XRAI(AttributionMethod):
    """XRAI (Kapishnikov et al. 2019), as published: see ``vlx.attribute.xrai``. ``(B, h, w)``
    signed (each position holds the gain density of the region that covered it).

    Args:
        n_steps, batch_size: for Integrated Gradients (per baseline).
        baselines: ``minmax`` (the paper's black and white: the input's min and max) or ``zero``.
        scales: Felzenszwalb scales.
        min_pixel_diff: minimum new area of an added segment, as a share of the input
            (default ``50 / 224²``, the authors' 50 pixels at 224×224).
    """

    name = "xrai"
    summary = "XRAI: regions added greedily by Integrated-Gradients gain density."
    needs_gradients = True
    signed = True

    def __init__(self, n_steps: int = 32, batch_size: int | None = None, baselines: str = "minmax",
                 scales: Sequence[int] = SCALES, min_pixel_diff: float = 50 / 224 ** 2, **options: Any) -> None:
        super().__init__(n_steps=n_steps, batch_size=batch_size, baselines=baselines, scales=scales,
                         min_pixel_diff=min_pixel_diff, **options)
        if baselines not in ("minmax", "zero"):
            raise UsageError(f"unknown XRAI baselines {baselines!r}; use minmax or zero")
        self.baselines, self.scales, self.min_pixel_diff = baselines, tuple(int(s) for s in scales), float(min_pixel_diff)
        self.ig = IntegratedGradients(n_steps=n_steps, batch_size=batch_size)

    def base_attribution(self, model: Scorer, x: torch.Tensor, target: Target) -> torch.Tensor:
        """IG averaged over the baselines, maximum over channels: ``(B, h, w)``."""
        if self.baselines == "zero":
            return self.ig.channel_attributions(model, x, target).amax(1)
        out = []
        for i in range(x.shape[0]):
            xi, ti, total = x[i:i + 1].detach(), target_rows(target, [i]), 0.0
            for b in (xi.min(), xi.max()):
                # IG of f from the constant baseline b at x = IG of g(y) = f(y + b) from 0 at x - b.
                shifted = FunctionScorer(lambda y, b=b: model.logits(y + b), model.batch_size)
                total = total + self.ig.channel_attributions(shifted, xi - b, ti)
            out.append((total / 2).amax(1)[0])
        return torch.stack(out)

    def attribute(self, model: Scorer, x: torch.Tensor, target: Target,
                  layer: str | None = None) -> torch.Tensor:
        attr = self.base_attribution(model, x, target)
        h, w = x.shape[-2:]
        min_diff = max(1, round(self.min_pixel_diff * h * w))
        out = [xrai_greedy(attr[i], felzenszwalb_masks(x[i], self.scales), min_diff)[0] for i in range(x.shape[0])]
        return torch.stack(out).float()
