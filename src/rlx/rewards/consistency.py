"""Reference-free rewards from self-consistency (paper spark, stage I's parallel scaling).

SPARK verifies solutions without ground truth by aggregating many independent judgments; the
simplest such verifier is the policy's own group: the majority answer of the G samples of a prompt
is the pseudo-label, and

    r_i = 1  if answer_i is parsed and equals the group's majority answer (held by >= min_share of G)
    r_i = 0  otherwise (unparsed answers never score: the format constraint against reward hacking)

Answers are grouped by the task's own notion of equality (`same`: "46", "46.0" and "+46" are one answer
for arithmetic, "0.5" and "\\frac{1}{2}" for math; before, raw strings split such votes). Each answer
joins the first group whose first answer it equals. The majority must be strict: an answer held by more
samples than any other. A group with no such
answer (all answers different, or a tie at the top) has no pseudo-label and gets all zeros; before
session 10 the tie went to the answer seen first, so sample order picked the "correct" one. A group
whose majority is too weak (share < min_share) also gets all zeros, so it carries no signal. No
reference answer is read. `correct` (the ground-truth verdict) is still measured for reporting only.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence

import torch

__all__ = ["self_consistency_rewards"]


def self_consistency_rewards(answers: Sequence[str | None], group_size: int, min_share: float = 0.0,
                             same: Callable[[str, str], bool] = operator.eq) -> tuple[torch.Tensor, torch.Tensor]:
    """([N] rewards, [B] majority share) for answers [N = B*G] grouped consecutively; `same(a, b)`: whether
    two parsed answers are the same answer."""
    if len(answers) % group_size:
        raise ValueError(f"{len(answers)} answers is not a multiple of group size {group_size}")
    rewards, shares = [], []
    for b in range(0, len(answers), group_size):
        group = answers[b:b + group_size]
        cluster = [-1] * len(group)  # which answer each sample gave (-1: unparsed)
        firsts: list[str] = []
        for i, a in enumerate(group):
            if a is not None:
                cluster[i] = next((c for c, f in enumerate(firsts) if a == f or same(a, f)), len(firsts))
                if cluster[i] == len(firsts):
                    firsts.append(a)
        sizes = sorted(((cluster.count(c), c) for c in range(len(firsts))), reverse=True)
        strict = bool(sizes) and (len(sizes) == 1 or sizes[0][0] > sizes[1][0])
        label = sizes[0][1] if strict else None
        share = sizes[0][0] / group_size if label is not None else 0.0
        ok = label is not None and share >= min_share
        rewards += [float(ok and c == label) for c in cluster]
        shares.append(share)
    return torch.tensor(rewards, dtype=torch.float32), torch.tensor(shares, dtype=torch.float32)
