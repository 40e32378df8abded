"""Policy smoothing (paper smoothing): a certified total reward against adaptive observation attacks.

The smoothed policy acts on a noisy copy of each observation, fresh noise every step:

    a_t = pi(o_t + delta_t + eps_t),   eps_t ~ N(0, sigma^2 I)

where delta_t is the adversary's perturbation, any (randomised) function of everything seen so far,
with a total budget over the episode  sqrt(sum_t ||delta_t||_2^2) <= B.  With X the total reward
without attack and X_B under any such attack, the paper's adaptive Neyman-Pearson lemma gives, for
every threshold v,

    P[X_B >= v] >= Phi( Phi^-1( P[X >= v] ) - B / sigma )                               (1)

(`certified_survival`). It is tight for a linear decision on Gaussian noise, which the tests check.
From m Monte-Carlo episodes without attack, the survival function S(v) = P[X >= v] has the lower
confidence band S_lo(v) = max(0, S_hat(v) - eps), eps = sqrt(ln(2 / alpha) / (2 m)) (the two-sided
Dvoretzky-Kiefer-Wolfowitz-Massart bound, uniform in v, probability >= 1 - alpha). Rewards in
[low, high] give E[X] = low + int_low^high S(v) dv, hence the certified expected reward

    E[X_B] >= low + int_low^high Phi( Phi^-1( S_lo(v) ) - B / sigma ) dv                (2)

(`certified_expected_reward`; S_hat is a step function, so the integral is a finite sum), and the
certified p-quantile: the largest v with S_lo(v) >= Phi( Phi^-1(p) + B / sigma )  (`certified_quantile`;
p = 0.5: the attacked median is at least that v).

`smoothed_actions` is the defended policy. Two concrete adaptive attackers check that measured
attacked rewards stay above the certificate: `l2_attack` (a fixed-size gradient step against the
greedy action's Q-margin every step) and `flip_attack` (spends the budget only where a step of the
linearised flip size changes the greedy action, cheapest first, until the episode's budget is gone).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import norm

__all__ = ["certified_survival", "dkw_epsilon", "certified_expected_reward", "certified_quantile",
           "smoothed_actions", "l2_attack", "flip_attack"]


def certified_survival(survival: np.ndarray | float, sigma: float, budget: float) -> np.ndarray:
    """Eq. (1): the least P[X_B >= v] consistent with P[X >= v] = `survival`.  Elementwise, values in [0, 1]."""
    if not sigma > 0:  # written so that NaN fails too
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if not budget >= 0:
        raise ValueError(f"budget must be >= 0, got {budget}")
    s = np.clip(np.asarray(survival, dtype=np.float64), 0.0, 1.0)
    return norm.cdf(norm.ppf(s) - budget / sigma)  # ppf(0) = -inf -> 0, ppf(1) = inf -> 1


def dkw_epsilon(m: int, alpha: float | None) -> float:
    """Half-width of the uniform confidence band of an empirical CDF from m samples (0 if alpha is None)."""
    if alpha is None:
        return 0.0
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * m))


def _sorted_survival(returns: np.ndarray, low: float, high: float, alpha: float | None):
    x = np.sort(np.asarray(returns, dtype=np.float64))
    if not np.all(np.isfinite(x)):  # np.sort puts NaN last: it counted as the best return
        raise ValueError(f"returns must be finite; got {int((~np.isfinite(x)).sum())} non-finite")
    if x.size and (x[0] < low or x[-1] > high):
        raise ValueError(f"returns must lie in [low, high] = [{low}, {high}], got [{x[0]}, {x[-1]}]")
    m = x.size
    if m == 0:
        raise ValueError("need at least one episode return")
    s_hat = (m - np.arange(m)) / m  # S_hat(v) on (x_(k-1), x_(k)] for k = 1..m
    return x, np.maximum(0.0, s_hat - dkw_epsilon(m, alpha))


def certified_expected_reward(returns, sigma: float, budget: float, low: float, high: float,
                              alpha: float | None = 0.05) -> float:
    """Eq. (2): a lower bound on E[X_B] from unattacked smoothed returns [m], rewards in [low, high].

    With budget 0 and alpha None it is the sample mean. Returns outside [low, high] are an error.
    """
    x, s_lo = _sorted_survival(returns, low, high, alpha)
    widths = np.diff(np.concatenate([[low], x]))  # x_(k) - x_(k-1), x_(0) = low
    return float(low + np.sum(widths * certified_survival(s_lo, sigma, budget)))


def certified_quantile(returns, sigma: float, budget: float, p: float = 0.5, low: float = -math.inf,
                       alpha: float | None = 0.05) -> float:
    """The largest v with P[X_B >= v] >= p certified by eq. (1); if no sample qualifies, `low`, which must
    be a known lower bound on the total reward (default -inf: nothing is certified)."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    if np.size(returns) and np.min(returns) < low:
        raise ValueError(f"a return ({np.min(returns)}) is below low = {low}, which must bound the rewards")
    x, s_lo = _sorted_survival(returns, low, math.inf, alpha)
    ok = certified_survival(s_lo, sigma, budget) >= p
    return float(x[ok].max()) if ok.any() else float(low)


def smoothed_actions(q_fn, obs: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Greedy actions on a Gaussian-noised copy of each observation.  obs [N, D] -> [N] long"""
    noise = torch.randn(obs.shape, generator=generator, dtype=obs.dtype, device=obs.device) * sigma
    return q_fn(obs + noise).argmax(1)


def l2_attack(q_fn, obs: torch.Tensor, step_budget: float) -> torch.Tensor:
    """delta [N, D] with ||delta_i||_2 = step_budget that lowers the clean greedy action's Q-margin over the
    runner-up (one normalised gradient step; the attacker sees the clean observation, not the noise)."""
    x = obs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        q = q_fn(x)
        top2 = q.topk(2, dim=1)
        margin = (top2.values[:, 0] - top2.values[:, 1]).sum()
        (grad,) = torch.autograd.grad(margin, x)
    norm_ = grad.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return -(grad / norm_) * step_budget


def flip_attack(q_fn, obs: torch.Tensor, remaining: torch.Tensor, overshoot: float = 1.05
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip the clean greedy action wherever the linearised cost fits the budget left.

    Per row: the step that moves the observation across the linearised decision boundary between the
    greedy action and the runner-up has norm margin / ||grad margin|| (times `overshoot`); it is taken
    when its square fits `remaining` (the squared l2 budget left, [N]), else delta is 0.
    Returns (delta [N, D], remaining - ||delta||^2 [N]); sum_t ||delta_t||^2 never exceeds the start value.
    """
    x = obs.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        top2 = q_fn(x).topk(2, dim=1)
        margin = top2.values[:, 0] - top2.values[:, 1]  # [N] >= 0
        (grad,) = torch.autograd.grad(margin.sum(), x)
    g_norm = grad.norm(dim=1).clamp_min(1e-12)
    size = margin.detach() / g_norm * overshoot  # [N]
    take = size.square() <= remaining
    delta = torch.where(take[:, None], -(grad / g_norm[:, None]) * size[:, None], torch.zeros_like(grad))
    return delta, remaining - torch.where(take, size.square(), torch.zeros_like(size))
