"""Confidence intervals for F1 scores that vary with the training seed and the finite test set.

A score in the kit's tables is the mean, over training seeds, of an entity-level micro F1 on
one evaluation split. Two things make it uncertain:

* **training randomness**: another seed gives another model (initialisation, batch order,
  dropout, self-picking's choices);
* **the test sample**: another draw of sentences from the same distribution gives another
  F1 (WNUT-16's test split holds 359 tweets, so this part is large).

:class:`Bootstrap` resamples both, hierarchically. Each replicate draws the evaluation
sentences with replacement, the same draw for every system (so comparisons are *paired*
over sentences, as in the usual paired bootstrap for NLP significance), recomputes each
(system, seed)'s micro F1 from the per-sentence counts ``[tp, n_pred, n_gold]``, and then
draws, independently per system, its seeds with replacement and averages them. A statistic
of the systems' scores (a difference, the gap to the best of several, a slope over a sweep)
is computed on every replicate; the 95% interval is the 2.5 and 97.5 percentiles.

The seed level has few draws (2-3 seeds): a plain bootstrap of ``S`` values has variance
``(S-1)/S`` of the unbiased one, too narrow. Before the seeds are drawn, each seed's
deviation from the system's seed mean is scaled by ``sqrt(S/(S-1))`` (the usual small-sample
correction), so the seed part of a replicate's variance is ``s^2/S`` with the unbiased
sample variance ``s^2``. With one seed the interval covers the test sample only (the result
says so: ``seeds`` of 1). With three seeds the seed variance itself is poorly known: the
intervals are approximate, which is why the claims table calls a claim *inconclusive*
whenever its interval contains the null value.

Everything here is numpy; random draws come from one seeded generator, so an interval is
the same on every run.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .errors import CofeeError

REPLICATES = 2000
LEVEL = 0.95


def f1_of(counts: np.ndarray) -> np.ndarray:
    """Micro F1 from summed counts ``[..., (tp, n_pred, n_gold)]`` (0 where there is nothing to score)."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, denom = counts[..., 0], counts[..., 1] + counts[..., 2]
    return np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)


def _as_counts(counts, n: int, what: str) -> np.ndarray:
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise CofeeError(f"{what}: expected one [tp, n_pred, n_gold] per sentence, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise CofeeError(f"{what}: counts for {arr.shape[0]} sentences, but the split has {n}")
    if (arr < 0).any() or (arr[:, 0] > arr[:, 1]).any() or (arr[:, 0] > arr[:, 2]).any():
        raise CofeeError(f"{what}: counts must satisfy 0 <= tp <= n_pred and tp <= n_gold")
    return arr


@dataclass
class Scores:
    """One system's score: the estimate (seed mean on the full split) and its bootstrap replicates."""

    estimate: float
    replicates: np.ndarray   # shape (replicates,)
    seeds: int
    per_seed: list[float]


class Bootstrap:
    """Hierarchical bootstrap over the sentences of one split (shared) and each system's seeds.

    ``n_sentences``: the split's size; every system scored with this object must give counts
    for the same sentences in the same order. ``seed`` fixes every random draw.
    """

    def __init__(self, n_sentences: int, replicates: int = REPLICATES, seed: int = 0):
        if n_sentences < 1:
            raise CofeeError("a bootstrap needs at least one sentence")
        if replicates < 100:
            raise CofeeError("use at least 100 bootstrap replicates")
        self.n = n_sentences
        self.replicates = replicates
        self.rng = np.random.default_rng(seed)
        draws = self.rng.integers(0, n_sentences, size=(replicates, n_sentences))
        offsets = draws + n_sentences * np.arange(replicates)[:, None]
        # weights[b, i]: how often sentence i is in replicate b
        self.weights = np.bincount(offsets.ravel(), minlength=replicates * n_sentences).reshape(
            replicates, n_sentences).astype(np.float64)

    def scores(self, per_seed_counts: list, what: str = "system") -> Scores:
        """A system's :class:`Scores` from its per-seed, per-sentence counts (a list, one entry per seed)."""
        if not per_seed_counts:
            raise CofeeError(f"{what}: no seeds to score")
        arrays = [_as_counts(c, self.n, f"{what} (seed {i + 1})") for i, c in enumerate(per_seed_counts)]
        full = np.array([float(f1_of(a.sum(axis=0))) for a in arrays])
        # f1 of every (seed, replicate): (S, B)
        per_rep = np.stack([f1_of(self.weights @ a) for a in arrays])
        s = len(arrays)
        if s > 1:
            centre = per_rep.mean(axis=0, keepdims=True)
            per_rep = centre + math.sqrt(s / (s - 1)) * (per_rep - centre)
            picks = self.rng.integers(0, s, size=(self.replicates, s))
            reps = np.take_along_axis(per_rep.T, picks, axis=1).mean(axis=1)
        else:
            reps = per_rep[0]
        return Scores(float(full.mean()), reps, s, [float(v) for v in full])


def interval(replicates: np.ndarray, level: float = LEVEL) -> list[float]:
    """The percentile interval of bootstrap replicates."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(np.asarray(replicates, dtype=np.float64), [tail, 1.0 - tail])
    return [float(low), float(high)]


def difference(a: Scores, b: Scores) -> tuple[float, np.ndarray]:
    """``a - b``: the estimate and its replicates (paired over sentences when both come from one Bootstrap)."""
    return a.estimate - b.estimate, a.replicates - b.replicates


def margin_over_best(a: Scores, others: list[Scores]) -> tuple[float, np.ndarray]:
    """``a`` minus the best of ``others`` (per replicate: the best on that replicate)."""
    best_est = max(o.estimate for o in others)
    best_rep = np.max(np.stack([o.replicates for o in others]), axis=0)
    return a.estimate - best_est, a.replicates - best_rep


def slope(xs, points: list[Scores]) -> tuple[float, np.ndarray]:
    """Least-squares slope of score on ``xs`` (per unit of x), on the estimates and on every replicate."""
    x = np.asarray(xs, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0:
        raise CofeeError("a slope needs at least two distinct x values")
    xc = x - x.mean()
    denom = float((xc ** 2).sum())
    est = np.array([p.estimate for p in points])
    reps = np.stack([p.replicates for p in points])          # (P, B)
    return float(xc @ (est - est.mean()) / denom), xc @ (reps - reps.mean(axis=0)) / denom


def spread(points: list[Scores]) -> tuple[float, np.ndarray]:
    """Largest minus smallest score over the points (for an equivalence claim)."""
    est = np.array([p.estimate for p in points])
    reps = np.stack([p.replicates for p in points])
    return float(est.max() - est.min()), reps.max(axis=0) - reps.min(axis=0)


def direction_verdict(ci: list[float]) -> str:
    """A claim that the statistic is > 0: reproduced when the whole interval is above 0, contradicted when below."""
    if ci[0] > 0:
        return "reproduced"
    if ci[1] < 0:
        return "contradicted"
    return "inconclusive"


def equivalence_verdict(ci: list[float], margin: float) -> str:
    """A claim that the statistic is below ``margin``: reproduced when the whole interval is, contradicted when above."""
    if ci[1] < margin:
        return "reproduced"
    if ci[0] > margin:
        return "contradicted"
    return "inconclusive"
