"""Policy smoothing certificates (paper smoothing): hand values, tightness, and the bound holding under attack."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from rlx.robust.smoothing import (certified_expected_reward, certified_quantile, certified_survival, dkw_epsilon,
                                  flip_attack, l2_attack, smoothed_actions)


def test_certified_survival_hand_values():
    # Phi(Phi^-1(0.8413447) - 1) = Phi(1 - 1) = 0.5 ; budget 0 changes nothing ; edges stay put
    assert certified_survival(norm.cdf(1.0), sigma=0.5, budget=0.5) == pytest.approx(0.5, abs=1e-12)
    assert certified_survival(0.3, sigma=1.0, budget=0.0) == pytest.approx(0.3, abs=1e-12)
    assert certified_survival(np.array([0.0, 1.0]), 1.0, 2.0).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="sigma"):
        certified_survival(0.5, 0.0, 1.0)


@pytest.mark.parametrize("x,sigma,budget", [(0.3, 0.2, 0.1), (1.0, 0.5, 0.7), (-0.2, 0.3, 0.05)])
def test_bound_is_tight_for_a_linear_decision(x, sigma, budget):
    """One step, reward 1 iff x + delta + eps > 0. Clean: Phi(x / sigma); the best attack shifts x by -B:
    Phi((x - B) / sigma), which is exactly what eq. (1) certifies."""
    clean = norm.cdf(x / sigma)
    assert certified_survival(clean, sigma, budget) == pytest.approx(norm.cdf((x - budget) / sigma), abs=1e-12)


def test_expected_reward_hand_values():
    r = np.array([1.0, 3.0, 3.0, 5.0])
    # no attack, no confidence band: the mean
    assert certified_expected_reward(r, 1.0, 0.0, low=0.0, high=10.0, alpha=None) == pytest.approx(3.0)
    # every return equal to c: S = 1 up to c, 0 after -> low + (c - low) * Phi(Phi^-1(1 - eps) - B / sigma)
    m, alpha, sigma, b = 100, 0.05, 0.5, 0.2
    eps = math.sqrt(math.log(2 / alpha) / (2 * m))
    assert dkw_epsilon(m, alpha) == pytest.approx(eps)
    want = 2.0 + (7.0 - 2.0) * norm.cdf(norm.ppf(1 - eps) - b / sigma)
    assert certified_expected_reward(np.full(m, 7.0), sigma, b, low=2.0, high=9.0, alpha=alpha) == pytest.approx(want)
    # more budget, less certified
    vals = [certified_expected_reward(r, 1.0, b, 0.0, 10.0, None) for b in (0.0, 0.5, 1.0, 2.0)]
    assert all(a > b for a, b in zip(vals, vals[1:]))


def test_quantile_hand_values():
    r = np.arange(1.0, 11.0)  # 1..10, S_hat(k) = (11 - k) / 10
    assert certified_quantile(r, 1.0, 0.0, p=0.5, alpha=None) == 6.0  # S_hat(6) = 0.5, S_hat(7) = 0.4
    # budget B = sigma * Phi^-1(0.8): need S_hat >= Phi(0 + Phi^-1(0.8)) = 0.8 -> v = 3
    assert certified_quantile(r, 1.0, norm.ppf(0.8), p=0.5, alpha=None) == 3.0
    # without a confidence band the smallest sample is always certified (S_hat = 1 there) ...
    assert certified_quantile(r, 1.0, 10.0, p=0.5, alpha=None) == 1.0
    # ... with one (m = 10, eps = 0.43) a budget of 10 sigma certifies nothing: `low` (default -inf)
    assert certified_quantile(r, 1.0, 10.0, p=0.5, low=-1.0, alpha=0.05) == -1.0
    assert certified_quantile(r, 1.0, 10.0, p=0.5, alpha=0.05) == -math.inf
    # negative rewards are certified as they are, never lifted to a default floor
    assert certified_quantile(np.array([-100.0, -90.0, -80.0]), 1.0, 0.0, p=0.5, alpha=None) == -90.0
    with pytest.raises(ValueError, match="below low"):
        certified_quantile(r, 1.0, 0.0, low=5.0)
    with pytest.raises(ValueError, match=r"\[low, high\]"):
        certified_expected_reward(r, 1.0, 0.0, low=0.0, high=5.0)


def test_certificate_holds_against_the_worst_attack_by_monte_carlo():
    """A 2-D one-step game: reward 1 iff w . (o + delta + eps) > 0. From 4000 clean smoothed samples the
    certified expected reward (alpha 1e-3) must sit below the reward under the optimal attack, and close to it."""
    g = torch.Generator().manual_seed(0)
    w, o, sigma, b = torch.tensor([0.6, 0.8]), torch.tensor([0.3, 0.2]), 0.4, 0.15
    eps = torch.randn(4000, 2, generator=g) * sigma
    clean = ((o + eps) @ w > 0).double().numpy()
    attacked = ((o - b * w + eps) @ w > 0).double().mean().item()  # -B * w/|w| is the worst shift (|w| = 1)
    bound = certified_expected_reward(clean, sigma, b, low=0.0, high=1.0, alpha=1e-3)
    assert bound <= attacked <= bound + 0.08


def test_smoothed_actions_and_attack():
    q = torch.nn.Linear(3, 2)
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]))
        q.bias.zero_()
    obs = torch.tensor([[0.5, 1.0, -1.0], [-0.2, 0.0, 0.0]])
    assert smoothed_actions(q, obs, sigma=1e-6).tolist() == [0, 1]
    g = torch.Generator().manual_seed(0)
    acts = torch.stack([smoothed_actions(q, obs[:1].expand(2000, 3), 0.5, g) for _ in range(1)]).float()
    assert acts.mean().item() == pytest.approx(1 - norm.cdf(0.5 / 0.5), abs=0.03)  # P[x + eps < 0]
    delta = l2_attack(q, obs, step_budget=0.3)
    assert torch.allclose(delta.norm(dim=1), torch.full((2,), 0.3))
    assert torch.allclose(delta, torch.tensor([[-0.3, 0.0, 0.0], [0.3, 0.0, 0.0]]))  # pushes toward the boundary


def test_flip_attack_flips_when_affordable_and_keeps_the_budget():
    q = torch.nn.Linear(2, 2)
    with torch.no_grad():
        q.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))  # margin = 2|x0|, gradient norm 2: flip size |x0|
        q.bias.zero_()
    obs = torch.tensor([[0.1, 0.0], [0.5, 0.0], [-0.2, 3.0]])
    remaining = torch.tensor([0.04, 0.04, 1.0])
    delta, left = flip_attack(q, obs, remaining, overshoot=1.0)
    # row 0: cost 0.1^2 = 0.01 fits -> moved to the boundary; row 1: 0.25 > 0.04 -> untouched; row 2: 0.04 fits
    assert torch.allclose(delta, torch.tensor([[-0.1, 0.0], [0.0, 0.0], [0.2, 0.0]]))
    assert torch.allclose(left, torch.tensor([0.03, 0.04, 0.96]))
    flipped = q(obs + flip_attack(q, obs, remaining)[0]).argmax(1)  # default overshoot 1.05 crosses the boundary
    assert flipped.tolist() == [1, 0, 0]


def test_nan_returns_and_settings_are_refused():
    """np.sort put a NaN episode last, so it counted as the best return and raised the certified median
    (7.0 instead of 6.0); NaN sigma or budget came back as a NaN certificate."""
    import math

    import numpy as np

    from rlx.robust.smoothing import certified_expected_reward, certified_quantile, certified_survival

    with pytest.raises(ValueError, match="finite"):
        certified_quantile([math.nan, 5, 6, 7], sigma=1, budget=0, p=0.5, low=0, alpha=None)
    with pytest.raises(ValueError, match="finite"):
        certified_expected_reward(np.array([10, 20, math.nan, 30]), sigma=1, budget=0.1, low=0, high=100)
    with pytest.raises(ValueError, match="sigma"):
        certified_survival(0.9, math.nan, 0.1)
    with pytest.raises(ValueError, match="budget"):
        certified_survival(0.9, 1.0, math.nan)
