"""Implicit perception loss (paper qhawkeye): make the policy's outputs depend on the evidence.

Q-Hawkeye re-scores each sampled completion with the input *degraded* (for images: a corrupted copy;
for text problems here: every digit of the prompt replaced by `?`) and pushes the two apart. Per
token, with l = log pi(y_t | x) (with gradient) and l~ = log pi(y_t | x~) (no gradient),

    k_t   = clamp(l~ - l, -20, 20)
    kld_t = clamp(exp(k_t) - k_t - 1, -10, 10)          (the k3 estimator of KL(pi(.|x) || pi(.|x~)))
    L     = -gamma_s * kld                               (added per token, before aggregation)

so minimising L *maximises* the divergence: an answer that the model would give just as readily
without seeing the numbers is discouraged. gamma_s follows a cosine from gamma at step 0 to 0 at
`zero_step` and stays 0 after (the paper: gamma = 1e-4, zero after 5 epochs). Constants and clamps
are those of the paper's released code.
"""

from __future__ import annotations

import math

import torch

__all__ = ["perception_kl", "perception_coef", "digit_mask_table", "degrade_ids"]


def perception_kl(logprobs: torch.Tensor, degraded_logprobs: torch.Tensor) -> torch.Tensor:
    """[N, T] clamped k3 divergence per token (module docstring); gradient flows through `logprobs`."""
    k = (degraded_logprobs.detach() - logprobs).clamp(-20, 20)
    return (torch.exp(k) - k - 1).clamp(-10, 10)


def perception_coef(step: int, base: float, zero_step: int | None) -> float:
    """gamma_s = base 0.5 (1 + cos(pi s / zero_step)) for s < zero_step, else 0; constant if zero_step is None."""
    if zero_step is None:
        return base
    if step >= zero_step:
        return 0.0
    return base * 0.5 * (1 + math.cos(math.pi * step / zero_step))


def digit_mask_table(tokenizer, mask: str = "?") -> torch.Tensor:
    """[V] long: token id -> itself, or the id of `mask` if the token's text contains a digit."""
    vocab = tokenizer.get_vocab()
    mask_ids = tokenizer.encode(mask, add_special_tokens=False)
    if len(mask_ids) != 1:
        raise ValueError(f"the mask text {mask!r} must be one token, got {mask_ids}")
    table = torch.arange(max(vocab.values()) + 1)
    for tok, i in vocab.items():
        if any(ch.isdigit() for ch in tokenizer.convert_tokens_to_string([tok])):
            table[i] = mask_ids[0]
    return table


def degrade_ids(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Prompt ids [N, P] with every digit token masked (same length: padding and positions unchanged)."""
    return torch.where(prompt_mask.bool(), table.to(prompt_ids.device)[prompt_ids], prompt_ids)
