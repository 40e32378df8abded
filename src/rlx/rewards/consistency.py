"""Reference-free rewards from self-consistency (paper spark, stage I's parallel scaling).

SPARK verifies solutions without ground truth by aggregating many independent judgments; the
simplest such verifier is the policy's own group: the majority answer of the G samples of a prompt
is the pseudo-label, and

    r_i = 1  if answer_i is parsed and equals the group's majority answer (held by >= min_share of G)
    r_i = 0  otherwise (unparsed answers never score: the format constraint against reward hacking)

The majority must be strict: an answer held by more samples than any other. A group with no such
answer (all answers different, or a tie at the top) has no pseudo-label and gets all zeros; before
session 10 the tie went to the answer seen first, so sample order picked the "correct" one. A group
whose majority is too weak (share < min_share) also gets all zeros, so it carries no signal. No
reference answer is read. `correct` (the ground-truth verdict) is still measured for reporting only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import torch

__all__ = ["self_consistency_rewards"]


def self_consistency_rewards(answers: Sequence[str | None], group_size: int, min_share: float = 0.0
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """([N] rewards, [B] majority share) for answers [N = B*G] grouped consecutively."""
    if len(answers) % group_size:
        raise ValueError(f"{len(answers)} answers is not a multiple of group size {group_size}")
    rewards, shares = [], []
    for b in range(0, len(answers), group_size):
        group = answers[b:b + group_size]
        counts = Counter(a for a in group if a is not None)
        top = counts.most_common(2)
        strict = bool(top) and (len(top) == 1 or top[0][1] > top[1][1])
        label = top[0][0] if strict else None
        share = counts[label] / group_size if label is not None else 0.0
        ok = label is not None and share >= min_share
        rewards += [float(ok and a == label) for a in group]
        shares.append(share)
    return torch.tensor(rewards, dtype=torch.float32), torch.tensor(shares, dtype=torch.float32)
