"""D^3S: dynamic dual-level down-sampling of rollouts and tokens. Paper: d3s.

Sample level: in each group keep the k rollouts whose advantages have the largest variance Var(A)
(a larger Var(A) bounds a larger policy-gradient norm). For any multiset of reals the size-k subset of
maximal variance is made of the j smallest and the k - j largest values for some j, so trying the
k + 1 splits of the sorted group is exact (checked against brute force in the tests).
Token level: keep the top fraction of valid tokens ranked by |A_it| * H_it (impactful and uncertain).
Schedule: aggressive early (small keep fractions), relaxed later, linear from `start` to `end` over
`ramp_steps` (the paper's curriculum idea; the linear shape and defaults are rlx's choice).
Advantages are not recomputed after selection: they keep the full group's baseline.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field

from rlx.config import Section

__all__ = ["D3SConfig", "max_variance_subset", "d3s_sample_select", "d3s_token_select", "d3s_keep_fraction"]


class D3SConfig(Section):
    """Dynamic dual-level down-sampling; a level whose start is None is off."""

    sample_keep_start: float | None = Field(None, gt=0, le=1,
        description="fraction of each group kept at step 0 (None = off)")
    sample_keep_end: float = Field(1.0, gt=0, le=1, description="fraction of each group kept after ramp_steps")
    token_keep_start: float | None = Field(None, gt=0, le=1,
        description="fraction of valid tokens kept at step 0 (None = off)")
    token_keep_end: float = Field(1.0, gt=0, le=1, description="fraction of valid tokens kept after ramp_steps")
    ramp_steps: int = Field(100, ge=1, description="steps over which keep fractions go linearly from start to end")


def d3s_keep_fraction(step: int, start: float, end: float, ramp_steps: int) -> float:
    """Linear schedule: start at step 0, end from step ramp_steps on."""
    w = min(max(step, 0) / ramp_steps, 1.0)
    return start + (end - start) * w


def _seq_values(advantages: torch.Tensor, response_mask: torch.Tensor | None) -> torch.Tensor:
    if advantages.dim() == 1:
        return advantages.to(torch.float64)
    if response_mask is None:
        raise ValueError("token advantages [N, T] need response_mask")
    m = response_mask.to(torch.float64)
    return (advantages.to(torch.float64) * m).sum(1) / m.sum(1).clamp_min(1.0)


def max_variance_subset(values: torch.Tensor, k: int) -> torch.Tensor:
    """Indices [B, k] of the size-k subset of each row of values [B, G] with the largest variance."""
    b, g = values.shape
    if not 1 <= k <= g:
        raise ValueError(f"k must be in [1, {g}], got {k}")
    order = torch.argsort(values.to(torch.float64), dim=1)
    sorted_v = torch.gather(values.to(torch.float64), 1, order)
    best_var = torch.full((b,), -1.0, dtype=torch.float64, device=values.device)
    best = order[:, :k].clone()
    for j in range(k + 1):  # j smallest, k - j largest
        idx = torch.cat([torch.arange(j), torch.arange(g - (k - j), g)]).to(values.device)
        var = sorted_v[:, idx].var(dim=1, correction=0)
        better = var > best_var + 1e-12
        best_var = torch.where(better, var, best_var)
        best = torch.where(better[:, None], order[:, idx], best)
    return torch.sort(best, dim=1).values


def d3s_sample_select(
    advantages: torch.Tensor,
    group_size: int,
    keep_fraction: float,
    response_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Rows [B*k] to keep (ascending within each group, k = max(2, round(keep_fraction * G)) capped at G).

    advantages: [N] per sequence or [N, T] (then the masked per-row mean is used).
    Paper: d3s (sample-level selection maximising Var(A)).
    """
    a = _seq_values(advantages, response_mask).view(-1, group_size)
    k = min(group_size, max(2, round(keep_fraction * group_size))) if group_size >= 2 else 1
    local = max_variance_subset(a, k)  # [B, k]
    rows = (local + torch.arange(a.shape[0], device=a.device)[:, None] * group_size).reshape(-1)
    kept = torch.gather(a, 1, local)
    return rows, {"d3s/sample_keep": torch.tensor(k / group_size), "d3s/adv_var_before": a.var(dim=1, correction=0).mean(),
                  "d3s/adv_var_after": kept.var(dim=1, correction=0).mean()}


def d3s_token_select(
    advantages: torch.Tensor,
    entropies: torch.Tensor,
    response_mask: torch.Tensor,
    keep_fraction: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """New response mask [N, T] keeping the top ceil(keep_fraction * K) valid tokens by |A_it| * H_it.

    K is the number of valid tokens in the batch; ties at the threshold are broken by position.
    Paper: d3s (token-level selection).
    """
    if not 0 < keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
    m = response_mask.bool()
    score = (advantages.abs() * entropies).detach().to(torch.float32)
    score = torch.where(m, score, torch.full_like(score, -math.inf))
    n_valid = int(m.sum())
    n_keep = math.ceil(keep_fraction * n_valid)
    flat = torch.zeros(m.numel(), dtype=torch.bool, device=m.device)
    if n_keep > 0:
        # a stable descending sort: ties at the threshold keep the earlier positions (topk is not stable)
        top = torch.sort(score.reshape(-1), descending=True, stable=True).indices[:n_keep]
        flat[top] = True
    new_mask = flat.view_as(m) & m
    return new_mask, {"d3s/token_keep": torch.tensor(n_keep / max(n_valid, 1))}
