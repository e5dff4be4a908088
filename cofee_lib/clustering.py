"""k-means on the device and the variance weights of FET (paper Sec. 4.3, Eq. 6-10).

Everything here runs with torch on whatever device the input tensor lives on
(a GPU when there is one, the CPU otherwise). Distances are computed in chunks
of rows, so millions of span vectors fit in memory: the largest temporary is
``chunk_size x K`` floats.

Conventions
-----------
* ``x`` is an ``[N, d]`` float tensor of span representations e_i.
* Cluster labels are ``int64`` in ``[0, K)``.
* Inertia is the k-means objective: the sum over points of the squared
  Euclidean distance to the assigned centre (scikit-learn's ``inertia_``).
* ``V_k = sum_{i in C_k} ||e_i - m_k||^2`` is the paper's intra-cluster
  variance: a **sum** over the cluster, so ``sum_k V_k == inertia``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass
class KMeansResult:
    labels: torch.Tensor  # [N] int64
    centers: torch.Tensor  # [K, d]
    inertia: float
    n_iter: int
    restart: int  # which restart won (0-based)


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=1)


def assign(x: torch.Tensor, centers: torch.Tensor, chunk_size: int = 65536,
           x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre for every row of ``x``: ``(labels [N], squared distances [N])``.

    Uses ``||x||^2 - 2 x.c + ||c||^2`` over chunks of ``chunk_size`` rows.
    """
    n = x.shape[0]
    x_sq = _sq_norms(x) if x_sq is None else x_sq
    c_sq = _sq_norms(centers)
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    dists = torch.empty(n, dtype=x.dtype, device=x.device)
    for lo in range(0, n, chunk_size):
        hi = min(n, lo + chunk_size)
        # [K, chunk]: with few centres, centres @ x.T runs ~1.35x faster on CPU BLAS than x @ centres.T
        d = torch.addmm(c_sq.unsqueeze(1), centers, x[lo:hi].t(), alpha=-2.0)
        d.add_(x_sq[lo:hi].unsqueeze(0))
        best, idx = d.min(dim=0)
        labels[lo:hi] = idx
        dists[lo:hi] = best.clamp_min_(0.0)
    return labels, dists


def _min_sq_dist_to(x: torch.Tensor, x_sq: torch.Tensor, c: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Squared distance of every row of ``x`` to each of the rows of ``c``: ``[N, m]``."""
    c_sq = _sq_norms(c)
    out = torch.empty(x.shape[0], c.shape[0], dtype=x.dtype, device=x.device)
    for lo in range(0, x.shape[0], chunk_size):
        hi = min(x.shape[0], lo + chunk_size)
        d = torch.addmm(c_sq.unsqueeze(0), x[lo:hi], c.t(), alpha=-2.0)
        d.add_(x_sq[lo:hi].unsqueeze(1))
        out[lo:hi] = d.clamp_min_(0.0)
    return out


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator,
                    n_local_trials: int | None = None, chunk_size: int = 65536,
                    x_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    Each new centre is the best of ``n_local_trials`` candidates drawn with
    probability proportional to the squared distance to the nearest chosen
    centre (default ``2 + ln k``, as scikit-learn does).
    """
    n = x.shape[0]
    x_sq = _sq_norms(x) if x_sq is None else x_sq
    trials = n_local_trials or 2 + int(math.log(k))
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    centers = [x[first]]
    closest = _min_sq_dist_to(x, x_sq, x[first:first + 1], chunk_size)[:, 0]
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: take any point
            cand = torch.randint(n, (trials,), generator=generator, device="cpu").to(x.device)
        else:
            probs = (closest / total).double().cpu()
            cand = torch.multinomial(probs, trials, replacement=True, generator=generator).to(x.device)
        d_cand = _min_sq_dist_to(x, x_sq, x[cand], chunk_size)  # [N, trials]
        potentials = torch.minimum(d_cand, closest.unsqueeze(1)).sum(dim=0)
        best = int(potentials.argmin())
        centers.append(x[cand[best]])
        closest = torch.minimum(closest, d_cand[:, best])
    return torch.stack(centers)


def _update_centers(x: torch.Tensor, labels: torch.Tensor, k: int, old: torch.Tensor,
                    dists: torch.Tensor) -> torch.Tensor:
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    sums.index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k).to(x.dtype)
    centers = sums / counts.clamp_min(1).unsqueeze(1)
    empty = (counts == 0).nonzero().flatten()
    if len(empty):
        # an empty cluster takes the point that is currently worst served
        far = torch.topk(dists, len(empty)).indices
        centers[empty] = x[far]
    return centers


