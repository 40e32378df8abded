"""Adaptive defense (paper nondominated): the non-dominated filter and EXP3 by hand, and EXP3 finding the best arm."""

import math

import numpy as np
import pytest

from rlx.robust.adaptive import Exp3, adaptive_returns, exp3_gamma, nondominated


def test_nondominated_hand_example():
    r = np.array([[10, 5, 1],    # 0: best with no attack
                  [8, 8, 8],     # 1: robust
                  [7, 8, 8],     # 2: dominated by 1 (<= everywhere, < once)
                  [10, 5, 1],    # 3: a copy of 0 (dropped, 0 kept)
                  [1, 1, 9]])    # 4: best under the strongest attack
    assert nondominated(r) == [0, 1, 4]
    assert nondominated(np.array([[1.0, 2.0]])) == [0]


def test_exp3_probabilities_and_update_by_hand():
    b = Exp3(k=2, gamma=0.5, seed=0)
    np.testing.assert_allclose(b.probs(), [0.5, 0.5])
    b.update(0, 1.0)  # x / p = 2, w_0 = exp(0.5 * 2 / 2) = e^0.5
    w0 = math.exp(0.5)
    expect = 0.5 * np.array([w0, 1.0]) / (w0 + 1.0) + 0.25
    np.testing.assert_allclose(b.probs(), expect)
    with pytest.raises(ValueError, match="rewards"):
        b.update(1, 1.5)
    with pytest.raises(ValueError):
        Exp3(k=0, gamma=0.1)


def test_exp3_concentrates_on_the_best_arm_and_its_regret_is_small():
    means = np.array([0.2, 0.5, 0.8])
    rng = np.random.default_rng(1)
    arms, rets = adaptive_returns(lambda arm, t: float(rng.random() < means[arm]), 3, 3000, 1.0, seed=0)
    assert np.mean(arms[-1000:] == 2) > 0.8
    regret = 3000 * 0.8 - rets.sum()
    bound = 2 * math.sqrt(math.e - 1) * math.sqrt(3000 * 3 * math.log(3))  # EXP3's expected-regret bound
    assert regret < bound
    assert exp3_gamma(3, 3000) == pytest.approx(math.sqrt(3 * math.log(3) / ((math.e - 1) * 3000)))
