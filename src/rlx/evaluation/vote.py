"""Majority voting over sampled answers, optionally weighted (test-time scaling; paper arrol's head-weighted vote).

    i = weighted_vote(["12", "13", "12", None], [0.2, 0.9, 0.3, 1.0])   # -> 1: "13" has weight 0.9 > 0.5

Answers are the task's extracted answers (`task.extract_answer`); None (nothing parsed) never wins.
The result is the index of the first sample that gives the winning answer, so the caller can score
that sample with the task's own verifier.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["weighted_vote"]


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float] | None = None) -> int | None:
    """Index of the first sample whose answer has the largest total weight (ties: the answer seen first);
    None if no answer was parsed. `weights` None = every sample weighs 1 (plain majority vote)."""
    if weights is not None and len(weights) != len(answers):
        raise ValueError(f"{len(weights)} weights for {len(answers)} answers")
    total: dict[str, float] = {}
    first: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        total[a] = total.get(a, 0.0) + (1.0 if weights is None else float(weights[i]))
        first.setdefault(a, i)
    if not total:
        return None
    best = max(total, key=lambda a: (total[a], -first[a]))
    return first[best]
