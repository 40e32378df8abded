"""Row selection and concatenation of `RolloutBatch`es, for dynamic sampling and D^3S.

    res = fill_groups(sample_round, target_groups=B, group_size=G, max_extra_rounds=3)
    batch = concat_rollouts([take_rows(b, group_rows(kept, G)) for b, kept in res.parts], pad_token_id)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rlx.types import RolloutBatch

__all__ = ["take_rows", "concat_rollouts"]


def take_rows(batch: RolloutBatch, rows: torch.Tensor, group_size: int | None = None) -> RolloutBatch:
    """The batch restricted to `rows` [M] (whole groups, contiguous, in order).

    `group_size` is the new G when selection kept k rows per group (D^3S); default: unchanged.
    group_index is renumbered 0..M/G-1.
    """
    g = batch.group_size if group_size is None else group_size
    if rows.numel() % g != 0:
        raise ValueError(f"take_rows: {rows.numel()} rows is not a multiple of group_size {g}")
    idx = rows.tolist()
    return RolloutBatch(
        prompt_ids=batch.prompt_ids[rows],
        prompt_mask=batch.prompt_mask[rows],
        completion_ids=batch.completion_ids[rows],
        response_mask=batch.response_mask[rows],
        rollout_logprobs=batch.rollout_logprobs[rows],
        rewards=batch.rewards[rows],
        correct=batch.correct[rows],
        group_index=torch.arange(rows.numel() // g, device=rows.device).repeat_interleave(g),
        group_size=g,
        texts=tuple(batch.texts[i] for i in idx) if batch.texts else (),
        finish_reasons=tuple(batch.finish_reasons[i] for i in idx) if batch.finish_reasons else (),
        completion_mask=None if batch.completion_mask is None else batch.completion_mask[rows],
    )


def _pad(x: torch.Tensor, width: int, value: float | int | bool, left: bool) -> torch.Tensor:
    extra = width - x.shape[1]
    if extra == 0:
        return x
    if x.dtype == torch.bool:
        return _pad(x.to(torch.uint8), width, int(value), left).bool()
    return F.pad(x, (extra, 0) if left else (0, extra), value=value)


def concat_rollouts(batches: Sequence[RolloutBatch], pad_token_id: int) -> RolloutBatch:
    """Stack batches with the same G; prompts are left-padded, completions right-padded to the widest."""
    if not batches:
        raise ValueError("concat_rollouts: no batches")
    g = batches[0].group_size
    if any(b.group_size != g for b in batches):
        raise ValueError("concat_rollouts: all batches must have the same group_size")
    p = max(b.prompt_ids.shape[1] for b in batches)
    t = max(b.completion_ids.shape[1] for b in batches)
    offsets, total = [], 0
    for b in batches:
        offsets.append(total)
        total += b.num_sequences // g
    return RolloutBatch(
        prompt_ids=torch.cat([_pad(b.prompt_ids, p, pad_token_id, left=True) for b in batches]),
        prompt_mask=torch.cat([_pad(b.prompt_mask, p, False, left=True) for b in batches]),
        completion_ids=torch.cat([_pad(b.completion_ids, t, pad_token_id, left=False) for b in batches]),
        response_mask=torch.cat([_pad(b.response_mask, t, False, left=False) for b in batches]),
        rollout_logprobs=torch.cat([_pad(b.rollout_logprobs, t, 0.0, left=False) for b in batches]),
        rewards=torch.cat([b.rewards for b in batches]),
        correct=torch.cat([b.correct for b in batches]),
        group_index=torch.arange(total).repeat_interleave(g),
        group_size=g,
        texts=sum((b.texts for b in batches), ()) if all(b.texts for b in batches) else (),
        finish_reasons=sum((b.finish_reasons for b in batches), ()) if all(b.finish_reasons for b in batches) else (),
        completion_mask=None if all(b.completion_mask is None for b in batches) else
        torch.cat([_pad(b.attention_mask, t, False, left=False) for b in batches]),
    )
