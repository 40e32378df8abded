"""Majority voting over sampled answers, optionally weighted (test-time scaling; paper arrol's head-weighted vote).

    i = weighted_vote(["12", "13", "12", None], [0.2, 0.9, 0.3, 1.0])   # -> 1: "13" has weight 0.9 > 0.5

Answers are the task's extracted answers (`task.extract_answer`); None (nothing parsed) never wins.
The result is the index of the first sample that gives the winning answer, so the caller can score
that sample with the task's own verifier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["weighted_vote"]


def weighted_vote(answers: Sequence[str | None], weights: Sequence[float] | None = None) -> int | None:
    """Index of the first sample whose answer has the largest total weight (ties: the answer seen first);
    None if no answer was parsed. `weights` None = every sample weighs 1 (plain majority vote)."""
    if weights is not None and len(weights) != len(answers):
        raise ValueError(f"{len(weights)} weights for {len(answers)} answers")
    parts: dict[str, list[float]] = {}
    first: dict[str, int] = {}
    for i, a in enumerate(answers):
        if a is None:
            continue
        parts.setdefault(a, []).append(1.0 if weights is None else float(weights[i]))
        first.setdefault(a, i)
    if not parts:
        return None
    # exact sums (fsum), and totals equal to 12 digits are ties: 0.1 + 0.2 must not beat 0.3 by rounding
    total = {a: math.fsum(w) for a, w in parts.items()}
    top = max(total.values())
    tied = [a for a in total if math.isclose(total[a], top, rel_tol=1e-12, abs_tol=1e-15)]
    return min(first[a] for a in tied)
