"""Reward shaping that depends on the completion, not the verifier. Paper: dapo."""

from __future__ import annotations

import torch

__all__ = ["overlong_penalty"]


def overlong_penalty(
    lengths: torch.Tensor,
    max_len: int,
    buffer_len: int,
    penalty: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """DAPO's soft overlong punishment, added to the reward of each sequence [N].

    With L_max = max_len, L_cache = buffer_len and |y| = lengths:
        0                                    if |y| <= L_max - L_cache
        penalty * ((L_max - L_cache) - |y|) / L_cache   if L_max - L_cache < |y| <= L_max
        -penalty                             if |y| > L_max
    Paper: dapo (Yu et al. 2025, "overlong reward shaping").
    """
    if not 0 < buffer_len <= max_len:
        raise ValueError(f"overlong_penalty: need 0 < buffer_len ({buffer_len}) <= max_len ({max_len})")
    lengths = lengths.to(torch.float32)
    start = float(max_len - buffer_len)
    soft = (start - lengths) / float(buffer_len) * penalty
    out = torch.where(lengths <= start, torch.zeros_like(lengths), soft)
    out = torch.where(lengths > max_len, torch.full_like(lengths, -penalty), out)
    return out, {"reward/overlong_penalty_mean": out.mean(), "reward/overlong_frac": (out < 0).float().mean()}
