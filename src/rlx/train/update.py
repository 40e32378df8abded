"""Update stage of the RLVR loop: mu epochs over minibatches, gradient accumulation over micro-batches.

Each minibatch computes its `Normalizer` once; every micro-batch's loss is reduced with it and
back-propagated without dividing by the number of micro-batches, so the accumulated gradient equals
the one-shot gradient for every aggregation mode (tested in tests/train/test_update.py).
With one epoch and one minibatch the update is exactly on-policy: old log-probs are the detached
current ones, computed in the same forward pass (no extra pass). A micro-batch made of whole groups
runs each group's shared prompt once (`sequence_logprobs(..., group_size=G)`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from rlx.objectives.aggregate import normalizer_for
from rlx.objectives.build import LossInputs, Objective, accumulate_metrics
from rlx.train.logprobs import sequence_logprobs
from rlx.types import RolloutBatch

__all__ = ["Prepared", "update"]


@dataclass(frozen=True)
class Prepared:
    """Per-sequence tensors fixed before the update (all [N, T] except where noted)."""

    batch: RolloutBatch
    advantages: torch.Tensor
    old_logprobs: torch.Tensor | None  # None: on-policy, taken from the first forward pass
    ref_logprobs: torch.Tensor | None
    old_values: torch.Tensor | None = None
    returns: torch.Tensor | None = None
    degraded_logprobs: torch.Tensor | None = None  # paper qhawkeye: policy on the degraded prompts
    perception_coef: float | None = None  # this step's scheduled weight (None: the config's)


def _micro_loss(model, objective: Objective, p: Prepared, idx: torch.Tensor, norm, value_head, temperature):
    b = p.batch
    logprobs, entropies, values = sequence_logprobs(
        model, b.prompt_ids[idx], b.prompt_mask[idx], b.completion_ids[idx], b.attention_mask[idx],
        with_entropy=True, entropy_grad=objective.needs_entropies, value_head=value_head, group_size=b.group_size,
        temperature=temperature)
    old = p.old_logprobs[idx] if p.old_logprobs is not None else logprobs.detach()
    inputs = LossInputs(
        logprobs=logprobs, old_logprobs=old, advantages=p.advantages[idx], response_mask=b.response_mask[idx],
        ref_logprobs=None if p.ref_logprobs is None else p.ref_logprobs[idx],
        rollout_logprobs=b.rollout_logprobs[idx],
        entropies=entropies,
        values=values, old_values=None if p.old_values is None else p.old_values[idx],
        returns=None if p.returns is None else p.returns[idx],
        degraded_logprobs=None if p.degraded_logprobs is None else p.degraded_logprobs[idx],
        perception_coef=p.perception_coef,
    )
    return objective.loss(inputs, norm)


def update(model, objective: Objective, p: Prepared, optimizer, scheduler, *, epochs: int, minibatches: int,
           micro_batch_size: int, grad_clip: float, generator: torch.Generator, value_head=None,
           temperature: float = 1.0) -> dict[str, float]:
    """Run the optimizer steps of one RL step; returns metrics averaged over minibatches (`train/lr`: the mean
    learning rate the steps used; `*_max` / `*_min`: extrema over the whole step).
    `temperature`: the rollouts' sampling temperature; the loss differentiates softmax(logits / temperature)."""
    n = p.batch.num_sequences
    device = p.batch.completion_ids.device
    params = [q for q in model.parameters() if q.requires_grad]
    if value_head is not None:
        params += list(value_head.parameters())
    totals: dict[str, float] = {}
    count = 0
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator).to(device) if minibatches > 1 else torch.arange(n, device=device)
        # exactly `minibatches` optimizer steps (the LR schedule counts them), also when dynamic sampling or
        # d3s left fewer than B x G sequences: near-equal parts, and none from an empty part (n < minibatches)
        for mb in order.tensor_split(minibatches):
            if mb.numel() == 0:
                continue
            norm = normalizer_for(p.batch.response_mask[mb])
            optimizer.zero_grad(set_to_none=True)
            acc: dict[str, torch.Tensor] = {}
            for ms in range(0, mb.numel(), micro_batch_size):
                loss, metrics = _micro_loss(model, objective, p, mb[ms:ms + micro_batch_size], norm, value_head,
                                            temperature)
                loss.backward()
                acc = accumulate_metrics(acc, metrics)
            gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
            acc["train/lr"] = torch.tensor(optimizer.param_groups[0]["lr"])  # the rate this step uses
            finite = bool(torch.isfinite(gnorm))
            if finite:  # a NaN / inf gradient would write NaN into every weight and Adam moment: skip the step
                optimizer.step()
            scheduler.step()  # the schedule still counts it, as it counts skipped RL steps
            acc["train/grad_norm"] = gnorm.detach()
            acc["train/nonfinite_grad_skipped"] = torch.tensor(0.0 if finite else 1.0)  # averaged: the share skipped
            for k, v in acc.items():  # extrema over the whole step, everything else averaged over minibatches
                v = float(v)
                if k not in totals:
                    totals[k] = v
                elif k.endswith("_max"):
                    totals[k] = max(totals[k], v)
                elif k.endswith("_min"):
                    totals[k] = min(totals[k], v)
                else:
                    totals[k] += v
            count += 1
    out = {}
    for k, v in totals.items():
        extreme = k.endswith(("_max", "_min"))
        v = v if extreme else v / count
        out[k if "/" in k and k.startswith("train/") else f"train/{k}"] = v if math.isfinite(v) else float("nan")
    return out
