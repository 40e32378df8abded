"""Tests for rlx.evaluation.spectrum: pass@k curves with intervals over problems and seeds."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from rlx.config import ConfigError
from rlx.evaluation import spectrum as SP


def test_hand_computed_point():
    # n = 4 samples; c = 0, 1, 2, 4 correct.  pass@1 = c / n: (0 + .25 + .5 + 1) / 4 = 0.4375
    # pass@2 = 1 - C(4-c, 2) / C(4, 2):  c=0: 1 - 6/6 = 0; c=1: 1 - 3/6 = 0.5; c=2: 1 - 1/6 = 5/6;
    #          c=4: 1 -> (0 + 0.5 + 0.8333 + 1) / 4 = 0.583333
    # pass@4 = 1 if c > 0 else 0 -> 3/4 = 0.75
    res = SP.passk_spectrum(4, [0, 1, 2, 4], resample=("problems",), reps=50, seed=0)
    np.testing.assert_array_equal(res.ks, [1, 2, 4])
    np.testing.assert_allclose(res.point, [0.4375, (0 + 0.5 + 5 / 6 + 1) / 4, 0.75], atol=1e-12)


def test_point_is_mean_over_seeds_and_problems_and_matches_comb():
    rng = np.random.default_rng(0)
    n = rng.integers(8, 12, size=(3, 20))
    c = rng.binomial(n, 0.3)
    ks = [1, 2, 4, 8]
    res = SP.passk_spectrum(n, c, ks=ks, reps=100, seed=0)
    want = [np.mean([1 - comb(int(ni - ci), k) / comb(int(ni), k) for ni, ci in zip(n.ravel(), c.ravel())]) for k in ks]
    np.testing.assert_allclose(res.point, want, atol=1e-12)
    assert res.per_seed.shape == (3, 4)
    assert np.all(res.low <= res.point + 1e-12) and np.all(res.point <= res.high + 1e-12)
    assert np.all(np.diff(res.point) >= 0)  # pass@k grows with k


def test_vectorised_resample_equals_loop():
    rng = np.random.default_rng(1)
    m = rng.random((3, 2, 6))  # [S, K, P]
    si = rng.integers(0, 3, size=(40, 3))
    pi = rng.integers(0, 6, size=(40, 6))
    got = SP.spectrum_from_indices(m, si, pi)
    for b in range(40):
        for k in range(2):
            want = np.mean([[m[s, k, p] for p in pi[b]] for s in si[b]])
            assert got[b, k] == pytest.approx(want, abs=1e-12)


def test_interval_agrees_with_slow_loop_and_is_reproducible():
    rng = np.random.default_rng(2)
    c = rng.binomial(8, rng.beta(1, 2, size=30), size=(4, 30))
    res = SP.passk_spectrum(8, c, ks=[1, 8], reps=8000, seed=0)
    again = SP.passk_spectrum(8, c, ks=[1, 8], reps=8000, seed=0)
    np.testing.assert_array_equal(res.low, again.low)
    m = SP.passk_matrix(8, c, [1, 8])
    loop_rng = np.random.default_rng(77)
    vals = []
    for _ in range(3000):
        s = loop_rng.integers(0, 4, 4)
        p = loop_rng.integers(0, 30, 30)
        vals.append(m[s][:, :, p].mean(axis=(0, 2)))
    lo, hi = np.quantile(np.array(vals), [0.025, 0.975], axis=0)
    width = res.high - res.low
    assert np.all(np.abs(res.low - lo) < 0.1 * width) and np.all(np.abs(res.high - hi) < 0.1 * width)


def test_bad_input():
    with pytest.raises(ConfigError, match="single seed"):
        SP.passk_spectrum(4, [[1, 2, 3]])
    with pytest.raises(ConfigError, match="k must be"):
        SP.passk_spectrum(4, [[1, 2], [0, 1]], ks=[8])
    with pytest.raises(ConfigError, match="c <= n"):
        SP.passk_spectrum(4, [[5, 2], [0, 1]])
    with pytest.raises(ConfigError, match="resample"):
        SP.passk_spectrum(4, [[1, 2], [0, 1]], resample=("runs",))


def test_sample_counts_per_seed_are_not_broadcast_along_problems():
    """n given per seed ([S]) used to broadcast along the problems axis (silently wrong when S == P); n must
    be a scalar or c's shape. A problem with no samples is a ConfigError, not an IndexError."""
    with pytest.raises(ConfigError, match=r"n has shape \(2,\) but c has shape \(2, 2\)"):
        SP.passk_matrix(np.array([4, 8]), np.array([[1, 1], [3, 3]]), [1])
    m = SP.passk_matrix(np.array([[4, 4], [8, 8]]), np.array([[1, 1], [3, 3]]), [1])
    assert np.allclose(m[:, 0, :], [[0.25, 0.25], [0.375, 0.375]])
    assert np.allclose(SP.passk_matrix(np.array([4, 8]), np.array([1, 3]), [1])[0, 0], [0.25, 0.375])  # one seed
    with pytest.raises(ConfigError, match="at least one sample"):
        SP.passk_spectrum(np.array([[0, 4], [4, 4]]), np.array([[0, 1], [1, 1]]), resample=("problems",))


def test_counts_must_be_whole_numbers_and_ks_given():
    """passk_counts.json is user input to `rlx compare`: c = 1.7 was read as 1 and n = 4.9 as 4, silently."""
    from rlx.config import ConfigError
    from rlx.evaluation.spectrum import passk_matrix

    with pytest.raises(ConfigError, match="whole numbers"):
        passk_matrix(4, [1.7, 2.0, 0.0], [1, 2])
    with pytest.raises(ConfigError, match="whole numbers"):
        passk_matrix(4.9, [1, 2, 4], [1, 2])
    with pytest.raises(ConfigError, match="k must be in"):
        passk_matrix(4, [1, 2, 3], [])
    np.testing.assert_allclose(passk_matrix(4.0, [1.0, 2.0, 4.0], [1])[0, 0], [0.25, 0.5, 1.0])
