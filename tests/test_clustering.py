"""Torch k-means against a plain reference Lloyd, against scikit-learn, and the variance weights
against a direct computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.cluster import KMeans

from cofee_lib.clustering import (align_clusters, assign, cluster_variances, wide_local_trials, kmeans,
                                  kmeans_plusplus, sklearn_local_trials, variance_weights,
                                  weighted_cluster_loss)


def _blobs(n=3000, d=16, k=7, seed=0, spread=4.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(k, size=n)
    return (means[labels] + rng.normal(size=(n, d))).astype(np.float32)


def _overlapping(n=4000, d=24, groups=12, seed=0):
    """Anisotropic, overlapping groups of uneven sizes with a common offset (like span vectors):
    many points near cluster borders, so the bounds of algorithm="elkan" are put to work."""
    rng = np.random.default_rng(seed)
    sizes = 1 / np.arange(1, groups + 1)
    labels = rng.choice(groups, size=n, p=sizes / sizes.sum())
    spectrum = 1 / np.sqrt(np.arange(1, d + 1))
    means = rng.standard_normal((groups, d)) * spectrum * 2.0
    x = means[labels] + rng.standard_normal((n, d)) * spectrum * 1.5 + 3.0
    return (x * rng.choice([1.0, 1.6], size=(n, 1))).astype(np.float32)


def _reference_lloyd(x, centers, max_iter=300, tol=1e-4):
    """Textbook Lloyd in float64 (scipy distances), scikit-learn's stopping rule, the kit's empty-cluster rule."""
    x = np.asarray(x, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64).copy()
    k = c.shape[0]
    threshold = tol * x.var(axis=0).mean()
    old, strict = None, False
    for n_iter in range(1, max_iter + 1):
        d = cdist(x, c, "sqeuclidean")
        labels, dist = d.argmin(axis=1), d.min(axis=1)
        counts = np.bincount(labels, minlength=k)
        new = np.zeros_like(c)
        np.add.at(new, labels, x)
        new /= np.maximum(counts, 1)[:, None]
        empty = np.flatnonzero(counts == 0)
        if len(empty):  # the worst-served points, farthest first
            new[empty] = x[np.argsort(-dist, kind="stable")[: len(empty)]]
        shift = ((new - c) ** 2).sum()
        c = new
        if old is not None and np.array_equal(labels, old):
            strict = True
            break
        if shift <= threshold:
            break
        old = labels
    if not strict:
        labels = cdist(x, c, "sqeuclidean").argmin(axis=1)
    return labels, c, ((x - c[labels]) ** 2).sum(), n_iter


def _seeds(x, k, seed):
    """The k-means++ centres that ``kmeans(x, k, n_init=1, seed=seed)`` starts from."""
    return kmeans_plusplus(x, k, torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("algorithm", ["elkan", "lloyd"])
@pytest.mark.parametrize("data,k,seed", [("blobs", 7, 0), ("blobs", 12, 1), ("overlapping", 9, 2),
                                         ("overlapping", 23, 3)])
def test_same_iterations_as_a_plain_reference(data, k, seed, algorithm):
    x = torch.from_numpy(_blobs(seed=seed) if data == "blobs" else _overlapping(seed=seed))
    ours = kmeans(x, k, n_init=1, seed=seed, algorithm=algorithm)
    labels, centers, inertia, n_iter = _reference_lloyd(x.numpy(), _seeds(x, k, seed).numpy())
    assert torch.equal(ours.labels, torch.from_numpy(labels))
    assert ours.n_iter == n_iter
    assert np.allclose(ours.centers.numpy(), centers, rtol=1e-5, atol=1e-4)
    assert math.isclose(ours.inertia, inertia, rel_tol=1e-6)


def test_bounds_skip_most_distances_and_change_nothing():
    x = torch.from_numpy(_overlapping(n=6000, seed=4))
    fast = kmeans(x, 23, n_init=2, seed=4)
    plain = kmeans(x, 23, n_init=2, seed=4, algorithm="lloyd")
    assert torch.equal(fast.labels, plain.labels) and torch.equal(fast.centers, plain.centers)
    assert fast.n_iter == plain.n_iter > 10 and fast.restart == plain.restart
    # every point, every iteration (and once more after a stop on tol)
    assert plain.distance_rows in (x.shape[0] * plain.n_iter, x.shape[0] * (plain.n_iter + 1))
    assert fast.distance_rows < 0.5 * plain.distance_rows


def test_stops_at_a_fixed_point_with_tol_zero():
    x = torch.from_numpy(_overlapping(n=3000, seed=5))
    r = kmeans(x, 10, n_init=1, seed=0, tol=0.0)
    assert r.n_iter < 300
    labels, _ = assign(x, r.centers)  # one more Lloyd step changes nothing
    assert torch.equal(labels, r.labels)
    means = torch.stack([x[r.labels == j].mean(dim=0) for j in range(10)])
    assert torch.allclose(means, r.centers, atol=1e-5)


def test_empty_cluster_takes_the_worst_served_point():
    x = torch.from_numpy(_blobs(n=600, d=4, k=3, seed=6))
    start = torch.cat([x[[0, 1, 2]], torch.full((2, 4), 1e3)])  # two centres that win no point
    for algorithm in ("elkan", "lloyd"):
        r = kmeans(x, 5, init=start, algorithm=algorithm)
        labels, centers, inertia, n_iter = _reference_lloyd(x.numpy(), start.numpy())
        assert torch.equal(r.labels, torch.from_numpy(labels)) and r.n_iter == n_iter
        assert math.isclose(r.inertia, inertia, rel_tol=1e-6)
        assert torch.bincount(r.labels, minlength=5).min() > 0  # both were refilled
    with pytest.raises(ValueError):
        kmeans(x, 4, init=start)


def test_kmeans_is_deterministic_for_a_seed():
    x = torch.from_numpy(_overlapping(n=3000, seed=7))
    a, b = kmeans(x, 8, n_init=3, seed=11), kmeans(x, 8, n_init=3, seed=11)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centers, b.centers)
    assert a.inertia == b.inertia and a.n_iter == b.n_iter and a.restart == b.restart
    c = kmeans(x, 8, n_init=3, seed=12)
    assert not torch.equal(_seeds(x, 8, 11), _seeds(x, 8, 12)) and c.inertia > 0


def test_local_trials():
    assert sklearn_local_trials(23) == 5 and wide_local_trials(23) == 8 and wide_local_trials(3000) == 16
    x = torch.from_numpy(_overlapping(n=2000, seed=8))
    a = kmeans(x, 6, n_init=1, seed=0)
    manual = kmeans(x, 6, init=kmeans_plusplus(x, 6, torch.Generator().manual_seed(0), sklearn_local_trials(6)))
    assert torch.equal(a.labels, manual.labels)  # kmeans's default is scikit-learn's candidate count
    wide = kmeans(x, 6, n_init=1, seed=0, n_local_trials=wide_local_trials(6))
    manual = kmeans(x, 6, init=kmeans_plusplus(x, 6, torch.Generator().manual_seed(0), wide_local_trials(6)))
    assert torch.equal(wide.labels, manual.labels)


@pytest.mark.parametrize("k,tolerance", [(3, 1.03), (7, 1.001), (12, 1.03)])
def test_inertia_matches_sklearn(k, tolerance):
    # 7 true blobs: with K=7 both find the same optimum; with K != 7 each may stop in a
    # different local minimum, so a few percent either way is the honest tolerance.
    x = _blobs(k=7, seed=k)
    ours = kmeans(torch.from_numpy(x), k, n_init=4, seed=1)
    ref = KMeans(n_clusters=k, n_init=4, random_state=1).fit(x)
    assert ours.inertia <= ref.inertia_ * tolerance
    # the reported inertia is the real objective of the returned labels and centres
    direct = float(((torch.from_numpy(x) - ours.centers[ours.labels]) ** 2).sum())
    assert math.isclose(ours.inertia, direct, rel_tol=1e-4)


def test_kmeans_on_anisotropic_real_like_data_close_to_sklearn():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4000, 32)) @ rng.standard_normal((32, 32))).astype(np.float32)
    ours = kmeans(torch.from_numpy(x), 10, n_init=3, seed=0)
    ref = KMeans(n_clusters=10, n_init=3, random_state=0).fit(x)
    assert ours.inertia <= ref.inertia_ * 1.02


@pytest.mark.parametrize("k", [1, 5, 8, 23])
def test_assign_in_chunks_equals_full(k):
    x = torch.from_numpy(_blobs(n=1000))
    c = x[:k].clone() + 0.01  # 5 and 23 are padded to 8 and 24 centres inside
    l1, d1 = assign(x, c, chunk_size=64)
    l2, d2 = assign(x, c, chunk_size=10**6)
    assert torch.equal(l1, l2) and torch.allclose(d1, d2)
    brute = torch.cdist(x.double(), c.double()) ** 2
    assert torch.equal(l1, brute.argmin(dim=1))
    assert torch.allclose(d1.double(), brute.min(dim=1).values, rtol=1e-4, atol=1e-3)


def test_kmeans_is_seeded_and_handles_duplicates():
    x = torch.ones(50, 4)
    x[25:] = 2.0
    r = kmeans(x, 3, n_init=2, seed=5)  # only two distinct points, three clusters
    assert r.labels.shape == (50,) and r.inertia == pytest.approx(0.0, abs=1e-6)
    a, b = kmeans(x, 2, seed=9), kmeans(x, 2, seed=9)
    assert torch.equal(a.labels, b.labels)


def test_kmeans_rejects_bad_k():
    with pytest.raises(ValueError):
        kmeans(torch.zeros(3, 2), 4)


def test_variances_and_weights_match_a_direct_computation():
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 11.0], [10.0, 13.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    centers = torch.tensor([[1.0, 0.0], [10.0, 34 / 3]])
    v = cluster_variances(x, labels, centers)
    # cluster 0: 1 + 1 = 2; cluster 1: (4/3)^2 + (1/3)^2 + (5/3)^2 = 42/9
    assert torch.allclose(v, torch.tensor([2.0, 42 / 9], dtype=torch.float64))
    alpha, vs = variance_weights(x, labels, centers, mode="sum")
    inv = np.array([1 / 2.0, 9 / 42])
    expect = np.exp(inv) / np.exp(inv).sum()
    assert np.allclose(alpha.numpy(), expect, atol=1e-6)
    alpha_f, vf = variance_weights(x, labels, centers, mode="feature")
    vfe = np.array([2.0 / (2 * 2), (42 / 9) / (3 * 2)])
    assert np.allclose(vf.numpy(), vfe, atol=1e-6)
    assert np.allclose(alpha_f.numpy(), np.exp(1 / vfe) / np.exp(1 / vfe).sum(), atol=1e-6)


def test_sum_variance_weights_are_near_uniform_on_realistic_sizes():
    x = torch.from_numpy(_blobs(n=2000, d=384, k=8, seed=2))
    r = kmeans(x, 8, n_init=1, seed=0)
    alpha, _ = variance_weights(x, r.labels, r.centers, mode="sum")
    assert torch.allclose(alpha, torch.full((8,), 1 / 8), atol=1e-4)
    alpha_f, _ = variance_weights(x, r.labels, r.centers, mode="feature")
    assert float(alpha_f.max() - alpha_f.min()) > float(alpha.max() - alpha.min())


def test_empty_and_zero_variance_clusters():
    x = torch.tensor([[0.0], [1.0], [5.0]])
    labels = torch.tensor([0, 0, 1])  # cluster 1 is a single point (V=0), cluster 2 is empty
    centers = torch.tensor([[0.5], [5.0], [100.0]])
    alpha, v = variance_weights(x, labels, centers)
    assert alpha[2] == 0 and torch.isfinite(alpha).all()
    assert alpha[0] == pytest.approx(alpha[1])  # zero variance is floored to the smallest positive V
    assert float(alpha.sum()) == pytest.approx(1.0)


def test_weighted_loss_reduces_to_cross_entropy_with_unit_weights():
    torch.manual_seed(0)
    logits = torch.randn(6, 4)
    y = torch.tensor([0, 1, 2, 3, 1, 0])
    plain = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(weighted_cluster_loss(logits, y, torch.ones(4)), plain)
    alpha = torch.tensor([0.1, 0.2, 0.3, 0.4])
    manual = -(alpha[y] * torch.log_softmax(logits, -1)[torch.arange(6), y]).mean()
    assert torch.allclose(weighted_cluster_loss(logits, y, alpha), manual)
    assert weighted_cluster_loss(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long), alpha) == 0


def test_align_clusters_recovers_a_permutation():
    old = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    new = old[[2, 0, 1]] + 0.1
    perm = align_clusters(old, new)
    assert perm.tolist() == [2, 0, 1]
