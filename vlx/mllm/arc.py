"""ARC — Activation Ranking Correlation: how relevant each context token is to an answer token,
as the rank-biased overlap (RBO) of their top-k next-token rankings (k = 50 by default).

RBO (Webber, Moffat & Zobel 2010), extrapolated form for two rankings cut at depth ``k``:
``RBO_ext = (X_k / k) p^k + (1 - p) / p · Σ_{d=1..k} (X_d / d) p^d``, with ``X_d`` the size of
the overlap of the two top-``d`` prefixes; 1 for identical rankings, 0 for disjoint ones.
"""

from __future__ import annotations

import torch


def rbo(a: torch.Tensor, b: torch.Tensor, p: float = 0.9) -> torch.Tensor:
    """Extrapolated RBO of rankings ``a`` ``(..., k)`` against ``b`` ``(k,)`` or ``(..., k)``
    (item ids, best first, no repeats within a ranking). Returns float ``(...)`` in ``[0, 1]``."""
    if not 0 < p < 1:
        raise ValueError("RBO persistence p must be in (0, 1)")
    k = a.shape[-1]
    b = b.expand_as(a)
    # seen[..., d, i]: item a[i] within b's top-(d+1); overlap X_d counts a's top-d items inside b's top-d.
    pos_in_b = torch.full(a.shape, k, dtype=torch.long, device=a.device)
    match = a[..., :, None] == b[..., None, :]  # (..., k_a, k_b)
    has = match.any(-1)
    pos_in_b[has] = match.float().argmax(-1)[has]
    depth = torch.arange(k, device=a.device)
    in_a = depth[None, :] <= depth[:, None]  # (d, i): a's item i inside top-(d+1)
    inside = (pos_in_b[..., None, :] <= depth[:, None]) & in_a  # (..., d, i)
    x = inside.sum(-1).double()  # (..., k): X_1..X_k
    d = (depth + 1).double()
    pw = torch.tensor(p, dtype=torch.double) ** d
    return ((x[..., -1] / k) * p ** k + (1 - p) / p * (x / d * pw).sum(-1)).float()


def rbo_reference(a: list[int], b: list[int], p: float = 0.9) -> float:
    """The same formula written as plain loops, for checking ``rbo``."""
    k = len(a)
    total = 0.0
    for d in range(1, k + 1):
        total += len(set(a[:d]) & set(b[:d])) / d * p ** d
    return len(set(a) & set(b)) / k * p ** k + (1 - p) / p * total


def top_rankings(logits: torch.Tensor, k: int = 50) -> torch.Tensor:
    """Top-``k`` next-token ids, best first: ``(..., V)`` → long ``(..., k)``."""
    return logits.topk(min(k, logits.shape[-1]), dim=-1).indices


def arc_relevance(logits: torch.Tensor, context_positions: torch.Tensor, position: int, k: int = 50,
                  p: float = 0.9) -> torch.Tensor:
    """Relevance of each context position to the token predicted at ``position``.

    Args:
        logits: ``(T, V)`` logits of one sequence (row ``j`` predicts token ``j + 1``).
        context_positions: long ``(J,)`` sequence positions of the context tokens.
        position: the position whose prediction is explained (answer token ``t`` sits at
            ``position + 1``).
    Returns:
        float ``(J,)`` in ``[0, 1]``: RBO of each context position's top-k ranking with the
        ranking at ``position`` (1: same predictions, semantically coherent; 0: unrelated).
    """
    ranks = top_rankings(logits.float(), k)
    return rbo(ranks[context_positions], ranks[position], p)
