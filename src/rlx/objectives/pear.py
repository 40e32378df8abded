"""SFT loss reweighting that prepares a model for RL (paper pear): importance weights toward the policy.

SFT data y ~ pi_beta (the behavior policy that produced it); RL will learn from y ~ pi_theta. PEAR
reweights each completion token's SFT loss by an importance weight built from the per-token log-ratios

    d_t = log pi_theta(y_t | x, y_<t) - log pi_beta(y_t | x, y_<t)         (detached)

    L = sum_t m_t G_t l_t / sum_t m_t        l_t: the token's loss (NLL), m_t: completion mask

with three variants (`level`):

    sequence   log G_t = sum_t' m_t' d_t'                       (the whole sequence's likelihood ratio)
    token      log G_t = sum_{t' >= t} gamma^(t' - t) m_t' d_t'   (discounted suffix: how likely pi_theta
                                                                  is to continue like the data from t on)
    block      the token rule over blocks of `block` completion tokens: every token of block b gets
               sum_{b' >= b} gamma^(b' - b) D_b',  D_b = sum of d_t in block b

Stabilisation (ours): log G is clipped to [-clip, clip], then the weights are divided by their mean
over the batch's completion tokens, so the loss keeps the scale of plain SFT (all d_t = 0 gives
exactly the plain token-mean NLL).

With a deterministic data generator (a task's reference completions) pi_beta = 1 and d_t is the
student's own log-probability: PEAR then moves SFT toward the completions the model already
reaches, which are the ones its RL rollouts will contain.
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["PearLevel", "pear_log_weights", "pear_weights", "pear_loss"]

PearLevel = Literal["sequence", "token", "block"]


def _suffix_discounted(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """out_t = sum_{t' >= t} gamma^(t' - t) x_t' along dim 1.  [N, T] -> [N, T]"""
    out = torch.empty_like(x)
    acc = torch.zeros_like(x[:, 0])
    for t in range(x.shape[1] - 1, -1, -1):
        acc = x[:, t] + gamma * acc
        out[:, t] = acc
    return out


def pear_log_weights(logp: torch.Tensor, behavior_logp: torch.Tensor, mask: torch.Tensor, level: PearLevel,
                     gamma: float = 1.0, block: int = 4) -> torch.Tensor:
    """log G_t before clipping and normalisation (module docstring).  [N, T] each -> [N, T]

    `mask` marks completion tokens; they need not start at column 0 (the block index counts
    completion tokens only). Values on masked-out positions are 0.
    """
    m = mask.to(logp.dtype)
    d = (logp.detach() - behavior_logp.detach()) * m
    if level == "sequence":
        out = d.sum(dim=1, keepdim=True).expand_as(d)
    elif level == "token":
        out = _suffix_discounted(d, gamma)
    elif level == "block":
        pos = (mask.long().cumsum(dim=1) - 1).clamp(min=0)  # completion-relative index
        b = pos // block  # [N, T] block of each token
        nb = int(b.max()) + 1 if b.numel() else 1
        sums = torch.zeros(d.shape[0], nb, dtype=d.dtype, device=d.device).scatter_add_(1, b, d)  # [N, NB]
        out = _suffix_discounted(sums, gamma).gather(1, b)
    else:
        raise ValueError(f"unknown PEAR level {level!r}")
    return out * m


def pear_weights(logp: torch.Tensor, behavior_logp: torch.Tensor, mask: torch.Tensor, level: PearLevel,
                 gamma: float = 1.0, block: int = 4, clip: float = 2.0) -> torch.Tensor:
    """G_t = exp(clip(log G_t)) / mean over the completion tokens of the batch; 0 off the mask.  [N, T]"""
    log_g = pear_log_weights(logp, behavior_logp, mask, level, gamma, block).clamp(-clip, clip)
    m = mask.to(logp.dtype)
    g = log_g.exp() * m
    return g / (g.sum() / m.sum().clamp_min(1.0)).clamp_min(1e-12)


def pear_loss(token_nll: torch.Tensor, behavior_logp: torch.Tensor, mask: torch.Tensor, level: PearLevel,
              gamma: float = 1.0, block: int = 4, clip: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_t m_t G_t nll_t / sum_t m_t, the weights G).  token_nll [N, T] = -log pi_theta(y_t), with grad."""
    g = pear_weights(-token_nll, behavior_logp, mask, level, gamma, block, clip)
    m = mask.to(token_nll.dtype)
    return (g * token_nll * m).sum() / m.sum().clamp_min(1.0), g
