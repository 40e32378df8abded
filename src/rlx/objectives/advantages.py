"""Advantage estimators. Rows of one group are contiguous: row i belongs to group i // G.

Outcome estimators take rewards [N] and return advantages broadcast over the response tokens
([N, T], 0 outside `response_mask`) plus metrics. Token estimators (REINFORCE++, GAE) also accept
per-token rewards [N, T] (e.g. with a per-token KL penalty, see `kl.kl_penalty_rewards`).
Every function returns `(value, metrics)`; nothing here calls `.item()`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "broadcast",
    "outcome_to_token_rewards",
    "grpo_advantages",
    "dr_grpo_advantages",
    "rloo_advantages",
    "reinforce_pp_advantages",
    "gae_advantages",
    "weighted_reinforce_advantages",
    "ace_advantages",
    "masked_whiten",
]

Metrics = dict[str, torch.Tensor]


def _groups(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    if rewards.dim() != 1:
        raise ValueError(f"rewards must be [N], got shape {tuple(rewards.shape)}")
    if group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"group_size={group_size} must divide N={rewards.numel()}")
    return rewards.to(torch.float32).view(-1, group_size)  # [B, G]


def broadcast(seq_values: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """[N] -> [N, T]: the value on every valid token of its row, 0 elsewhere."""
    return seq_values[:, None] * response_mask.to(seq_values.dtype)


def outcome_to_token_rewards(rewards: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """Place each sequence reward [N] on its last valid token: [N, T] (rows without tokens get 0)."""
    m = response_mask.bool()
    t = m.shape[1]
    idx = torch.arange(t, device=m.device).expand_as(m)
    last = torch.where(m, idx, torch.full_like(idx, -1)).max(dim=1).values  # [N], -1 if empty
    out = torch.zeros(m.shape, dtype=torch.float32, device=m.device)
    rows = torch.nonzero(last >= 0).squeeze(1)
    out[rows, last[rows]] = rewards.to(torch.float32)[rows]
    return out


def _stats(adv_seq: torch.Tensor) -> Metrics:
    return {"adv/mean": adv_seq.mean(), "adv/std": adv_seq.std(correction=0), "adv/abs_max": adv_seq.abs().max()}


def grpo_advantages(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    group_size: int,
    *,
    scale_by_std: bool = True,
    eps: float = 1e-6,
) -> tuple[torch.Tensor, Metrics]:
    """GRPO: A_i = (r_i - mean_g(r)) / (std_g(r) + eps), broadcast over tokens.

    std is the unbiased group standard deviation (torch.std, 0 when G = 1). A group whose rewards are
    all equal gets exactly A = 0 (also with eps = 0): the statistics are taken in float64, and such
    groups are zeroed explicitly. In float32, the mean of eight rewards of 1.2 is off by one ulp, and
    dividing that by a std of the same size gave the whole group A ~ +-0.1 of one sign.
    `scale_by_std=False` gives Dr.GRPO. Paper: grpo (DeepSeekMath), drgrpo.
    """
    r = _groups(rewards, group_size).double()
    constant = r.amax(dim=1, keepdim=True) == r.amin(dim=1, keepdim=True)  # [B, 1]
    centred = (r - r.mean(dim=1, keepdim=True)).masked_fill(constant, 0.0)
    metrics: Metrics = {}
    if scale_by_std:
        std = r.std(dim=1, keepdim=True) if group_size > 1 else torch.zeros_like(centred[:, :1])
        centred = torch.where(constant, 0.0, centred / (std + eps))
        metrics["adv/group_std_mean"] = std.mean().float()
    adv = centred.reshape(-1).to(torch.float32)
    return broadcast(adv, response_mask), {**metrics, **_stats(adv)}


def dr_grpo_advantages(rewards: torch.Tensor, response_mask: torch.Tensor, group_size: int) -> tuple[torch.Tensor, Metrics]:
    """Dr.GRPO: A_i = r_i - mean_g(r) (no division by the group std). Paper: drgrpo."""
    return grpo_advantages(rewards, response_mask, group_size, scale_by_std=False)


def rloo_advantages(rewards: torch.Tensor, response_mask: torch.Tensor, group_size: int) -> tuple[torch.Tensor, Metrics]:
    """RLOO: A_i = r_i - (1/(G-1)) sum_{j != i} r_j = G/(G-1) (r_i - mean_g r). Needs G >= 2. Paper: rloo."""
    if group_size < 2:
        raise ValueError("rloo_advantages needs group_size >= 2 (leave-one-out baseline)")
    r = _groups(rewards, group_size).double()  # float64: a constant group gets exactly 0
    baseline = (r.sum(dim=1, keepdim=True) - r) / (group_size - 1)
    adv = (r - baseline).reshape(-1).to(torch.float32)
    return broadcast(adv, response_mask), _stats(adv)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8, shift_mean: bool = True) -> torch.Tensor:
    """(x - mean) / sqrt(var + eps) over valid tokens (unbiased variance); 0 outside the mask."""
    m = mask.to(x.dtype)
    n = m.sum().clamp_min(1.0)
    mean = (x * m).sum() / n
    var = (((x - mean) * m) ** 2).sum() / (n - 1.0).clamp_min(1.0)
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * m


def _discounted_returns(token_rewards: torch.Tensor, mask: torch.Tensor, gamma: float) -> torch.Tensor:
    """G_t = sum_{s >= t} gamma^(s-t) r_s over valid tokens, right to left."""
    r = token_rewards * mask
    out = torch.zeros_like(r)
    running = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        running = r[:, t] + gamma * running
        out[:, t] = running
    return out * mask


def reinforce_pp_advantages(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    group_size: int = 1,
    *,
    gamma: float = 1.0,
    eps: float = 1e-8,
) -> tuple[torch.Tensor, Metrics]:
    """REINFORCE++: returns G_t = sum_{s>=t} gamma^(s-t) r_s, whitened over all valid tokens of the batch.

    A_t = (G_t - mean_batch G) / sqrt(var_batch G + eps). `rewards` is [N] (placed on the last token)
    or per-token [N, T] (outcome + per-token KL penalty). No critic, no group baseline. Paper: reinforcepp.
    """
    m = response_mask.to(torch.float32)
    tok = outcome_to_token_rewards(rewards, response_mask) if rewards.dim() == 1 else rewards.to(torch.float32)
    returns = _discounted_returns(tok, m, gamma)
    adv = masked_whiten(returns, m, eps=eps)
    return adv, {"adv/return_mean": (returns * m).sum() / m.sum().clamp_min(1.0), "adv/abs_max": adv.abs().max()}


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
    whiten: bool = True,
) -> tuple[tuple[torch.Tensor, torch.Tensor], Metrics]:
    """GAE for PPO with a value head. Returns ((advantages [N, T], returns [N, T]), metrics).

    delta_t = r_t + gamma V_{t+1} - V_t (V after the last valid token is 0);
    A_t = delta_t + gamma lam A_{t+1};  returns R_t = A_t + V_t (value-loss targets, before whitening).
    `rewards` is [N] (placed on the last valid token) or [N, T]. `whiten` normalises A over valid
    tokens. Paper: gae (Schulman et al. 2016), ppo.
    """
    m = response_mask.to(torch.float32)
    r = outcome_to_token_rewards(rewards, response_mask) if rewards.dim() == 1 else rewards.to(torch.float32) * m
    v = values.detach().to(torch.float32) * m
    n, t_len = r.shape
    adv = torch.zeros_like(r)
    next_adv = torch.zeros(n, dtype=r.dtype, device=r.device)
    next_value = torch.zeros_like(next_adv)
    for t in range(t_len - 1, -1, -1):
        delta = r[:, t] + gamma * next_value - v[:, t]
        cur = delta + gamma * lam * next_adv
        # padding positions keep carrying nothing: reset to 0 where mask is 0
        adv[:, t] = cur * m[:, t]
        next_adv = adv[:, t]
        next_value = v[:, t]
    returns = (adv + v) * m
    if whiten:
        adv = masked_whiten(adv, m)
    return_mean = (returns * m).sum() / m.sum().clamp_min(1.0)
    return (adv, returns), {"adv/abs_max": adv.abs().max(), "value/return_mean": return_mean}


def weighted_reinforce_advantages(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    group_size: int = 1,
    *,
    positive_weight: float = 0.1,
    negative_weight: float = 1.0,
    threshold: float = 0.5,
) -> tuple[torch.Tensor, Metrics]:
    """W-REINFORCE / NSR: A_i = +lambda if r_i > threshold (correct) else -1 (x negative_weight).

    L = -lambda E_{correct}[log pi] + E_{incorrect}[log pi]: no baseline. positive_weight=0 is pure
    Negative Sample Reinforcement (NSR), negative_weight=0 is PSR. The paper's default lambda = 0.1.
    Paper: nsr.
    """
    pos = rewards.to(torch.float32) > threshold
    adv = torch.where(pos, torch.full_like(rewards, positive_weight, dtype=torch.float32),
                      torch.full_like(rewards, -negative_weight, dtype=torch.float32))
    return broadcast(adv, response_mask), {"adv/positive_frac": pos.float().mean(), **_stats(adv)}


def ace_advantages(
    advantages: torch.Tensor,
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    alpha: float = 1.0,
) -> tuple[torch.Tensor, Metrics]:
    """ACE: sharpen negative advantages of overconfident errors.

    c_i = log pi(y_i|x) / pi_ref(y_i|x) = sum_t m_it (logprobs - ref_logprobs)  (detached);
    A'_it = A_it (1 + alpha softplus(c_i)) where A_it < 0, else A_it. Positive advantages are
    untouched; errors whose probability grew relative to the reference get a stronger push down.
    `logprobs` are the policy at rollout time (old_logprobs). Paper: ace.
    """
    m = response_mask.to(torch.float32)
    c = ((logprobs.detach() - ref_logprobs.detach()) * m).sum(dim=1)  # [N]
    scale = 1.0 + alpha * F.softplus(c)
    out = torch.where(advantages < 0, advantages * scale[:, None], advantages)
    neg_rows = (advantages < 0).any(dim=1)
    denom = neg_rows.float().sum().clamp_min(1.0)
    return out, {"ace/conf_shift_mean": c.mean(), "ace/neg_scale_mean": (scale * neg_rows).sum() / denom}
