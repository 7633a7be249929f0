"""ARC's RBO and rankings against formulas written here: the extrapolated RBO of Webber, Moffat &
Zobel (2010) as plain set arithmetic, values worked by hand, and top-k / relevance by numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlx.mllm.arc import arc_relevance, rbo, rbo_reference, top_rankings


def _rbo_ext(a, b, p):
    """RBO_ext = X_k/k p^k + (1-p)/p sum_d X_d/d p^d, X_d = |a[:d] & b[:d]| (written independently)."""
    k = len(a)
    s = sum(len(set(a[:d]).intersection(b[:d])) / d * p ** d for d in range(1, k + 1))
    return len(set(a).intersection(b)) / k * p ** k + (1 - p) / p * s


def test_rbo_hand_values():
    # a=[1,2], b=[2,1], p=1/2: X_1=0, X_2=2 -> 2/2*1/4 + 1*(0 + 2/2*1/4) = 1/2
    assert float(rbo(torch.tensor([1, 2]), torch.tensor([2, 1]), p=0.5)) == pytest.approx(0.5, abs=1e-7)
    # a=[1,2,3], b=[1,4,5], p=1/2: X=1,1,1 -> 1/3*1/8 + (1/2 + 1/2*1/4 + 1/3*1/8) = 0.7083...
    want = 1 / 24 + 0.5 + 0.125 + 1 / 24
    assert float(rbo(torch.tensor([1, 2, 3]), torch.tensor([1, 4, 5]), p=0.5)) == pytest.approx(want, abs=1e-7)
    assert rbo_reference([1, 2, 3], [1, 4, 5], 0.5) == pytest.approx(want, abs=1e-12)
    # one item, identical / different
    assert float(rbo(torch.tensor([7]), torch.tensor([7]), p=0.3)) == pytest.approx(1.0, abs=1e-7)
    assert float(rbo(torch.tensor([7]), torch.tensor([8]), p=0.3)) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("p", [0.9, 0.5, 0.2, 0.97])
def test_rbo_batched_against_set_formula(p):
    rng = np.random.default_rng(1)
    k = 12
    a = np.stack([rng.permutation(20)[:k] for _ in range(3 * 4)]).reshape(3, 4, k)
    b = np.stack([rng.permutation(20)[:k] for _ in range(3 * 4)]).reshape(3, 4, k)
    got = rbo(torch.tensor(a), torch.tensor(b), p=p)
    assert got.dtype == torch.float32 and got.shape == (3, 4)
    want = np.array([[_rbo_ext(list(a[i, j]), list(b[i, j]), p) for j in range(4)] for i in range(3)])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    # a single ranking b broadcast against a batch
    got1 = rbo(torch.tensor(a[0]), torch.tensor(b[0, 0]), p=p).numpy()
    np.testing.assert_allclose(got1, [_rbo_ext(list(r), list(b[0, 0]), p) for r in a[0]], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose([rbo_reference(list(r), list(b[0, 0]), p) for r in a[0]], got1, rtol=1e-6)


def test_rbo_default_persistence_is_0_9():
    a, b = [3, 1, 4, 0, 2], [0, 1, 2, 3, 4]
    want = _rbo_ext(a, b, 0.9)
    assert float(rbo(torch.tensor(a), torch.tensor(b))) == pytest.approx(want, abs=1e-7)
    assert rbo_reference(a, b) == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("p", [0.0, 1.0, -0.1, 1.5])
def test_rbo_persistence_outside_open_interval(p):
    with pytest.raises(ValueError, match=r"^RBO persistence p must be in \(0, 1\)$"):
        rbo(torch.tensor([0, 1]), torch.tensor([1, 0]), p=p)


def test_top_rankings_and_relevance_by_numpy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(6, 9)).astype(np.float32)
    order = np.argsort(-logits, axis=-1)
    np.testing.assert_array_equal(top_rankings(torch.tensor(logits), 4).numpy(), order[:, :4])
    np.testing.assert_array_equal(top_rankings(torch.tensor(logits), 50).numpy(), order)  # k > V: all of V
    big = rng.normal(size=(2, 60)).astype(np.float32)
    assert top_rankings(torch.tensor(big)).shape == (2, 50)  # default k = 50
    ctx = [0, 2, 3]
    for k, p in ((4, 0.9), (9, 0.5)):
        got = arc_relevance(torch.tensor(logits, dtype=torch.float64), torch.tensor(ctx), 5, k=k, p=p)
        want = [_rbo_ext(list(order[j, :k]), list(order[5, :k]), p) for j in ctx]
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-7)
    # defaults k = 50, p = 0.9 on a 60-word vocabulary
    big = rng.normal(size=(4, 60)).astype(np.float32)
    o = np.argsort(-big, axis=-1)
    got = arc_relevance(torch.tensor(big), torch.tensor([0, 1, 2]), 3).numpy()
    np.testing.assert_allclose(got, [_rbo_ext(list(o[j, :50]), list(o[3, :50]), 0.9) for j in range(3)],
                               rtol=1e-6, atol=1e-7)


def test_top_rankings_any_leading_shape():
    rng = np.random.default_rng(3)
    one = rng.normal(size=7).astype(np.float32)                       # (V,)
    np.testing.assert_array_equal(top_rankings(torch.tensor(one), 3).numpy(), np.argsort(-one)[:3])
    np.testing.assert_array_equal(top_rankings(torch.tensor(one), 9).numpy(), np.argsort(-one))
    three = rng.normal(size=(2, 3, 5)).astype(np.float32)             # (..., V) with two leading dims
    np.testing.assert_array_equal(top_rankings(torch.tensor(three), 4).numpy(), np.argsort(-three, -1)[..., :4])


def test_rbo_deep_rankings_in_double_precision():
    # p = 0.999 at depth 1000: rounding p to float32 before p^d would move the result by ~1e-5
    rng = np.random.default_rng(4)
    k, p = 1000, 0.999
    a = rng.permutation(1200)[:k]
    b = np.r_[a[:300], rng.permutation(a[300:])]
    got = float(rbo(torch.tensor(a), torch.tensor(b), p=p))
    seen_a, seen_b, x, s = set(), set(), 0, 0.0
    for d in range(1, k + 1):               # incremental overlap X_d, float64
        u, v = int(a[d - 1]), int(b[d - 1])
        x += (u in seen_b) + (v in seen_a) + (u == v)
        seen_a.add(u)
        seen_b.add(v)
        s += x / d * p ** d
    want = x / k * p ** k + (1 - p) / p * s
    assert got == pytest.approx(want, rel=5e-7)
