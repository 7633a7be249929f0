"""Score-CAM with ``rank="cluster"`` and its k-means, against closed forms.

The planted model's layer is a fixed stack of channel maps ``A`` (scaled and shifted copies of a
few patterns, and dead channels), and its logits are linear in the input, ``W x``: a channel's
Score-CAM score is ``softmax(W (x * m_k))_t`` with ``m_k = minmax(bilinear(A_k))``, written here
in numpy. Lloyd's rounds are checked against scipy's ``kmeans2`` from the same start; k-means++
seeding against its sampling law.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.cluster.vq import kmeans2
from torch import nn

import vlx.attribute  # noqa: F401  (registers the methods)
from vlx.attribute.base import get_method
from vlx.attribute.cam import kmeans_plus_plus, kmeans_representatives, lloyd
from vlx.models.classifier import ImageClassifier, Preprocess
from vlx.types import ClassTarget

from test_oracle_cam import bilinear          # the numpy bilinear oracle (half-pixel centres) of the CAM tests

S, G, CLASSES = 16, 4, 3


def patterns() -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[0:G, 0:G].astype(np.float64)
    return {"h": xx + 0.1 * yy, "v": yy + 0.2 * xx, "blob": -((yy - 1.5) ** 2 + (xx - 1.5) ** 2),
            "blob2": -((yy - 1.5) ** 2 + (xx - 1.5) ** 2) + 0.01 * np.sin(3 * xx + yy)}


def layer_maps() -> np.ndarray:
    """(C, G, G): h, 2h+1, v, v/2+3, blob+9, blob2+9, 3 blob2+27, a dead varying map, a dead constant."""
    p = patterns()
    return np.stack([p["h"], 2 * p["h"] + 1, p["v"], 0.5 * p["v"] + 3, p["blob"] + 9, p["blob2"] + 9,
                     3 * (p["blob2"] + 9), -p["h"] - 1, -np.ones((G, G))])


class Planted(nn.Module):
    def __init__(self, a: np.ndarray, w: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("a", torch.tensor(a, dtype=torch.float32))
        self.register_buffer("w", torch.tensor(w, dtype=torch.float32))
        self.layer = nn.Identity()
        self.images = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.images += x.shape[0]
        a = self.layer(self.a.expand(x.shape[0], -1, -1, -1).clone())
        return x.flatten(1) @ self.w.T + 0 * a.sum((1, 2, 3))[:, None]


@pytest.fixture()
def planted():
    w = np.random.default_rng(1).normal(size=(CLASSES, 3 * S * S)) * 0.5
    module = Planted(layer_maps(), w)
    model = ImageClassifier(module, "planted-pattern", "Planted pattern", [f"c{i}" for i in range(CLASSES)],
                            Preprocess((S, S), (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)), torch.device("cpu"))
    x = torch.rand((1, 3, S, S), generator=torch.Generator().manual_seed(2))
    return model, module, x, w


def np_scores(a: np.ndarray, w: np.ndarray, x: np.ndarray, t: int, weights: str) -> np.ndarray:
    up = bilinear(a, S)
    lo, hi = up.min((1, 2), keepdims=True), up.max((1, 2), keepdims=True)
    m = np.where(hi > lo, (up - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0)
    logits = (x[None] * m[:, None]).reshape(len(a), -1) @ w.T
    if weights == "probability":
        e = np.exp(logits - logits.max(1, keepdims=True))
        return (e / e.sum(1, keepdims=True))[:, t]
    return logits[:, t]


def np_map(a: np.ndarray, s: np.ndarray, weights: str) -> np.ndarray:
    if weights == "channel_softmax":
        s = np.exp(s - s.max())
        s = s / s.sum()
    return np.maximum((s[:, None, None] * np.maximum(a, 0)).sum(0), 0)


def test_cluster_rank_with_as_many_channels_as_masks_is_the_full_method(planted):
    model, module, x, w = planted
    a, xn = layer_maps(), x[0].double().numpy()
    t = int(np.argmax(xn.reshape(-1) @ w.T))
    # probability: 4 distinct live masks (h, v, blob, blob2; copies are scaled and shifted)
    # channel_softmax: those and the two dead channels' masks (1 - minmax(h), all zero)
    for weights, k, scored in (("probability", 4, 4), ("channel_softmax", 6, 6)):
        s = np_scores(a, w, xn, t, weights)
        expected = np_map(a, s, weights)
        module.images = 0
        ours = get_method("scorecam", channels=k, batch_size=2, weights=weights).attribute(
            model, x, ClassTarget(t), "layer")[0].double().numpy()
        assert module.images == 1 + scored, (weights, module.images)        # one capture pass
        np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-7)
        module.images = 0
        full = get_method("scorecam", batch_size=2, weights=weights).attribute(model, x, ClassTarget(t), "layer")
        assert module.images == 1 + len(a)
        np.testing.assert_allclose(full[0].double().numpy(), expected, rtol=1e-5, atol=1e-7)


def test_cluster_rank_lends_each_channel_its_clusters_score(planted):
    # 3 clusters of the 4 live masks: blob and blob2 nearly coincide; their cluster (blob, blob2,
    # 3 blob2) is scored by blob2 (channel 5, nearest the centroid), whose score blob takes.
    model, module, x, w = planted
    a, xn = layer_maps(), x[0].double().numpy()
    t = 1
    s = np_scores(a, w, xn, t, "probability")
    lent = s.copy()
    lent[4] = s[5]
    lent[7:] = 0.0                                                          # dead: left out
    module.images = 0
    ours = get_method("scorecam", channels=3, batch_size=4).attribute(model, x, ClassTarget(t), "layer")
    assert module.images == 1 + 3
    np.testing.assert_allclose(ours[0].double().numpy(), np_map(a, lent, "probability"), rtol=1e-5, atol=1e-7)
    assert not np.allclose(np_map(a, lent, "probability"), np_map(a, s, "probability"))   # the lending shows


def test_kmeans_representatives_of_few_distinct_rows_by_hand():
    v = torch.tensor([[1.0, 0], [0, 1], [1, 0], [5, 5], [0, 1]])
    reps, nearest = kmeans_representatives(v, 3)
    assert reps.tolist() == [0, 1, 3] and nearest.tolist() == [0, 1, 0, 2, 1]
    reps, nearest = kmeans_representatives(v, 4)
    assert reps.tolist() == [0, 1, 3]


def test_kmeans_representatives_find_separated_blobs_for_every_seed():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    members = torch.tensor([0] * 12 + [1] * 5 + [2] * 9)
    v = centres[members] + 0.1 * torch.randn((len(members), 2), generator=g, dtype=torch.float64).float()
    for seed in range(20):
        reps, nearest = kmeans_representatives(v, 3, seed=seed)
        assert len(reps) == 3 and sorted(members[reps].tolist()) == [0, 1, 2], seed
        assert torch.equal(members[reps][nearest], members)
        for r in reps:                                     # the member nearest its blob's mean
            blob = np.nonzero((members == members[r]).numpy())[0]
            mean = v[blob].double().mean(0)
            assert int(r) == int(blob[np.argmin(((v[blob].double() - mean) ** 2).sum(1).numpy())])


def test_lloyd_equals_scipys_kmeans2_from_the_same_start():
    rng = np.random.default_rng(3)
    v = np.concatenate([rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) + 3])
    start = v[[0, 1, 2, 40]]
    for iters in (1, 2, 7):
        ref, _ = kmeans2(v, start.copy(), iter=iters, minit="matrix")
        ours = lloyd(torch.from_numpy(v), torch.from_numpy(start.copy()), iters)
        np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-12, atol=1e-12)
    # a centroid left without members stays where it was
    far = np.concatenate([start[:3], [[1e3, 1e3, 1e3, 1e3]]])
    out = lloyd(torch.from_numpy(v), torch.from_numpy(far), 3).numpy()
    np.testing.assert_array_equal(out[3], far[3])
    np.testing.assert_array_equal(lloyd(torch.from_numpy(v), torch.from_numpy(start), 0).numpy(), start)


def test_kmeans_plus_plus_follows_its_sampling_law():
    # ten rows at 0 and one at 10 (1-d): the first centre is uniform (the outlier 1 time in 11);
    # the second is the outlier whenever the first was not (it alone is at a positive distance)
    v = torch.tensor([[0.0]] * 10 + [[10.0]], dtype=torch.float64)
    firsts = []
    for seed in range(1100):
        c = kmeans_plus_plus(v, 2, torch.Generator().manual_seed(seed)).tolist()
        assert 10 in c and c[0] != c[1], c
        firsts.append(c[0])
    outlier_first = sum(f == 10 for f in firsts)
    assert 100 - 4 * 9.5 < outlier_first < 100 + 4 * 9.5                 # binomial(1100, 1/11) within 4 sd
    assert len(set(f for f in firsts if f != 10)) == 10                 # every zero row can come first
    # three points on a line at 0, 1, 10 with the first at 0: P(10) = 100/101 for the second
    v3 = torch.tensor([[0.0], [1.0], [10.0]], dtype=torch.float64)
    second = [kmeans_plus_plus(v3, 2, torch.Generator().manual_seed(s)).tolist() for s in range(3000)]
    from_zero = [c[1] for c in second if c[0] == 0]
    assert 0.97 < sum(c == 2 for c in from_zero) / len(from_zero) <= 1.0


def test_distances_of_equal_rows_are_exactly_zero():
    from vlx.attribute.cam import _dist

    v = torch.rand(60, 49, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(_dist(v, v).diagonal(), torch.zeros(60, dtype=torch.float64))   # the matrix-product path is not
    np.testing.assert_allclose(_dist(v[:3], v[3:5]).numpy(),
                               np.sqrt(((v[:3, None].numpy() - v[None, 3:5].numpy()) ** 2).sum(-1)), rtol=1e-12)


def test_kmeans_depends_on_its_seed_alone():
    v = torch.rand(60, 49, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    runs = []
    for global_seed in (1, 2):
        torch.manual_seed(global_seed)
        runs.append((kmeans_representatives(v, 5), kmeans_plus_plus(v, 5, torch.Generator().manual_seed(4))))
    (a, pa), (b, pb) = runs
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) and torch.equal(pa, pb)
    explicit = kmeans_representatives(v, 5, iters=20, seed=0)
    assert torch.equal(a[0], explicit[0])                                        # the defaults
    assert not torch.equal(a[0], kmeans_representatives(v, 5, seed=1)[0])       # the seed matters here


def test_lloyd_moves_a_single_members_centroid_onto_it():
    rng = np.random.default_rng(5)
    v = np.concatenate([rng.normal(size=(20, 3)), [[50.0, 50.0, 50.0]]])
    start = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [40.0, 40.0, 40.0]])
    ref, _ = kmeans2(v, start.copy(), iter=2, minit="matrix")
    ours = lloyd(torch.from_numpy(v), torch.from_numpy(start), 2).numpy()
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(ours[2], v[-1])


def test_cluster_rank_on_a_dead_layer_scores_nothing(planted):
    model, module, x, w = planted
    module.a = -torch.ones_like(module.a) - torch.rand(module.a.shape, generator=torch.Generator().manual_seed(0))
    module.images = 0
    ours = get_method("scorecam", channels=2).attribute(model, x, ClassTarget(0), "layer")
    assert module.images == 1 and torch.equal(ours, torch.zeros_like(ours))     # the full map is 0 too
    reps, nearest = kmeans_representatives(torch.zeros((0, 5)), 3)
    assert reps.shape == (0,) and nearest.shape == (0,) and reps.dtype == torch.long
