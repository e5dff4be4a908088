"""Torch k-means against scikit-learn, and the variance weights against a direct computation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from cofee_lib.clustering import (align_clusters, assign, cluster_variances, kmeans,
                                  variance_weights, weighted_cluster_loss)


def _blobs(n=3000, d=16, k=7, seed=0, spread=4.0):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=spread, size=(k, d))
    labels = rng.integers(k, size=n)
    return (means[labels] + rng.normal(size=(n, d))).astype(np.float32)


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


def test_assign_in_chunks_equals_full():
    x = torch.from_numpy(_blobs(n=1000))
    c = x[:5].clone()
    l1, d1 = assign(x, c, chunk_size=64)
    l2, d2 = assign(x, c, chunk_size=10**6)
    assert torch.equal(l1, l2) and torch.allclose(d1, d2)
    brute = torch.cdist(x.double(), c.double()) ** 2
    assert torch.equal(l1, brute.argmin(dim=1))


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
