"""Pure value-learning math for control RL: targets, histogram projections, robust losses.

Every function takes tensors and returns `(value, metrics)` or a tensor; no optimizer, no logging.
Notation (docs/NOTATION.md): `r_t` reward, `discount_t` = gamma * (1 - terminated_t),
`v_tp1` the bootstrap value of the true successor state, `continue_t` = 1 - done_t (the rollout's
next row belongs to the same episode).
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "q_lambda_targets",
    "hl_gauss_probs",
    "two_hot_probs",
    "categorical_mean",
    "expectile_loss",
    "huber",
    "quantile_target",
]


def q_lambda_targets(
    r_t: torch.Tensor,  # [T, N]
    discount_t: torch.Tensor,  # [T, N] gamma * (1 - terminated_t)
    v_tp1: torch.Tensor,  # [T, N] max_a Q(s_{t+1}, a) at the true successor (final_obs)
    continue_t: torch.Tensor,  # [T, N] 1 - (terminated_t | truncated_t)
    lambda_: float,
    trace_bonus_t: torch.Tensor | None = None,  # [T, N] soft Q-learning: -alpha log nu(a_t | s_t)
) -> torch.Tensor:
    """Peng's Q(lambda) returns, computed backwards over a rollout.  Paper: pqn

        G_{T-1} = r_{T-1} + discount_{T-1} * v_{T}
        G_t     = r_t + discount_t * [ v_{t+1} + continue_t * lambda * (G_{t+1} - v_{t+1}) ]

    i.e. G_t = r_t + discount_t * ((1 - lambda) v_{t+1} + lambda G_{t+1}) inside an episode. Where
    the episode was truncated (continue_t = 0, discount_t = gamma) the return bootstraps from the
    true final state only; where it terminated (discount_t = 0) it is just r_t.

    Soft values (v = alpha logsumexp(Q / alpha), paper qarl): the trace follows the action taken at t+1,
    whose return estimates Q(s_{t+1}, a_{t+1}), while v_{t+1} = E_nu[Q - alpha log nu]. The trace therefore
    carries the entropy term of the action it follows, `trace_bonus_{t+1} = -alpha log nu(a_{t+1} | s_{t+1})`:
        G_t = r_t + discount_t * [ v_{t+1} + continue_t * lambda * (G_{t+1} + trace_bonus_{t+1} - v_{t+1}) ]
    Without it the fixed point is entropy-regularised at (1 - lambda) alpha, not alpha.
    """
    T = r_t.shape[0]
    out = torch.empty_like(r_t)
    g = r_t[T - 1] + discount_t[T - 1] * v_tp1[T - 1]
    out[T - 1] = g
    for t in range(T - 2, -1, -1):
        follow = g if trace_bonus_t is None else g + trace_bonus_t[t + 1]
        g = r_t[t] + discount_t[t] * (v_tp1[t] + continue_t[t] * lambda_ * (follow - v_tp1[t]))
        out[t] = g
    return out


def hl_gauss_probs(target: torch.Tensor, edges: torch.Tensor, sigma: float) -> torch.Tensor:
    """Project N(target, sigma^2) onto the histogram with bin `edges` [K+1].  Paper: hlgauss

        p_i = (Phi((e_{i+1} - y) / sigma) - Phi((e_i - y) / sigma)) / (Phi((e_K - y)/sigma) - Phi((e_0 - y)/sigma))

    The normaliser puts back the mass that falls outside the support, so rows sum to 1.
    The paper's default is sigma = 0.75 * bin width. Returns [..., K].
    Targets are first clipped to [e_0, e_K] (as two-hot does): a target many sigmas outside the support
    would otherwise leave no mass in float32 (erf saturates at both edges) and give an all-zero row,
    i.e. zero loss and zero gradient for that sample.
    """
    y = target.clamp(edges[0], edges[-1])
    z = (edges - y.unsqueeze(-1)) / (sigma * math.sqrt(2.0))
    cdf = torch.special.erf(z)  # 2 * Phi - 1; the factor cancels in the ratio
    mass = cdf[..., 1:] - cdf[..., :-1]
    return mass / (cdf[..., -1:] - cdf[..., :1]).clamp_min(1e-12)


def two_hot_probs(target: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Two-hot encoding on evenly spaced `centers` [K]: the two nearest bins share the mass so that
    sum_i p_i c_i = clip(target, c_0, c_{K-1}) exactly. Returns [..., K]."""
    k = centers.numel()
    width = (centers[-1] - centers[0]) / (k - 1)
    y = target.clamp(centers[0], centers[-1])
    pos = (y - centers[0]) / width  # fractional bin index in [0, K-1]
    lo = pos.floor().clamp(0, k - 2)
    w_hi = pos - lo
    probs = torch.zeros(*target.shape, k, dtype=target.dtype, device=target.device)
    probs.scatter_(-1, lo.long().unsqueeze(-1), (1 - w_hi).unsqueeze(-1))
    probs.scatter_add_(-1, (lo.long() + 1).unsqueeze(-1), w_hi.unsqueeze(-1))
    return probs


def categorical_mean(logits: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """E[value] = sum_i softmax(logits)_i c_i over the last dim."""
    return (torch.softmax(logits, dim=-1) * centers).sum(-1)


def expectile_loss(diff: torch.Tensor, tau: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Asymmetric squared loss L_tau(u) = |tau - 1(u < 0)| u^2 with u = Q(s,a) - V(s), averaged.

    Paper: iql (eq. 5). tau = 0.5 is half the MSE; tau -> 1 approaches max_a Q.
    """
    weight = (tau - (diff < 0).to(diff.dtype)).abs()
    loss = (weight * diff.square()).mean()
    return loss, {"expectile_weight_mean": weight.mean().detach()}


def huber(diff: torch.Tensor, delta: float) -> torch.Tensor:
    """Elementwise Huber: 0.5 u^2 / delta for |u| <= delta, |u| - 0.5 delta beyond.

    Paper: riql (eq. 7 uses this scaling, l_H^delta(u) = u^2/(2 delta) inside, so that it tends
    to |u| as delta -> 0 and to u^2/(2 delta) as delta grows)."""
    a = diff.abs()
    return torch.where(a <= delta, 0.5 * diff.square() / delta, a - 0.5 * delta)


def quantile_target(values: torch.Tensor, alpha: float) -> torch.Tensor:
    """alpha-quantile over an ensemble (dim 0) with linear interpolation.  Paper: riql

    RIQL's value target is the alpha-quantile of the K ensemble members' Q(s, a) (alpha = 0.25 by
    default): a pessimistic but outlier-resistant alternative to min over the ensemble
    (alpha = 0 gives the min, alpha = 0.5 the median).
    """
    return torch.quantile(values, alpha, dim=0)
