"""The claims' statistics on cases whose answer is known by hand, and against scipy where it has the same test."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from cofee_lib import stats
from cofee_lib.errors import CofeeError


def perfect(n):      # every sentence: one gold entity, predicted right
    return np.tile([1, 1, 1], (n, 1))


def wrong(n):        # every sentence: one gold entity, one wrong prediction
    return np.tile([0, 1, 1], (n, 1))


def accuracy_counts(correct):
    """One gold and one predicted entity per sentence: micro F1 is then the share of correct sentences."""
    correct = np.asarray(correct, dtype=int)
    return np.stack([correct, np.ones_like(correct), np.ones_like(correct)], axis=1)


def test_f1_from_counts():
    assert stats.f1_of([2, 4, 4]) == pytest.approx(0.5)
    assert stats.f1_of([0, 0, 0]) == 0.0
    assert stats.f1_of(np.array([[1, 1, 1], [0, 2, 0]])).tolist() == [1.0, 0.0]


def test_fixed_difference_has_a_point_interval_and_is_reproduced():
    boot = stats.Bootstrap(50, replicates=500, seed=1)
    a, b = boot.scores([perfect(50)] * 3), boot.scores([wrong(50)] * 3)
    est, reps = stats.difference(a, b)
    assert est == 1.0 and stats.interval(reps) == [1.0, 1.0]
    assert stats.direction_verdict(stats.interval(reps)) == "reproduced"
    est, reps = stats.difference(b, a)                       # the reversed claim
    assert stats.direction_verdict(stats.interval(reps)) == "contradicted"


def test_no_difference_is_inconclusive():
    rng = np.random.default_rng(0)
    boot = stats.Bootstrap(300, replicates=1000, seed=2)
    a = boot.scores([accuracy_counts(rng.random(300) < 0.5) for _ in range(3)])
    b = boot.scores([accuracy_counts(rng.random(300) < 0.5) for _ in range(3)])
    est, reps = stats.difference(a, b)
    ci = stats.interval(reps)
    assert ci[0] < 0 < ci[1] and stats.direction_verdict(ci) == "inconclusive"


def test_paired_bootstrap_matches_scipy_for_one_seed():
    # one seed each: the interval is the paired bootstrap of the difference in accuracy
    rng = np.random.default_rng(3)
    n = 400
    correct_a = rng.random(n) < 0.6
    correct_b = np.where(rng.random(n) < 0.8, correct_a, rng.random(n) < 0.5)
    boot = stats.Bootstrap(n, replicates=4000, seed=4)
    est, reps = stats.difference(boot.scores([accuracy_counts(correct_a)]), boot.scores([accuracy_counts(correct_b)]))
    mine = stats.interval(reps)
    ref = scipy.stats.bootstrap((correct_a.astype(float), correct_b.astype(float)),
                                lambda x, y, axis=-1: np.mean(x, axis=axis) - np.mean(y, axis=axis),
                                paired=True, n_resamples=4000, method="percentile", random_state=5)
    assert est == pytest.approx(correct_a.mean() - correct_b.mean())
    assert mine[0] == pytest.approx(ref.confidence_interval.low, abs=0.01)
    assert mine[1] == pytest.approx(ref.confidence_interval.high, abs=0.01)


def test_seed_level_matches_welch_t_when_the_test_set_adds_no_noise():
    # every sentence of a seed scores the same, so resampling sentences changes nothing and the interval
    # is the seeds' part alone: with many seeds, close to Welch's t interval for a difference of means
    rng = np.random.default_rng(6)
    n, seeds = 20, 40
    fa, fb = rng.normal(0.55, 0.04, seeds), rng.normal(0.50, 0.06, seeds)

    def constant(f):   # tp/n_pred/n_gold with F1 = f on every sentence: 1000 gold, 1000 predicted, f*1000 right
        return np.tile([round(f * 1000), 1000, 1000], (n, 1))

    boot = stats.Bootstrap(n, replicates=4000, seed=7)
    a, b = boot.scores([constant(f) for f in fa]), boot.scores([constant(f) for f in fb])
    est, reps = stats.difference(a, b)
    mine = stats.interval(reps)
    ref = scipy.stats.ttest_ind(np.round(fa * 1000) / 1000, np.round(fb * 1000) / 1000,
                                equal_var=False).confidence_interval(0.95)
    width = ref.high - ref.low
    assert mine[0] == pytest.approx(ref.low, abs=0.1 * width)
    assert mine[1] == pytest.approx(ref.high, abs=0.1 * width)


def test_few_seeds_are_widened_to_the_unbiased_variance():
    n = 10
    boot = stats.Bootstrap(n, replicates=20000, seed=8)
    values = [0.4, 0.5, 0.6]
    s = boot.scores([np.tile([round(v * 100), 100, 100], (n, 1)) for v in values])
    # the variance of the seed mean is s^2 / S with the unbiased s^2 (0.01 / 3), not the plug-in 2/3 of it
    assert np.var(s.replicates) == pytest.approx(np.var(values, ddof=1) / 3, rel=0.05)
    assert s.estimate == pytest.approx(0.5) and s.seeds == 3


def test_slope_matches_least_squares_and_a_rising_trend_is_reproduced():
    n = 200
    xs = [0.2, 0.4, 0.6, 0.8, 1.0]
    ys = [0.1, 0.2, 0.25, 0.33, 0.38]
    boot = stats.Bootstrap(n, replicates=500, seed=9)
    points = [boot.scores([np.tile([round(y * 1000), 1000, 1000], (n, 1))] * 2) for y in ys]
    est, reps = stats.slope(xs, points)
    assert est == pytest.approx(scipy.stats.linregress(xs, [p.estimate for p in points]).slope)
    assert stats.direction_verdict(stats.interval(reps)) == "reproduced"


def test_equivalence_and_margin_over_best():
    boot = stats.Bootstrap(30, replicates=300, seed=10)
    flat = [boot.scores([np.tile([round(y * 1000), 1000, 1000], (30, 1))]) for y in (0.30, 0.31, 0.305)]
    est, reps = stats.spread(flat)
    assert est == pytest.approx(0.01)
    assert stats.equivalence_verdict(stats.interval(reps), 0.05) == "reproduced"
    assert stats.equivalence_verdict([0.08, 0.12], 0.05) == "contradicted"
    assert stats.equivalence_verdict([0.01, 0.12], 0.05) == "inconclusive"
    est, reps = stats.margin_over_best(flat[1], [flat[0], flat[2]])
    assert est == pytest.approx(0.005) and stats.direction_verdict(stats.interval(reps)) == "reproduced"


def test_bad_counts_are_refused():
    boot = stats.Bootstrap(5, replicates=100)
    with pytest.raises(CofeeError, match="5"):
        boot.scores([perfect(4)])
    with pytest.raises(CofeeError, match="tp"):
        boot.scores([np.tile([2, 1, 1], (5, 1))])
    with pytest.raises(CofeeError, match="no seeds"):
        boot.scores([])
