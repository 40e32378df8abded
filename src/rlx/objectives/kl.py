"""KL estimators to a reference policy, the KL reward penalty, and rollout/trainer mismatch metrics.

With samples y ~ pi and log-ratio  l = log pi_ref(y) - log pi(y)  (per token), Schulman's estimators of
KL(pi || pi_ref) are
    k1 = -l                      unbiased, can be negative
    k2 = l^2 / 2                 biased, low variance, >= 0
    k3 = exp(l) - 1 - l          unbiased, >= 0 (since e^x >= 1 + x)
Paper: Schulman, "Approximating KL divergence" (2020); used by grpo (k3 as a loss term).
"""

from __future__ import annotations

from typing import Literal

import torch

from rlx.objectives.aggregate import masked_mean

__all__ = ["KLEstimator", "kl_k1", "kl_k2", "kl_k3", "KL_ESTIMATORS", "kl_penalty_rewards", "mismatch_metrics"]

KLEstimator = Literal["k1", "k2", "k3"]


def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k1 = log pi - log pi_ref, per token [N, T]."""
    return logprobs - ref_logprobs


def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k2 = (log pi - log pi_ref)^2 / 2, per token [N, T]."""
    return 0.5 * (logprobs - ref_logprobs) ** 2


K3_LOG_RATIO_CLAMP = 20.0


def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    """k3 = exp(l) - 1 - l with l = log pi_ref - log pi, per token [N, T]; always >= 0.

    Computed as expm1(l) - l for accuracy when l is small. l is clamped to +-20 (exp(20) ~ 4.9e8): past
    l ~ 88 exp overflows and one token made the loss and every gradient inf. A clamped token contributes no
    gradient (verl clamps the same way).
    """
    log_ratio = (ref_logprobs - logprobs).clamp(-K3_LOG_RATIO_CLAMP, K3_LOG_RATIO_CLAMP)
    return torch.expm1(log_ratio) - log_ratio


KL_ESTIMATORS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def kl_penalty_rewards(
    rewards: torch.Tensor,
    kl_tokens: torch.Tensor,
    response_mask: torch.Tensor,
    coef: float,
    *,
    per_token: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """KL as a reward penalty (KL detached: the reward is data, not a loss).

    per_token=False: r'_i = r_i - coef * sum_t m_it kl_it                          -> [N]
    per_token=True:  r'_it = -coef * kl_it + r_i [t = last valid token]            -> [N, T]
    (the per-token form feeds REINFORCE++ / GAE; the sequence form feeds group estimators).
    Paper: ppo (InstructGPT-style KL reward), reinforcepp.
    """
    from rlx.objectives.advantages import outcome_to_token_rewards

    m = response_mask.to(torch.float32)
    kl = kl_tokens.detach().to(torch.float32) * m
    seq_kl = kl.sum(dim=1)
    metrics = {"kl/reward_penalty_seq_mean": coef * seq_kl.mean()}
    if per_token:
        return outcome_to_token_rewards(rewards, response_mask) - coef * kl, metrics
    return rewards.to(torch.float32) - coef * seq_kl, metrics


def mismatch_metrics(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Rollout-engine vs trainer mismatch on the same sampled tokens. Paper: jetrl.

    The tokens were sampled by the rollout engine (pi_roll) and scored again by the trainer (pi_train =
    old_logprobs). With l = log pi_train - log pi_roll:
        mismatch/kl_k3  = masked mean of exp(l) - 1 - l   (estimates KL(pi_roll || pi_train), >= 0)
        mismatch/kl_k1  = masked mean of -l               (same KL, unbiased, may be < 0)
        mismatch/ratio_max = max over valid tokens of pi_train / pi_roll (the importance ratio)
        mismatch/ratio_min = min of the same ratio
    Masked means are over valid tokens of the given batch. On an empty mask the means are 0, ratio_max
    is 0 and ratio_min is +inf (neutral for max/min accumulation over micro-batches).
    """
    m = response_mask.bool()
    log_ratio = (old_logprobs.detach() - rollout_logprobs.detach()).to(torch.float32)
    ratio = torch.exp(log_ratio)
    k3 = torch.expm1(log_ratio) - log_ratio
    zero = torch.zeros((), dtype=ratio.dtype, device=ratio.device)
    return {
        "mismatch/kl_k3": masked_mean(k3, m),
        "mismatch/kl_k1": masked_mean(-log_ratio, m),
        "mismatch/ratio_max": torch.where(m, ratio, zero).max() if m.numel() else zero,
        "mismatch/ratio_min": torch.where(m, ratio, torch.inf).min() if m.numel() else zero + torch.inf,
    }
