"""The embedded few-shot segmenter: training-free matching on EfficientNet-Lite0 features.

At each level (the output of one MBConv block of the ImageNet-trained EfficientNet-Lite0 that
ships with vlx), every query position attends to every support position of every shot: the
affinity is the cosine similarity of the two feature vectors (each centred on the episode's mean
feature) times a temperature ``tau``, softmax-normalised over all ``K·Ns`` support positions.
The attention carries the support mask over: the level's foreground probability at a query
position is the attention-weighted mean of the support mask values. Levels are upsampled to the
finest query grid and fused by their (weighted) mean ``P = Σ_l w_l P_l / L``; the logits are
``(log(1 - P), log P)``, so the softmax of the logits is exactly ``(1 - P, P)``.

Nothing is trained or downloaded, and the affinities (the scores before the softmax) are exactly
what the Affinity Explainer reads. It is a reference model for demos, tests and benchmarks, not a state-of-the-art
segmenter.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vlx.fewshot.protocol import FewShotOutput

DEFAULT_BLOCKS: tuple[int, ...] = (4, 7, 10, 14)
EPS = 1e-4


class MatchingSegmenter:
    """Training-free matching segmenter over EfficientNet-Lite0 multi-level features.

    Args:
        device: ``cpu``, ``cuda``, ... (``auto`` picks a GPU when there is one).
        blocks: indices of the MBConv blocks (``0..15``) whose outputs are the levels.
        tau: temperature of the cosine affinity (higher: sharper attention).
        size: model input ``(h, w)``; images are resized to it (no crop).
    """

    name = "matching-effnet-lite0"
    supports_level_weights = True

    def __init__(self, device: str | torch.device = "cpu", blocks: Sequence[int] = DEFAULT_BLOCKS,
                 tau: float = 10.0, size: tuple[int, int] = (192, 192)) -> None:
        from vlx.models import load_classifier
        from vlx.models.classifier import Preprocess

        clf = load_classifier("effnet-lite0", device)
        self.net = clf.module
        self.device = clf.device
        n = len(self.net._blocks)
        if not blocks or any(not 0 <= b < n for b in blocks) or list(blocks) != sorted(set(blocks)):
            raise ValueError(f"blocks must be increasing indices in 0..{n - 1}, got {list(blocks)}")
        self.blocks = tuple(int(b) for b in blocks)
        self.levels = tuple(f"_blocks.{b}" for b in self.blocks)
        self.tau = float(tau)
        self.input_size = (int(size[0]), int(size[1]))
        self.preprocess = Preprocess(size=self.input_size, mean=clf.preprocess.mean, std=clf.preprocess.std)

    def to_input(self, images: Sequence[np.ndarray]) -> torch.Tensor:
        """RGB uint8 ``(H, W, 3)`` images → normalised ``(B, 3, h, w)`` on the model's device."""
        return self.preprocess(list(images), self.device)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Model input ``(N, 3, h, w)`` → one ``(N, C_l, h_l, w_l)`` map per level, collected by
        forward hooks on the chosen blocks; the network stops after the last chosen block."""
        net, store = self.net, {}
        hooks = [net._blocks[b].register_forward_hook(lambda _m, _i, o, b=b: store.__setitem__(b, o))
                 for b in self.blocks]
        try:
            h = net._swish(net._bn0(net._conv_stem(x)))
            for i, block in enumerate(net._blocks[: self.blocks[-1] + 1]):
                h = block(h)
        finally:
            for hk in hooks:
                hk.remove()
        return [store[b] for b in self.blocks]

    def forward(self, query: torch.Tensor, support: torch.Tensor, support_masks: torch.Tensor,
                level_weights: torch.Tensor | None = None) -> FewShotOutput:
        """Segment the query (see ``vlx.fewshot.protocol`` for shapes).

        ``query`` ``(1 or B, 3, h, w)``, ``support`` ``(B, K, 3, h, w)``, ``support_masks``
        ``(B, K, h, w)`` in ``[0, 1]``; ``level_weights`` ``(L,)`` or ``None`` (all ones)."""
        if support.dim() != 5 or support_masks.dim() != 4 or support.shape[:2] != support_masks.shape[:2]:
            raise ValueError("support must be (B, K, 3, h, w) and support_masks (B, K, h, w); got "
                             f"{tuple(support.shape)} and {tuple(support_masks.shape)}")
        b, k = support.shape[:2]
        if query.shape[0] not in (1, b):
            raise ValueError(f"query batch {query.shape[0]} must be 1 or match the {b} support sets")
        weights = torch.ones(len(self.levels), device=support.device) if level_weights is None else level_weights
        if weights.shape != (len(self.levels),):
            raise ValueError(f"level_weights must have shape ({len(self.levels)},), got {tuple(weights.shape)}")
        fq_all = self.features(query)
        fs_all = self.features(support.flatten(0, 1))
        out_hw = tuple(fq_all[0].shape[-2:])
        probs, affs, qgrids, sgrids, sfeats = [], [], [], [], []
        for fq, fs in zip(fq_all, fs_all):
            fq = fq.expand(b, *fq.shape[1:])
            c, hq, wq = fq.shape[1:]
            hs, ws = fs.shape[-2:]
            fs5 = fs.view(b, k, c, hs, ws)
            sfeats.append(fs5)
            q = fq.flatten(2).transpose(1, 2)                                # (B, Nq, C)
            s = fs5.permute(0, 1, 3, 4, 2).reshape(b, k * hs * ws, c)        # (B, K·Ns, C)
            centre = torch.cat([q, s], 1).mean(1, keepdim=True)
            q, s = F.normalize(q - centre, dim=-1), F.normalize(s - centre, dim=-1)
            scores = self.tau * q @ s.transpose(1, 2)                         # (B, Nq, K·Ns)
            attn = scores.softmax(-1)
            m = F.interpolate(support_masks.flatten(0, 1)[:, None].float(), size=(hs, ws), mode="area")
            p = attn @ m.view(b, k * hs * ws, 1)                             # (B, Nq, 1)
            p = p.view(b, 1, hq, wq)
            probs.append(F.interpolate(p, size=out_hw, mode="bilinear", align_corners=False) if (hq, wq) != out_hw else p)
            affs.append(scores.view(b, hq * wq, k, hs * ws).transpose(1, 2))  # (B, K, Nq, Ns), pre-softmax
            qgrids.append((int(hq), int(wq)))
            sgrids.append((int(hs), int(ws)))
        stacked = torch.cat(probs, 1)                                        # (B, L, h', w')
        fused = (stacked * weights.view(1, -1, 1, 1)).sum(1) / len(self.levels)
        fused = fused.clamp(EPS, 1 - EPS)
        logits = torch.stack([torch.log1p(-fused), torch.log(fused)], 1)
        return FewShotOutput(logits, affs, qgrids, sgrids, sfeats)

    __call__ = forward
