"""Dynamic sampling: keep only groups whose rewards differ, refill from new prompts. Paper: dapo.

A group of G rollouts whose rewards are all equal has zero advantage under any group baseline and
contributes no policy gradient. `informative_groups` finds the others (any reward type: a group is
degenerate when max - min <= tol); `fill_groups` keeps generating until it has enough of them or its
budget of extra rounds runs out.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import torch

__all__ = ["informative_groups", "group_rows", "FillResult", "fill_groups"]

P = TypeVar("P")


def informative_groups(rewards: torch.Tensor, group_size: int, tol: float = 1e-6) -> torch.Tensor:
    """Indices [K] (long, ascending) of groups with max(r) - min(r) > tol. rewards: [B*G], rows contiguous."""
    if rewards.dim() != 1 or group_size < 1 or rewards.numel() % group_size != 0:
        raise ValueError(f"rewards must be [B*G] with G={group_size} dividing N, got shape {tuple(rewards.shape)}")
    if tol < 0:
        raise ValueError(f"tol must be >= 0, got {tol}")
    r = rewards.to(torch.float64).view(-1, group_size)
    spread = r.max(dim=1).values - r.min(dim=1).values
    return torch.nonzero(spread > tol).squeeze(1)


def group_rows(groups: torch.Tensor, group_size: int) -> torch.Tensor:
    """Row indices [K*G] of the given group indices [K]: group g owns rows g*G .. g*G+G-1."""
    return (groups[:, None] * group_size + torch.arange(group_size, device=groups.device)).reshape(-1)


@dataclass
class FillResult(Generic[P]):
    """What `fill_groups` collected: for each round, the payload and the kept group indices in it."""

    target_groups: int
    parts: list[tuple[P, torch.Tensor]] = field(default_factory=list)  # (payload, kept groups [k] long)
    num_groups: int = 0  # kept groups in total (<= target)
    rounds: int = 0  # generation rounds run (1 + extra rounds)
    dropped_groups: int = 0  # zero-variance groups seen
    generated_groups: int = 0  # groups generated in total

    @property
    def complete(self) -> bool:
        """True when the target was reached within the budget."""
        return self.num_groups >= self.target_groups


def fill_groups(
    sample_round: Callable[[int], tuple[P, torch.Tensor]],
    *,
    target_groups: int,
    group_size: int,
    max_extra_rounds: int,
    tol: float = 1e-6,
) -> FillResult[P]:
    """Run `sample_round(round_index) -> (payload, rewards [b*G])` until `target_groups` informative
    groups are kept or `max_extra_rounds` rounds beyond the first have run.

    Never keeps a zero-variance group; keeps at most `target_groups` (the surplus of the last round is
    dropped, earliest groups first kept); calls `sample_round` at most 1 + max_extra_rounds times.
    The caller builds its batch from `parts` (e.g. `group_rows(kept, G)` indexes rows of a payload).
    """
    if target_groups < 1:
        raise ValueError(f"target_groups must be >= 1, got {target_groups}")
    if max_extra_rounds < 0:
        raise ValueError(f"max_extra_rounds must be >= 0, got {max_extra_rounds}")
    out: FillResult[P] = FillResult(target_groups=target_groups)
    for round_index in range(1 + max_extra_rounds):
        payload, rewards = sample_round(round_index)
        out.rounds += 1
        kept = informative_groups(rewards, group_size, tol)
        n_groups = rewards.numel() // group_size
        out.generated_groups += n_groups
        out.dropped_groups += n_groups - kept.numel()
        kept = kept[: target_groups - out.num_groups]
        if kept.numel() > 0:
            out.parts.append((payload, kept))
            out.num_groups += kept.numel()
        if out.num_groups >= target_groups:
            break
    return out
