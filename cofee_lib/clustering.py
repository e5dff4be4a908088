"""k-means on the device and the variance weights of FET (paper Sec. 4.3, Eq. 6-10).

Everything here runs with torch on whatever device the input tensor lives on
(a GPU when there is one, the CPU otherwise). Distances are computed in blocks
of rows, so millions of span vectors fit in memory: the largest temporaries are
a ``block x K`` block of distances and, for the bounds of :func:`kmeans`, about
``(K + 1) x N`` floats (6% of ``x`` for d = 384, K = 23).

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


#: The centres are padded to a multiple of this many rows (with centres that can never win) for the
#: distance GEMM: MKL's sgemm runs a [24, d] x [d, b] product ~1.2x faster than a [23, d] one.
_K_MULTIPLE = 8
#: Rows per block of the distance computation: the ``[K, block]`` block of distances stays in the
#: CPU cache between the GEMM that writes it and the argmin that reads it.
_BLOCK = 4096
#: Safety margin of the bounds of :class:`_Lloyd`, relative to ``||x||^2 + max ||c||^2`` (~80 float32
#: ulps): a point is skipped only when its centre wins by more than the float32 error of the distance
#: formula, so skipping never changes a label that a full float32 computation would give.
_BOUND_SLACK = 1e-5
#: Above this share of points to re-examine, a pass over all rows is cheaper than gathering them.
_FULL_PASS_SHARE = 0.5
#: Above this share of points that changed cluster, the cluster sums are recomputed, not updated.
_RESUM_SHARE = 0.25

ALGORITHMS = ("elkan", "lloyd")


@dataclass
class KMeansResult:
    labels: torch.Tensor  # [N] int64
    centers: torch.Tensor  # [K, d]
    inertia: float
    n_iter: int
    restart: int  # which restart won (0-based)
    #: point-to-all-centres distance rows the winning restart computed: N per iteration (and N for
    #: the final assignment after a stop on ``tol``) with ``algorithm="lloyd"``, fewer with ``"elkan"``
    distance_rows: int = 0


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(dim=1)


def _block_rows(chunk_size: int) -> int:
    return max(1, min(int(chunk_size), _BLOCK))


def _padded(centers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(centres padded to a multiple of _K_MULTIPLE rows, their squared norms)``; padding rows have norm +inf."""
    k = centers.shape[0]
    kp = -(-k // _K_MULTIPLE) * _K_MULTIPLE
    c_sq = _sq_norms(centers)
    if kp == k:
        return centers.contiguous(), c_sq
    cp = torch.zeros(kp, centers.shape[1], dtype=centers.dtype, device=centers.device)
    cp[:k] = centers
    pad_sq = torch.full((kp,), math.inf, dtype=c_sq.dtype, device=c_sq.device)
    pad_sq[:k] = c_sq
    return cp, pad_sq


def assign(x: torch.Tensor, centers: torch.Tensor, chunk_size: int = 65536,
           x_sq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centre for every row of ``x``: ``(labels [N], squared distances [N])``.

    Uses ``||x||^2 - 2 x.c + ||c||^2`` in blocks of at most ``chunk_size`` rows, in the layout that
    suits BLAS with few centres: ``centres @ x_block.T`` gives a ``[K, block]`` block (~1.35x faster
    than ``x_block @ centres.T`` on CPU), with K padded to a multiple of 8. The argmin needs only
    ``||c||^2 - 2 x.c``; ``||x||^2`` is added to the winning entry alone.
    """
    n = x.shape[0]
    x_sq = _sq_norms(x) if x_sq is None else x_sq
    cp, c_sq = _padded(centers)
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    dists = torch.empty(n, dtype=x.dtype, device=x.device)
    step = _block_rows(chunk_size)
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        d = torch.addmm(c_sq.unsqueeze(1), cp, x[lo:hi].t(), alpha=-2.0)
        best, idx = d.min(dim=0)
        labels[lo:hi] = idx
        dists[lo:hi] = best.add_(x_sq[lo:hi]).clamp_min_(0.0)
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


def sklearn_local_trials(k: int) -> int:
    """scikit-learn's number of candidates per centre in greedy k-means++: ``2 + floor(ln k)``."""
    return 2 + int(math.log(k))


def wide_local_trials(k: int) -> int:
    """A wider k-means++ search, opt-in: scikit-learn's candidate count rounded up to a multiple of 8.

    8 for K = 23 (scikit-learn: 5). Not the default, because it changes which centres are drawn and
    so the FET clusterings of every recorded result; pass ``n_local_trials=wide_local_trials(k)``
    to :func:`kmeans` to use it. The ``[N, trials]`` distance product of each new centre costs
    little more for 8 candidates than for 5 (+0.04 s per restart on 20k x 384 vectors, 1 thread,
    against ~0.25 s for the Lloyd iterations of a restart), and more candidates give better seeds:
    best-of-3 inertia over scikit-learn's, mean of 8-10 seeds, on three synthetic sets of 8k-12k
    span-like vectors (60 Zipf-sized anisotropic groups, offset, d = 384, K = 23): 1.0025, 1.0009
    and 1.0004 with 5 candidates; 0.9982, 0.9981 and 0.9999 with 8; 0.9962, 0.9996 and 0.9970
    with 16, for 2.5x the seeding time of 5. Single seeds scatter by +-1% either way.
    """
    return -(-sklearn_local_trials(k) // 8) * 8


def kmeans_plusplus(x: torch.Tensor, k: int, generator: torch.Generator,
                    n_local_trials: int | None = None, chunk_size: int = 65536,
                    x_sq: torch.Tensor | None = None) -> torch.Tensor:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007).

    Each new centre is the best of ``n_local_trials`` candidates drawn with
    probability proportional to the squared distance to the nearest chosen
    centre (default ``2 + ln k``, as scikit-learn does). "Best" is the candidate that leaves the lowest
    sum of squared distances to the nearest centre.
    """
    n = x.shape[0]
    x_sq = _sq_norms(x) if x_sq is None else x_sq
    trials = n_local_trials or sklearn_local_trials(k)
    step = max(1, min(int(chunk_size), 16384))
    first = torch.randint(n, (1,), generator=generator, device="cpu").item()
    centers = [x[first]]
    closest = _min_sq_dist_to(x, x_sq, x[first:first + 1], chunk_size)[:, 0]
    d_cand = torch.empty(n, trials, dtype=x.dtype, device=x.device)
    for _ in range(1, k):
        total = closest.sum()
        if total <= 0:  # fewer distinct points than k: take any point
            cand = torch.randint(n, (trials,), generator=generator, device="cpu").to(x.device)
        else:
            probs = (closest / total).double().cpu()
            cand = torch.multinomial(probs, trials, replacement=True, generator=generator).to(x.device)
        c = x[cand]
        c_sq = _sq_norms(c)
        potentials = torch.zeros(trials, dtype=x.dtype, device=x.device)
        for lo in range(0, n, step):  # squared distances to the candidates and the potentials, block by block
            hi = min(n, lo + step)
            d = torch.addmm(c_sq.unsqueeze(0), x[lo:hi], c.t(), alpha=-2.0)
            d.add_(x_sq[lo:hi].unsqueeze(1)).clamp_min_(0.0)
            d_cand[lo:hi] = d
            potentials += torch.minimum(d, closest[lo:hi].unsqueeze(1)).sum(dim=0)
        best = int(potentials.argmin())
        centers.append(x[cand[best]])
        closest = torch.minimum(closest, d_cand[:, best])
    return torch.stack(centers)


def _cluster_sums(x: torch.Tensor, labels: torch.Tensor, k: int, step: int) -> torch.Tensor:
    """``[K, d]`` float64 sums of the rows of each cluster: float32 sums per block, added up in float64."""
    sums = torch.zeros(k, x.shape[1], dtype=torch.float64, device=x.device)
    block = torch.empty(k, x.shape[1], dtype=x.dtype, device=x.device)
    step = max(step, 16384)
    for lo in range(0, x.shape[0], step):
        hi = min(x.shape[0], lo + step)
        block.zero_().index_add_(0, labels[lo:hi], x[lo:hi])
        sums += block
    return sums


def _assigned_sq_dist(x: torch.Tensor, x_sq: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor,
                      step: int) -> torch.Tensor:
    """``||x_i - c_{labels_i}||^2`` for every row, by the same formula as :func:`assign`."""
    c_sq = _sq_norms(centers)
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for lo in range(0, x.shape[0], step):
        hi = min(x.shape[0], lo + step)
        lab = labels[lo:hi]
        dot = (x[lo:hi] * centers[lab]).sum(dim=1)
        out[lo:hi] = (x_sq[lo:hi] - 2.0 * dot + c_sq[lab]).clamp_min_(0.0)
    return out


def _mean_variance(x: torch.Tensor, step: int = _BLOCK) -> float:
    """Mean over the features of their (population) variance, in one pass over centred blocks."""
    mean = x.mean(dim=0)
    total = 0.0
    for lo in range(0, x.shape[0], step):
        centred = x[lo:lo + step] - mean
        total += float((centred * centred).sum(dim=1).double().sum())
    return total / (x.shape[0] * x.shape[1])


def _inertia(x: torch.Tensor, centers: torch.Tensor, labels: torch.Tensor, step: int = _BLOCK) -> float:
    """``sum_i ||x_i - c_{labels_i}||^2`` from the differences themselves (no cancellation)."""
    total = 0.0
    for lo in range(0, x.shape[0], step):
        diff = x[lo:lo + step] - centers[labels[lo:lo + step]]
        total += float((diff * diff).sum(dim=1).double().sum())
    return total


class _Lloyd:
    """One run of Lloyd's algorithm from given centres; the state it keeps between iterations.

    Every iteration is the textbook one: each point goes to its nearest centre (E-step), each
    centre moves to the mean of its points (M-step). Two things make it cheap without changing
    what it computes:

    * **Bounds** (``bounds=True``; Elkan 2003, "Using the triangle inequality to accelerate
      k-means"): every point keeps an upper bound ``u_i`` on its distance to its own centre and a
      lower bound ``l_ij`` on its distance to every other centre. When centre j moves by
      ``delta_j``, ``u_i`` grows by ``delta_{a_i}`` and ``l_ij`` shrinks by ``delta_j`` (triangle
      inequality). A point whose ``u_i`` is below all its ``l_ij`` cannot change cluster and is
      skipped; the others get their whole row of distances recomputed (one GEMM over the gathered
      rows, in the layout of :func:`assign`), which also makes their bounds exact again. Late
      iterations, where centres hardly move, touch a small share of the points.
    * **Incremental M-step**: the per-cluster sums are kept in float64, and only the points that
      changed cluster are subtracted from their old sum and added to the new one (their sum in
      float32, added in float64); when more than a quarter changed, the sums are made afresh.

    The bounds cost ``(K' + 1) x N`` float32 numbers, K' = K rounded up to a multiple of 8 (6% of
    ``x`` for d = 384, K = 23).
    """

    def __init__(self, x, x_sq, k, step, bounds: bool):
        self.x, self.x_sq, self.k, self.step, self.bounds = x, x_sq, k, step, bounds
        n = x.shape[0]
        self.labels = torch.zeros(n, dtype=torch.long, device=x.device)
        self.sums = None
        self.counts = None
        self.rows = 0  # distance rows computed
        if bounds:
            self.kp = -(-k // _K_MULTIPLE) * _K_MULTIPLE
            self.upper = torch.empty(n, dtype=x.dtype, device=x.device)
            self.lower = torch.empty(self.kp, n, dtype=x.dtype, device=x.device)

    def _rows(self, centers: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """Recompute whole distance rows (all points, or ``rows``); returns their new labels."""
        x, x_sq, step = self.x, self.x_sq, self.step
        cp, c_sq = _padded(centers)
        m = x.shape[0] if rows is None else rows.shape[0]
        out = torch.empty(m, dtype=torch.long, device=x.device)
        slack = _BOUND_SLACK * float(c_sq[: self.k].max()) if self.bounds else 0.0
        for lo in range(0, m, step):
            hi = min(m, lo + step)
            if rows is None:
                xb, xb_sq = x[lo:hi], x_sq[lo:hi]
            else:
                r = rows[lo:hi]
                xb, xb_sq = x.index_select(0, r), x_sq.index_select(0, r)
            d = torch.addmm(c_sq.unsqueeze(1), cp, xb.t(), alpha=-2.0)  # ||c||^2 - 2 x.c, [Kp, b]
            best, idx = d.min(dim=0)
            out[lo:hi] = idx
            if self.bounds:
                tau = xb_sq.mul(_BOUND_SLACK).add_(slack)
                upper = best.add_(xb_sq).add_(tau).clamp_min_(0.0).sqrt_()
                d.add_((xb_sq - tau).unsqueeze(0)).clamp_min_(0.0).sqrt_()
                d.scatter_(0, idx.unsqueeze(0), math.inf)  # the own centre is no "other" centre
                if rows is None:
                    self.upper[lo:hi] = upper
                    self.lower[:, lo:hi] = d
                else:
                    self.upper.index_copy_(0, r, upper)
                    self.lower.index_copy_(1, r, d)
        self.rows += m
        return out

    def e_step(self, centers: torch.Tensor, first: bool) -> int:
        """Reassign the points to ``centers`` (the bounds are valid for them); keep the sums; return #changed."""
        n, k = self.x.shape[0], self.k
        if first or not self.bounds:
            rows = None
        else:
            need = self.upper > self.lower.amin(dim=0)
            rows = need.nonzero().squeeze(1)
            if rows.shape[0] == 0:
                return 0
            if rows.shape[0] > _FULL_PASS_SHARE * n:
                rows = None
        new = self._rows(centers, rows)
        if first:
            self.labels = new
            self.sums = _cluster_sums(self.x, new, k, self.step)
            self.counts = torch.bincount(new, minlength=k)
            return n
        old = self.labels if rows is None else self.labels[rows]
        moved = (new != old).nonzero().squeeze(1)
        changed = int(moved.shape[0])
        if changed == 0:
            return 0
        idx = moved if rows is None else rows[moved]
        new_lab, old_lab = new[moved], old[moved]
        self.labels[idx] = new_lab
        if changed > _RESUM_SHARE * n:
            self.sums = _cluster_sums(self.x, self.labels, k, self.step)
            self.counts = torch.bincount(self.labels, minlength=k)
        else:
            xs = self.x.index_select(0, idx)
            delta = torch.zeros(k, self.x.shape[1], dtype=self.x.dtype, device=self.x.device)
            delta.index_add_(0, new_lab, xs).index_add_(0, old_lab, xs, alpha=-1)
            self.sums += delta
            self.counts += torch.bincount(new_lab, minlength=k) - torch.bincount(old_lab, minlength=k)
        return changed

    def m_step(self, centers: torch.Tensor) -> torch.Tensor:
        """The means of the clusters; an empty cluster takes the point worst served by ``centers``."""
        counts = self.counts
        new = (self.sums / counts.clamp_min(1).unsqueeze(1)).to(self.x.dtype)
        empty = (counts == 0).nonzero().flatten()
        if len(empty):
            dists = _assigned_sq_dist(self.x, self.x_sq, centers, self.labels, self.step)
            far = torch.topk(dists, len(empty)).indices
            new[empty] = self.x[far]
        return new

    def moved(self, old: torch.Tensor, new: torch.Tensor) -> float:
        """Squared movement of all centres (scikit-learn's ``center_shift_tot``); updates the bounds."""
        move_sq = ((new - old) ** 2).sum(dim=1)
        if self.bounds:
            move = move_sq.sqrt()
            self.upper.add_(move[self.labels])
            self.lower[: self.k].sub_(move.unsqueeze(1))
        return float(move_sq.sum())

    def inertia(self, centers: torch.Tensor, x_sq_total: float) -> float:
        """``sum_i ||x_i - c_{a_i}||^2`` from the cluster sums: ``sum ||x||^2 - 2 sum_k S_k.c_k + sum_k n_k ||c_k||^2``.

        No pass over the data; the two last terms, which tell restarts apart, are computed in float64.
        """
        c = centers.double()
        value = x_sq_total - 2.0 * float((self.sums * c).sum()) + float((self.counts.double() * (c * c).sum(1)).sum())
        return max(value, 0.0)


def _run(x, x_sq, x_sq_total, centers, max_iter, threshold, step, bounds):
    """Lloyd iterations from ``centers``, scikit-learn's stopping rule: ``(labels, centers, inertia, n_iter, rows)``."""
    state = _Lloyd(x, x_sq, centers.shape[0], step, bounds)
    strict = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        changed = state.e_step(centers, first=n_iter == 1)
        new_centers = state.m_step(centers)
        shift = state.moved(centers, new_centers)
        centers = new_centers
        if n_iter > 1 and changed == 0:  # labels as in the last iteration: a fixed point
            strict = True
            break
        if shift <= threshold:
            break
    if not strict:  # the labels must be those of the final centres
        state.e_step(centers, first=max_iter == 0)
    return state.labels, centers, state.inertia(centers, x_sq_total), n_iter, state.rows


def kmeans(x: torch.Tensor, k: int, n_init: int = 3, max_iter: int = 300, tol: float = 1e-4,
           seed: int = 0, chunk_size: int = 65536, progress: bool = False,
           algorithm: str = "elkan", n_local_trials: int | None = None,
           init: torch.Tensor | None = None) -> KMeansResult:
    """Lloyd's k-means with greedy k-means++ seeding and ``n_init`` restarts; the lowest inertia wins.

    **What is computed** is scikit-learn's ``KMeans(algorithm="lloyd")``, step for step:

    * *Init*: greedy k-means++ (:func:`kmeans_plusplus`) with ``n_local_trials`` candidates per
      centre, by default scikit-learn's ``2 + ln K`` (5 for K = 23), which also keeps the kit's
      recorded FET clusterings as they were; :func:`wide_local_trials` is a measured, opt-in
      wider search (lower inertia on average). One seeding per restart, all drawn from one
      generator seeded with ``seed``.
    * *Stopping rule*: scikit-learn's. An iteration assigns every point to its nearest centre and
      moves every centre to the mean of its points; the run stops when no label changed since the
      previous iteration (a fixed point: "strict convergence"), or when the squared movement of
      the centres, summed, is at most ``tol`` times the mean per-feature variance of ``x``, or
      after ``max_iter`` iterations. After a stop on ``tol`` or ``max_iter`` the points are
      assigned once more to the final centres, so that labels and centres agree; after a fixed
      point they already do. ``n_iter`` counts the iterations as scikit-learn's ``n_iter_`` does.
    * An empty cluster takes the point currently worst served (largest distance to its centre).
    * ``init``: given ``[K, d]`` starting centres, one run starts from them (``n_init`` unused).

    The stopping rule is kept, not loosened, because the iterations a looser rule would save are
    the cheap ones here: with the bounds below, the late iterations, where few points change
    cluster, recompute the distances of a few percent of the points, while the early ones (few,
    whatever the rule) cost a full pass. Stopping earlier would trade inertia for little time.

    **How** (``algorithm``):

    * ``"elkan"`` (default): the same iterations, with Elkan's triangle-inequality bounds, so
      that only the points that may change cluster get their distances recomputed (see
      :class:`_Lloyd`), and an incremental M-step. Labels and centres are those of the plain
      iteration (the bounds keep a float32 error margin), at the cost of ``(K + 1) x N`` floats.
    * ``"lloyd"``: every iteration recomputes all ``N x K`` distances.

    Both compute distances as ``||c||^2 - 2 x.c (+ ||x||^2)`` in float32 in the ``[K, block]``
    layout with K padded to a multiple of 8, keep ``||x||^2`` from one computation, keep the
    cluster sums in float64, and compare the restarts by the inertia taken from the cluster sums
    of the last assignment (no extra pass over the data; one exact pass for the winner). Runs on
    ``x.device``; inputs in lower precision are up-cast to float32. On a GPU each iteration waits
    for the device a few times (the convergence test and, for ``"elkan"``, the number of points
    to recompute).
    """
    if x.ndim != 2:
        raise ValueError(f"kmeans expects an [N, d] tensor, got shape {tuple(x.shape)}")
    if algorithm not in ALGORITHMS:
        raise ValueError(f"kmeans algorithm must be one of {', '.join(ALGORITHMS)}; got {algorithm!r}")
    n = x.shape[0]
    if not 1 <= k <= n:
        raise ValueError(f"kmeans needs 1 <= k <= number of points; got k={k}, N={n}")
    if init is not None and tuple(init.shape) != (k, x.shape[1]):
        raise ValueError(f"kmeans init must be [K, d] = [{k}, {x.shape[1]}], got {tuple(init.shape)}")
    x = x.float().contiguous()
    step = _block_rows(chunk_size)
    x_sq = _sq_norms(x)
    x_sq_total = float(x_sq.double().sum())  # common to all restarts: the comparison does not depend on it
    threshold = tol * _mean_variance(x) if n > 1 else 0.0
    generator = torch.Generator(device="cpu").manual_seed(seed)
    trials = n_local_trials or sklearn_local_trials(k)
    best: KMeansResult | None = None
    restarts = range(1 if init is not None else n_init)
    if progress:
        from tqdm.auto import tqdm

        restarts = tqdm(restarts, desc=f"k-means K={k}", unit="restart")
    for restart in restarts:
        if init is not None:
            centers = init.to(device=x.device, dtype=x.dtype)
        else:
            centers = kmeans_plusplus(x, k, generator, trials, chunk_size=chunk_size, x_sq=x_sq)
        labels, centers, inertia, n_iter, rows = _run(x, x_sq, x_sq_total, centers, max_iter, threshold, step,
                                                      bounds=algorithm == "elkan")
        if best is None or inertia < best.inertia:
            best = KMeansResult(labels, centers, inertia, n_iter, restart, rows)
    best.inertia = _inertia(x, best.centers, best.labels)  # the same up to rounding; exact for the winner
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
