"""Per-token policy and value losses [N, T]; `aggregate` reduces them. Each returns (loss_tokens, metrics).

Notation: r_t = pi(y_t) / pi_old(y_t) = exp(logprobs - old_logprobs), A_t advantages, m_t response_mask.
Metrics are local masked means over `response_mask` (names ending in `_max`/`_min` are extrema);
loss values at masked positions are whatever falls out and must be dropped by `aggregate`.
"""

from __future__ import annotations

import torch

from rlx.objectives.aggregate import masked_mean

__all__ = [
    "ppo_clip_loss",
    "gspo_loss",
    "reinforce_loss",
    "tis_weights",
    "entropy_bonus",
    "value_loss",
]

Metrics = dict[str, torch.Tensor]
MAX_LOG_RATIO = 20.0  # |log r| is clamped here before exp (r = inf would turn -0 * r into NaN)


def _masked_max(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.bool()
    return torch.where(m.any(), torch.where(m, x, -torch.inf).max(), torch.zeros((), dtype=x.dtype, device=x.device))


def _clipped_surrogate(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    eps_low: float,
    eps_high: float,
    dual_clip: float | None,
) -> tuple[torch.Tensor, Metrics]:
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - eps_low, 1.0 + eps_high)
    loss = torch.maximum(unclipped, clipped)
    m = response_mask.bool()
    metrics: Metrics = {
        "policy/clip_frac": masked_mean((clipped > unclipped).float(), m),
        "policy/clip_frac_low": masked_mean(((ratio < 1.0 - eps_low) & (advantages < 0)).float(), m),
        "policy/clip_frac_high": masked_mean(((ratio > 1.0 + eps_high) & (advantages > 0)).float(), m),
    }
    if dual_clip is not None:
        cap = -advantages * dual_clip
        hit = (advantages < 0) & (loss > cap)
        loss = torch.where(hit, cap, loss)
        metrics["policy/dual_clip_frac"] = masked_mean(hit.float(), m)
    return loss, metrics


def _ratio_metrics(log_ratio: torch.Tensor, response_mask: torch.Tensor) -> Metrics:
    lr = log_ratio.detach()
    ratio = torch.exp(lr)
    return {
        # k3 estimate of KL(pi_old || pi) from tokens sampled by pi_old: (r - 1) - log r, r = pi / pi_old = exp(l)
        "policy/approx_kl": masked_mean(torch.expm1(lr) - lr, response_mask),
        "policy/ratio_mean": masked_mean(ratio, response_mask),
        "policy/ratio_max": _masked_max(ratio, response_mask),
    }


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """PPO clipped surrogate with decoupled clip range and optional dual clip, per token.

    L_t = max(-A_t r_t, -A_t clip(r_t, 1 - eps_low, 1 + eps_high))
    dual clip (c > 1, only where A_t < 0):  L_t = min(L_t, -c A_t)
    eps_high > eps_low is DAPO's clip-higher. Paper: ppo, dapo (clip-higher), dual-clip PPO (Ye et al. 2020).
    """
    log_ratio = logprobs - old_logprobs
    # clamped before exp (as kl_k3 is): a log-ratio above ~88.7 made r = inf and, on a token with A = 0 (any tied
    # group), -0 * inf = NaN for the whole batch; e^20 is far beyond every clip range, so nothing else changes
    ratio = torch.exp(log_ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO))
    loss, metrics = _clipped_surrogate(ratio, advantages, response_mask, eps_low, eps_high, dual_clip)
    return loss, {**metrics, **_ratio_metrics(log_ratio, response_mask)}


def gspo_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    eps_low: float = 3e-4,
    eps_high: float = 4e-4,
    dual_clip: float | None = None,
) -> tuple[torch.Tensor, Metrics]:
    """GSPO: sequence-level, length-normalised importance ratio, clipped per sequence.

    s_i = exp( (1/|y_i|) sum_t m_it (log pi - log pi_old) );  token form (GSPO-token)
    s_it = sg[s_i] * pi(y_t) / sg[pi(y_t)]  (value s_i, gradient s_i grad log pi(y_t));
    L_it = max(-A_it s_it, -A_it clip(s_it, 1 - eps_low, 1 + eps_high)).
    With sequence advantages and seq-mean-token-mean aggregation this is GSPO's objective exactly.
    Paper: gspo (Zheng et al. 2025; default clip 3e-4 / 4e-4).
    """
    m = response_mask.to(logprobs.dtype)
    lengths = m.sum(dim=1).clamp_min(1.0)
    seq_log_ratio = ((logprobs - old_logprobs) * m).sum(dim=1) / lengths  # [N]
    token_log_ratio = seq_log_ratio.detach().clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)[:, None] + logprobs - logprobs.detach()
    loss, metrics = _clipped_surrogate(torch.exp(token_log_ratio), advantages, response_mask, eps_low, eps_high, dual_clip)
    # policy/approx_kl and ratio_* from the token log-ratios (as for PPO): the k3 of a sequence's mean log-ratio
    # is no KL estimate and was ~30x smaller; policy/seq_ratio_max is the ratio GSPO clips
    seq = {"policy/seq_ratio_max": torch.exp(seq_log_ratio.detach()).max() if seq_log_ratio.numel() else
           seq_log_ratio.new_zeros(())}
    return loss, {**metrics, **_ratio_metrics((logprobs - old_logprobs).detach(), response_mask), **seq}


def reinforce_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
) -> tuple[torch.Tensor, Metrics]:
    """Vanilla policy gradient: L_t = -A_t log pi(y_t) (on-policy; old_logprobs only for metrics).

    Paper: Williams 1992; nsr trains W-REINFORCE with this loss.
    """
    return -advantages * logprobs, _ratio_metrics(logprobs - old_logprobs, response_mask)


def tis_weights(
    old_logprobs: torch.Tensor,
    rollout_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    cap: float,
) -> tuple[torch.Tensor, Metrics]:
    """Truncated importance sampling for rollout/trainer mismatch: w_t = min(pi_old / pi_rollout, C).

    Detached weights [N, T] that multiply the per-token policy loss. pi_old is the trainer's score of
    the sampled tokens, pi_rollout the engine's (vLLM / fp8 / ...). Paper: TIS (Yao et al. 2025), jetrl.
    """
    w = torch.exp((old_logprobs - rollout_logprobs).detach())
    capped = torch.clamp(w, max=cap)
    return capped, {"tis/weight_mean": masked_mean(capped, response_mask),
                    "tis/capped_frac": masked_mean((w > cap).float(), response_mask)}


def entropy_bonus(entropies: torch.Tensor, coef: float) -> torch.Tensor:
    """Entropy bonus as a per-token loss: L_t = -coef * H_t (minimising it raises entropy)."""
    return -coef * entropies


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    clip_eps: float | None = 0.2,
) -> tuple[torch.Tensor, Metrics]:
    """PPO clipped value loss, per token.

    V_clip = V_old + clip(V - V_old, -eps, eps);  L_t = 1/2 max((V - R)^2, (V_clip - R)^2)
    (clip_eps=None: L_t = 1/2 (V - R)^2). Paper: ppo.
    """
    returns = returns.detach()
    unclipped = (values - returns) ** 2
    metrics: Metrics = {"value/mse": masked_mean(unclipped.detach(), response_mask)}
    if clip_eps is None:
        return 0.5 * unclipped, metrics
    v_clip = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
    clipped = (v_clip - returns) ** 2
    metrics["value/clip_frac"] = masked_mean((clipped > unclipped).float(), response_mask)
    return 0.5 * torch.maximum(unclipped, clipped), metrics
