"""Reference-free rewards from self-consistency (paper spark, stage I's parallel scaling).

SPARK verifies solutions without ground truth by aggregating many independent judgments; the
simplest such verifier is the policy's own group: the majority answer of the G samples of a prompt
is the pseudo-label, and

    r_i = 1  if answer_i is parsed and equals the group's majority answer (held by >= min_share of G)
    r_i = 0  otherwise (unparsed answers never score: the format constraint against reward hacking)

No reference answer is read. A group whose majority is too weak (share < min_share) gets all zeros,
so it carries no signal. `correct` (the ground-truth verdict) is still measured for reporting only.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from rlx.evaluation.vote import weighted_vote

__all__ = ["self_consistency_rewards"]


def self_consistency_rewards(answers: Sequence[str | None], group_size: int, min_share: float = 0.0
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """([N] rewards, [B] majority share) for answers [N = B*G] grouped consecutively."""
    if len(answers) % group_size:
        raise ValueError(f"{len(answers)} answers is not a multiple of group size {group_size}")
    rewards, shares = [], []
    for b in range(0, len(answers), group_size):
        group = answers[b:b + group_size]
        win = weighted_vote(group)
        label = group[win] if win is not None else None
        share = sum(a == label for a in group) / group_size if label is not None else 0.0
        ok = label is not None and share >= min_share
        rewards += [float(ok and a == label) for a in group]
        shares.append(share)
    return torch.tensor(rewards, dtype=torch.float32), torch.tensor(shares, dtype=torch.float32)
