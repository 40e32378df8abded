"""Tests for rlx.evaluation.stats: hand-computed aggregates, rliable's definitions, bootstrap intervals."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from rlx.config import ConfigError
from rlx.evaluation import stats as S


# -- independent reference implementations of rliable's definitions (rliable/metrics.py, library.py),
# -- written out here so the test does not import rliable (it fails to import with pandas 3)
def ref_mean(s):
    return np.mean(np.mean(s, axis=0))


def ref_median(s):
    return np.median(np.mean(s, axis=0))


def ref_iqm(s):
    return scipy.stats.trim_mean(s, proportiontocut=0.25, axis=None)


def ref_optimality_gap(s, gamma=1.0):
    return gamma - np.mean(np.minimum(s, gamma))


def ref_probability_of_improvement(x, y):
    probs = []
    for t in range(x.shape[1]):
        if np.array_equal(x[:, t], y[:, t]):
            probs.append(0.5)
        else:
            u, _ = scipy.stats.mannwhitneyu(x[:, t], y[:, t], alternative="greater")
            probs.append(u / (x.shape[0] * y.shape[0]))
    return np.mean(probs)


def ref_run_profile(s, taus):
    return np.array([np.mean(s > tau) for tau in taus])


def ref_mean_profile(s, taus):
    return np.array([np.mean(np.mean(s, axis=0) > tau) for tau in taus])


def _matrices():
    rng = np.random.default_rng(7)
    yield rng.random((10, 5))
    yield rng.normal(size=(3, 7))
    yield rng.integers(0, 4, size=(6, 4)).astype(float)  # many ties
    yield rng.random((5, 1))
    yield rng.random((2, 2))
    yield rng.random((7, 3))  # N = 21, cut = 5


# -- hand-computed values ------------------------------------------------------------------------
def test_iqm_hand_computed():
    s = np.array([[0.0, 10.0, 3.0, 1.0], [2.0, 100.0, 4.0, 7.0]])
    # N = 8 scores sorted: 0 1 2 3 4 7 10 100; cut = floor(8 * 0.25) = 2 from each end
    # middle: 2 3 4 7 -> (2 + 3 + 4 + 7) / 4 = 16 / 4 = 4.0
    assert S.iqm(s) == pytest.approx(4.0, abs=1e-12)
    # N = 5 (5 runs x 1 task): cut = floor(1.25) = 1; sorted 1 2 3 4 50 -> (2 + 3 + 4) / 3 = 3.0
    assert S.iqm(np.array([[4.0], [50.0], [1.0], [3.0], [2.0]])) == pytest.approx(3.0, abs=1e-12)
    # N = 3: cut = 0 -> plain mean (1 + 2 + 6) / 3 = 3.0
    assert S.iqm(np.array([[1.0], [2.0], [6.0]])) == pytest.approx(3.0, abs=1e-12)


def test_mean_median_hand_computed():
    s = np.array([[1.0, 4.0, 10.0], [3.0, 6.0, 0.0]])
    # task means: (1+3)/2 = 2, (4+6)/2 = 5, (10+0)/2 = 5 -> mean (2+5+5)/3 = 4, median 5
    assert S.mean(s) == pytest.approx(4.0, abs=1e-12)
    assert S.median(s) == pytest.approx(5.0, abs=1e-12)


def test_optimality_gap_hand_computed():
    s = np.array([[0.5, 1.2], [0.9, 0.2]])
    # gamma = 1: min(s, 1) = 0.5 1.0 0.9 0.2 -> mean 2.6 / 4 = 0.65 -> gap 1 - 0.65 = 0.35
    assert S.optimality_gap(s) == pytest.approx(0.35, abs=1e-12)
    # gamma = 0.8: min(s, .8) = 0.5 0.8 0.8 0.2 -> mean 2.3 / 4 = 0.575 -> gap 0.8 - 0.575 = 0.225
    assert S.optimality_gap(s, gamma=0.8) == pytest.approx(0.225, abs=1e-12)


def test_probability_of_improvement_hand_computed():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    y = np.array([[2.0, 1.0], [3.0, 9.0]])
    # task 0: x = {1, 3}, y = {2, 3}: pairs (1,2) loss, (1,3) loss, (3,2) win, (3,3) tie
    #         -> (1 + 0.5) / 4 = 0.375
    # task 1: x = {5, 5}, y = {1, 9}: (5,1) win, (5,9) loss, twice -> 2 / 4 = 0.5
    # average over tasks: (0.375 + 0.5) / 2 = 0.4375
    assert S.probability_of_improvement(x, y) == pytest.approx(0.4375, abs=1e-12)
    # P(Y > X) = 1 - P(X > Y) because ties count half: 1 - 0.4375 = 0.5625
    assert S.probability_of_improvement(y, x) == pytest.approx(0.5625, abs=1e-12)
    assert S.probability_of_improvement(x, x) == pytest.approx(0.5, abs=1e-12)


def test_performance_profile_hand_computed():
    s = np.array([[0.1, 0.5], [0.9, 0.5]])
    taus = [0.0, 0.5, 0.7]
    # run scores 0.1 0.5 0.9 0.5: > 0 -> 4/4 = 1; > 0.5 -> only 0.9 -> 1/4; > 0.7 -> 1/4
    np.testing.assert_allclose(S.performance_profile(s, taus), [1.0, 0.25, 0.25], atol=1e-12)
    # task means (0.1+0.9)/2 = 0.5 and 0.5: > 0 -> 1; > 0.5 -> 0; > 0.7 -> 0
    np.testing.assert_allclose(S.performance_profile(s, taus, kind="mean"), [1.0, 0.0, 0.0], atol=1e-12)


# -- rliable's definitions, exactly ------------------------------------------------------------------
@pytest.mark.parametrize("s", list(_matrices()))
def test_point_estimates_match_rliable_definitions(s):
    assert np.isclose(S.mean(s), ref_mean(s), rtol=1e-12, atol=1e-12)
    assert np.isclose(S.median(s), ref_median(s), rtol=1e-12, atol=1e-12)
    assert np.isclose(S.iqm(s), ref_iqm(s), rtol=1e-12, atol=1e-12)
    for gamma in (1.0, 0.5, 2.0):
        assert np.isclose(S.optimality_gap(s, gamma), ref_optimality_gap(s, gamma), rtol=1e-12, atol=1e-12)
    taus = np.linspace(s.min() - 0.1, s.max() + 0.1, 17)
    np.testing.assert_allclose(S.performance_profile(s, taus), ref_run_profile(s, taus), atol=1e-12)
    np.testing.assert_allclose(S.performance_profile(s, taus, "mean"), ref_mean_profile(s, taus), atol=1e-12)


def test_probability_of_improvement_matches_mann_whitney():
    rng = np.random.default_rng(3)
    for rx, ry, t in [(10, 10, 5), (3, 6, 2), (5, 5, 1)]:
        x = rng.integers(0, 5, size=(rx, t)).astype(float)  # ties on purpose
        y = rng.integers(0, 5, size=(ry, t)).astype(float)
        assert np.isclose(S.probability_of_improvement(x, y), ref_probability_of_improvement(x, y), atol=1e-12)


def test_batched_aggregates_equal_per_slice():
    rng = np.random.default_rng(0)
    batch = rng.random((6, 4, 3))
    for name, f in S.METRICS.items():
        got = f(batch)
        want = [f(b) for b in batch]
        np.testing.assert_allclose(got, want, rtol=1e-13, err_msg=name)


# -- bootstrap: vectorised vs slow loop on the same indices ---------------------------------------
@pytest.mark.parametrize("task_bootstrap", [False, True])
def test_bootstrap_vectorised_equals_loop(task_bootstrap):
    s = np.random.default_rng(1).random((6, 4))
    reps = 300
    fns = [S.METRICS[m] for m in ("mean", "median", "iqm", "optimality_gap")]
    dists = S.bootstrap_distribution(s, fns, reps, np.random.default_rng(5), task_bootstrap)
    run_idx, task_idx = S.resample_indices(np.random.default_rng(5), 6, 4, reps, task_bootstrap)
    for b in range(reps):
        sample = np.empty_like(s)
        for j in range(4):  # column j: task task_idx[b, j], runs drawn with replacement
            for r in range(6):
                sample[r, j] = s[run_idx[b, r, j], task_idx[b, j]]
        assert np.isclose(dists[0][b], ref_mean(sample), atol=1e-12)
        assert np.isclose(dists[1][b], ref_median(sample), atol=1e-12)
        assert np.isclose(dists[2][b], ref_iqm(sample), atol=1e-12)
        assert np.isclose(dists[3][b], ref_optimality_gap(sample), atol=1e-12)
    if not task_bootstrap:
        # stratified: every resample keeps each task's runs inside that task's column
        np.testing.assert_array_equal(task_idx, np.broadcast_to(np.arange(4), (reps, 4)))


def test_bootstrap_ci_agrees_with_scipy_bootstrap_percentile():
    # one task: the stratified bootstrap is the ordinary bootstrap; compare with scipy's
    x = np.random.default_rng(11).normal(0.5, 0.2, size=12)
    for stat, ref in [("mean", np.mean), ("iqm", lambda v, axis: scipy.stats.trim_mean(v, 0.25, axis=axis))]:
        point, low, high = S.bootstrap_ci(x, statistic=stat, reps=20_000, seed=0)
        res = scipy.stats.bootstrap(
            (x,), ref if stat != "mean" else np.mean, n_resamples=20_000, method="percentile",
            confidence_level=0.95, random_state=np.random.default_rng(1),
        )
        width = high - low
        # Monte-Carlo error of a 2.5% quantile from 20k resamples is ~1% of the width; allow 5%
        assert abs(low - res.confidence_interval.low) < 0.05 * width
        assert abs(high - res.confidence_interval.high) < 0.05 * width


def test_stratified_ci_agrees_with_slow_loop_other_stream():
    s = np.random.default_rng(2).random((8, 3))
    point, low, high = S.bootstrap_ci(s, "iqm", reps=20_000, seed=0)
    rng = np.random.default_rng(12345)  # independent stream, plain Python loop
    vals = np.empty(4000)
    for b in range(vals.size):
        sample = np.stack([s[rng.integers(0, 8, 8), t] for t in range(3)], axis=1)
        vals[b] = ref_iqm(sample)
    ref_low, ref_high = np.quantile(vals, [0.025, 0.975])
    assert point == pytest.approx(ref_iqm(s), abs=1e-12)
    width = high - low
    assert abs(low - ref_low) < 0.08 * width and abs(high - ref_high) < 0.08 * width


def test_probability_of_improvement_ci_loop_and_bounds():
    rng = np.random.default_rng(4)
    x, y = rng.random((5, 3)) + 0.2, rng.random((7, 3))
    point, low, high = S.probability_of_improvement_ci(x, y, reps=4000, seed=3)
    assert point == pytest.approx(ref_probability_of_improvement(x, y), abs=1e-12)
    assert 0.0 <= low <= point <= high <= 1.0
    loop_rng = np.random.default_rng(99)
    vals = []
    for _ in range(2000):
        ix = loop_rng.integers(0, 5, size=(5, 3))
        iy = loop_rng.integers(0, 7, size=(7, 3))
        xb, yb = np.take_along_axis(x, ix, 0), np.take_along_axis(y, iy, 0)
        per_task = [
            np.mean([[(a > b) + 0.5 * (a == b) for b in yb[:, t]] for a in xb[:, t]]) for t in range(3)
        ]
        vals.append(np.mean(per_task))
    ref_low, ref_high = np.quantile(vals, [0.025, 0.975])
    assert abs(low - ref_low) < 0.1 * (high - low) and abs(high - ref_high) < 0.1 * (high - low)


# -- reproducibility -------------------------------------------------------------------------------
def test_seeded_reproducibility(monkeypatch):
    s = np.random.default_rng(0).random((10, 5))
    a = S.interval_estimates({"a": s, "b": s + 0.1}, reps=2000, seed=42)
    b = S.interval_estimates({"a": s, "b": s + 0.1}, reps=2000, seed=42)
    assert a == b
    c = S.interval_estimates({"a": s, "b": s + 0.1}, reps=2000, seed=43)
    assert a != c
    # a Generator is accepted and advanced: two calls with one generator differ, fresh ones agree
    g = np.random.default_rng(42)
    assert S.bootstrap_ci(s, seed=g, reps=500) != S.bootstrap_ci(s, seed=g, reps=500)
    assert S.bootstrap_ci(s, seed=np.random.default_rng(9), reps=500) == S.bootstrap_ci(s, seed=9, reps=500)
    # chunking is a memory detail only: same intervals when chunks are tiny
    want = S.bootstrap_ci(s, "median", reps=1000, seed=1)
    monkeypatch.setattr(S, "_CHUNK_ELEMS", 120)  # 2 resamples per chunk
    assert S.bootstrap_ci(s, "median", reps=1000, seed=1) == want
    assert S.performance_profile_ci(s, [0.3, 0.6], reps=300, seed=2)[1].shape == (2,)


def test_interval_estimates_shape_and_order():
    s = np.random.default_rng(0).random((10, 5))
    out = S.interval_estimates({"x": s}, metrics=["iqm", "mean"], reps=1000, seed=0)
    iv = out["x"]["iqm"]
    assert iv.point == pytest.approx(ref_iqm(s), abs=1e-12)
    assert iv.low <= iv.point <= iv.high
    assert out["x"]["mean"].as_tuple() == S.bootstrap_ci(s, "mean", reps=1000, seed=0)  # same stream


def test_performance_profile_band_contains_profile():
    s = np.random.default_rng(0).random((10, 5))
    taus = np.linspace(0, 1, 11)
    prof, low, high = S.performance_profile_ci(s, taus, reps=1000, seed=0)
    np.testing.assert_allclose(prof, ref_run_profile(s, taus), atol=1e-12)
    assert np.all(low <= prof + 1e-12) and np.all(prof <= high + 1e-12)


# -- bad input -------------------------------------------------------------------------------------
def test_single_run_refused():
    with pytest.raises(ConfigError, match="single run"):
        S.bootstrap_ci([0.7])
    with pytest.raises(ConfigError, match="single run"):
        S.interval_estimates({"algo": np.ones((1, 3))}, reps=10)
    with pytest.raises(ConfigError, match="single run"):
        S.probability_of_improvement_ci(np.ones((1, 2)), np.ones((3, 2)), reps=10)


def test_bad_input_messages():
    with pytest.raises(ConfigError, match="NaN"):
        S.bootstrap_ci([0.1, float("nan"), 0.3])
    with pytest.raises(ConfigError, match="statistic"):
        S.bootstrap_ci([0.1, 0.2], statistic="mode")
    with pytest.raises(ConfigError, match="reps"):
        S.bootstrap_ci([0.1, 0.2], reps=0)
    with pytest.raises(ConfigError, match="confidence"):
        S.bootstrap_ci([0.1, 0.2], confidence=1.5)
    with pytest.raises(ConfigError, match="tasks"):
        S.probability_of_improvement_ci(np.ones((2, 2)), np.ones((2, 3)))


def test_interval_coverage_on_known_distribution():
    # 400 experiments of 10 runs x 1 task from N(0.5, 0.1): the 95% percentile interval of the mean
    # should cover 0.5 in roughly 91-94% of them (the percentile method under-covers a little at n=10);
    # binomial sd of the estimate over 400 trials ~ sqrt(.92 * .08 / 400) = 0.014, so [0.86, 0.98] is safe
    rng = np.random.default_rng(2024)
    hits = 0
    for _ in range(400):
        x = rng.normal(0.5, 0.1, size=10)
        _, low, high = S.bootstrap_ci(x, "mean", reps=1000, seed=rng)
        hits += low <= 0.5 <= high
    assert 0.86 <= hits / 400 <= 0.98


def test_aggregates_give_nan_for_a_nan_score_instead_of_a_number():
    """iqm trimmed a NaN away (2.5), P(X > Y) counted NaN as a loss (0.0) and the profile as below tau."""
    from rlx.evaluation import stats

    nan = float("nan")
    assert np.isnan(stats.iqm(np.array([[1.0], [2.0], [3.0], [nan]])))
    assert stats.iqm(np.array([[1.0], [2.0], [3.0], [4.0]])) == 2.5
    assert np.isnan(stats.probability_of_improvement(np.array([[nan], [nan]]), np.array([[0.0], [1.0]])))
    assert np.isnan(stats.performance_profile(np.array([[nan], [1.0]]), [0.5])).all()
    assert stats.performance_profile(np.array([[0.0], [1.0]]), [0.5]).tolist() == [0.5]