def kmeans(x: torch.Tensor, k: int, n_init: int = 3, max_iter: int = 300, tol: float = 1e-4,
           seed: int = 0, chunk_size: int = 65536, progress: bool = False) -> KMeansResult:
    """Lloyd's k-means with greedy k-means++ seeding and ``n_init`` restarts; the lowest inertia wins.

    ``tol`` is relative, as in scikit-learn: iterations stop when the squared
    movement of the centres is at most ``tol`` times the mean per-feature
    variance of ``x``. Runs on ``x.device``; computations in float32 (inputs in
    lower precision are up-cast).
    """
    if x.ndim != 2:
        raise ValueError(f"kmeans expects an [N, d] tensor, got shape {tuple(x.shape)}")
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"kmeans needs 1 <= k <= number of points; got k={k}, N={n}")
    x = x.float()
    x_sq = _sq_norms(x)
    threshold = tol * float(x.var(dim=0, unbiased=False).mean()) if n > 1 else 0.0
    generator = torch.Generator(device="cpu").manual_seed(seed)
    best: KMeansResult | None = None
    restarts = range(n_init)
    if progress:
        from tqdm.auto import tqdm

        restarts = tqdm(restarts, desc=f"k-means K={k}", unit="restart")
    for restart in restarts:
        centers = kmeans_plusplus(x, k, generator, chunk_size=chunk_size, x_sq=x_sq)
        n_iter = 0
        for n_iter in range(1, max_iter + 1):
            labels, dists = assign(x, centers, chunk_size, x_sq)
            new_centers = _update_centers(x, labels, k, centers, dists)
            shift = float(((new_centers - centers) ** 2).sum())
            centers = new_centers
            if shift <= threshold:
                break
        labels, dists = assign(x, centers, chunk_size, x_sq)
        inertia = float(dists.double().sum())
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels, centers, inertia, n_iter, restart)
    return best


def cluster_variances(x: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """``V_k = sum_{i in C_k} ||e_i - m_k||^2`` for every cluster k (0 for an empty cluster)."""
    k = centers.shape[0]
    sq = ((x.float() - centers[labels]) ** 2).sum(dim=1)
    out = torch.zeros(k, dtype=torch.float64, device=x.device)
    out.index_add_(0, labels, sq.double())
    return out


def variance_weights(x: torch.Tensor, labels: torch.Tensor, centers: torch.Tensor,
                     mode: str = "sum") -> tuple[torch.Tensor, torch.Tensor]:
    """The per-cluster weights alpha_k = softmax_k(1 / V_k) of Eq. 10; returns ``(alpha, V)``.

    ``mode="sum"`` (default, the paper's formula): ``V_k`` is the sum of squared
    distances in cluster k. With hundreds of points of dimension 384-768, V_k is
    large, 1/V_k tiny, and alpha is close to uniform (1/K each).

    ``mode="feature"`` (the authors' code): ``V_k`` is the per-feature variance,
    the sum divided by ``|C_k| * d``; 1/V_k is then of order one and alpha
    differs visibly between clusters.

    Empty clusters get alpha 0 (no point carries their label). A cluster whose
    variance is 0 (one point, or identical points) would get 1/0: its V is
    raised to the smallest positive V among the clusters, so it is as
    trusted as the most compact real cluster, not infinitely more.
    """
    if mode not in ("sum", "feature"):
        raise ValueError(f"variance mode must be 'sum' or 'feature', got {mode!r}")
    k = centers.shape[0]
    v = cluster_variances(x, labels, centers)
    counts = torch.bincount(labels, minlength=k).to(v.dtype)
    if mode == "feature":
        v = v / (counts.clamp_min(1) * x.shape[1])
    present = counts > 0
    positive = v[present & (v > 0)]
    floor = positive.min() if len(positive) else torch.tensor(1.0, dtype=v.dtype, device=v.device)
    v_safe = torch.where(v > 0, v, floor)
    inv = torch.where(present, 1.0 / v_safe, torch.full_like(v, -math.inf))
    alpha = torch.softmax(inv, dim=0)
    return alpha.float(), v.float()


def weighted_cluster_loss(logits: torch.Tensor, pseudo_labels: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """L_clus of Eq. 9: ``-(1/M) sum_i alpha_{y_i} log P_c(y_i | e_i)``.

    ``logits`` is ``[M, K]`` (W_c e_i + b_c), ``pseudo_labels`` ``[M]``, ``alpha`` ``[K]``.
    With ``alpha`` all ones this is Eq. 7, the plain cross-entropy.
    """
    if logits.shape[0] == 0:
        return logits.sum() * 0.0
    logp = torch.log_softmax(logits.float(), dim=-1)
    picked = logp.gather(1, pseudo_labels.view(-1, 1)).squeeze(1)
    return -(alpha.to(logp.device)[pseudo_labels] * picked).mean()


def align_clusters(old_centers: torch.Tensor, new_centers: torch.Tensor) -> torch.Tensor:
    """A permutation ``perm`` so that new cluster ``j`` becomes cluster ``perm[j]``.

    Cluster ids are arbitrary and change between clusterings. FET keeps one
    K-way head across epochs; to keep its rows meaningful, each new cluster is
    matched to the old cluster with the nearest centre (Hungarian assignment on
    squared centre distances, scipy's ``linear_sum_assignment``).
    """
    from scipy.optimize import linear_sum_assignment

    cost = torch.cdist(new_centers.double().cpu(), old_centers.double().cpu()) ** 2
    rows, cols = linear_sum_assignment(cost.numpy())
    perm = torch.empty(new_centers.shape[0], dtype=torch.long)
    perm[torch.as_tensor(rows)] = torch.as_tensor(cols)
    return perm
