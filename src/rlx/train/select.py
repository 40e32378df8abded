"""Selection stage of the RLVR loop after advantages: dual-level down-sampling (paper d3s).

Sample level keeps, in every group, the k rollouts whose advantages have the largest variance;
token level keeps the top fraction of response tokens by |A| x entropy. Both fractions follow a
linear schedule from aggressive (start) to relaxed (end) over `ramp_steps`. Advantages are those
of the full group (computed before selection), as in the paper.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from rlx.sampling.batch import take_rows
from rlx.sampling.downsample import D3SConfig, d3s_keep_fraction, d3s_sample_select, d3s_token_select
from rlx.train.logprobs import score_batch
from rlx.train.update import Prepared

__all__ = ["d3s_select"]


def _rows(x: torch.Tensor | None, rows: torch.Tensor) -> torch.Tensor | None:
    return None if x is None else x[rows]


def d3s_select(p: Prepared, cfg: D3SConfig, step: int, model, temperature: float = 1.0,
               chunk: int | None = None) -> tuple[Prepared, dict[str, float]]:
    """Down-sample the prepared batch; a level whose start fraction is None is skipped. The entropy pass
    scores `chunk` sequences at a time (the update's micro-batch size)."""
    metrics: dict[str, float] = {}
    if cfg.sample_keep_start is not None:
        frac = d3s_keep_fraction(step, cfg.sample_keep_start, cfg.sample_keep_end, cfg.ramp_steps)
        rows, m = d3s_sample_select(p.advantages, p.batch.group_size, frac, p.batch.response_mask)
        new_g = rows.numel() // (p.batch.num_sequences // p.batch.group_size)
        p = Prepared(take_rows(p.batch, rows, new_g), p.advantages[rows], _rows(p.old_logprobs, rows),
                     _rows(p.ref_logprobs, rows), _rows(p.old_values, rows), _rows(p.returns, rows),
                     _rows(p.degraded_logprobs, rows), p.perception_coef)
        metrics.update({f"rollout/{k}": float(v) for k, v in m.items()})
    if cfg.token_keep_start is not None:
        frac = d3s_keep_fraction(step, cfg.token_keep_start, cfg.token_keep_end, cfg.ramp_steps)
        b = p.batch
        _, entropies, _ = score_batch(model, b, temperature, with_entropy=True, rows=chunk)
        mask, m = d3s_token_select(p.advantages, entropies, b.response_mask, frac)
        p = replace(p, batch=replace(b, response_mask=mask, completion_mask=b.attention_mask))
        metrics.update({f"rollout/{k}": float(v) for k, v in m.items()})
    return p, metrics
