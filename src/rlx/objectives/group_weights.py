"""Per-group scales on the advantages, computed from what the G samples of a prompt answered.

Both downweight prompt groups whose samples carry an unreliable learning signal, and leave the
estimator itself (GRPO, RLOO, ...) unchanged: A_i <- A_i * w_{group(i)}.

**Uncertainty-aware scaling** (paper qhawkeye, "UA-GRPO", as in its released code): the numeric
answers s_1..s_G of a group, clamped to [lo, hi], unparsed ones dropped,

    u = clamp( Var_pop(s) / (0.25 (hi - lo)^2), 0, 1 )        (0.25 (hi - lo)^2 is the largest variance)
    w = exp(-alpha u)                                          (alpha = 0.2 in the paper; w = 1 for <= 1 parsed)

so prompts on which the policy's predictions scatter (an unstable sample) update less.

**Dispersion-aware scaling** (paper puzzlecraft): the solution-space dispersion of a group is the
normalised entropy of its answer distribution (unparsed answers form one category),

    D = H(answers) / log G   in [0, 1]     (0: every sample gave the same answer, the group collapsed)
    w = floor + (1 - floor) D

which downweights collapsed groups. The paper combines D with difficulty; its exact formula is not
public (we have the abstract only), so this linear form is ours; difficulty curricula live in
`rlx.sampling.difficulty` (papers simplerl, drive) and combine with it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import torch

from rlx.rewards.numeric import parse_number

__all__ = ["answer_values", "uncertainty_scale", "answer_dispersion", "dispersion_scale"]


def answer_values(answers: Sequence[str | None]) -> torch.Tensor:
    """[N] float: each extracted answer as a number, NaN where none parses."""
    out = []
    for a in answers:
        v = parse_number(a) if a is not None else None
        out.append(float(v) if v is not None else math.nan)
    return torch.tensor(out, dtype=torch.float64)


def uncertainty_scale(values: torch.Tensor, group_size: int, lo: float, hi: float, alpha: float) -> torch.Tensor:
    """[B] exp(-alpha u) from numeric answers [N = B*G] (NaN = unparsed); see the module docstring."""
    if hi <= lo:
        raise ValueError(f"uncertainty range [{lo}, {hi}] is empty")
    v = values.double().view(-1, group_size).clamp(lo, hi)  # NaN stays NaN
    ok = ~torch.isnan(v)
    n = ok.sum(1)
    mean = torch.where(ok, v, 0.0).sum(1) / n.clamp_min(1)
    var = torch.where(ok, (v - mean[:, None]).square(), 0.0).sum(1) / n.clamp_min(1)
    var = torch.where(n > 1, var, torch.zeros_like(var))
    u = (var / (0.25 * (hi - lo) ** 2 + 1e-8)).clamp(0, 1)
    return torch.exp(-alpha * u).float()


def answer_dispersion(answers: Sequence[str | None], group_size: int) -> torch.Tensor:
    """[B] normalised entropy of each group's answers (None is one category); 0 when G = 1."""
    out = []
    for b in range(len(answers) // group_size):
        counts = Counter(answers[b * group_size:(b + 1) * group_size]).values()
        h = -sum(c / group_size * math.log(c / group_size) for c in counts)
        out.append(h / math.log(group_size) if group_size > 1 else 0.0)
    return torch.tensor(out, dtype=torch.float32)


def dispersion_scale(dispersion: torch.Tensor, floor: float) -> torch.Tensor:
    """[B] floor + (1 - floor) D."""
    if not 0 <= floor <= 1:
        raise ValueError(f"dispersion floor {floor} outside [0, 1]")
    return floor + (1 - floor) * dispersion
