"""Reduce a per-token loss [N, T] to a scalar, exactly the same way for one batch or its micro-batches.

Modes (L_it = per-token loss, m_it = response_mask, |y_i| = sum_t m_it, S = sequences, K = valid tokens):

    token-mean               sum_it m_it L_it / K                                (DAPO)
    seq-mean-token-mean      (1/S) sum_i [ sum_t m_it L_it / |y_i| ]            (GRPO paper)
    seq-mean-token-sum       (1/S) sum_i sum_t m_it L_it
    seq-mean-token-sum-norm  (1/S) sum_i sum_t m_it L_it / max_len              (Dr.GRPO, constant max_len)

Gradient accumulation: K and S must count the whole mini-batch, not the micro-batch. Compute a
`Normalizer` once per mini-batch with `normalizer_for(minibatch_mask)`, pass it to `aggregate` for
every micro-batch and call `.backward()` on each result *without* dividing by the number of
micro-batches: the summed gradients then equal the one-shot gradient for every mode (each sequence
lives whole inside one micro-batch, so the per-sequence length |y_i| is local). S counts sequences with
at least one valid token; empty rows contribute nothing. Paper: drgrpo, dapo (loss aggregation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

import torch

__all__ = ["AggMode", "AGG_MODES", "Normalizer", "normalizer_for", "aggregate", "masked_mean"]

AggMode = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "seq-mean-token-sum-norm"]
AGG_MODES: tuple[str, ...] = get_args(AggMode)


@dataclass(frozen=True)
class Normalizer:
    """Global denominators of one mini-batch (0-d float tensors, no host sync).

    `num_tokens` K = valid tokens, `num_sequences` S = rows with >= 1 valid token. Normalizers of
    data-parallel shards add: `Normalizer(a.num_tokens + b.num_tokens, a.num_sequences + b.num_sequences)`.
    """

    num_tokens: torch.Tensor  # [] float
    num_sequences: torch.Tensor  # [] float


def normalizer_for(response_mask: torch.Tensor) -> Normalizer:
    """Denominators of the whole mini-batch whose mask is `response_mask` [N, T] bool."""
    m = response_mask.bool()
    return Normalizer(
        num_tokens=m.sum().to(torch.float32),
        num_sequences=m.any(dim=-1).sum().to(torch.float32),
    )


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """sum(x * mask) / max(sum(mask), 1) over all elements: a local token mean, 0 on an empty mask."""
    m = mask.to(x.dtype)
    return (x * m).sum() / m.sum().clamp_min(1.0)


def aggregate(
    loss_tokens: torch.Tensor,
    response_mask: torch.Tensor,
    mode: AggMode,
    normalizer: Normalizer | None = None,
    max_len: int | None = None,
) -> torch.Tensor:
    """Scalar loss from per-token losses [N, T] under `mode` (equations in the module docstring).

    `normalizer` defaults to `normalizer_for(response_mask)` (the batch is the whole mini-batch).
    `max_len` is the constant length of `seq-mean-token-sum-norm` (e.g. max new tokens); required there.
    Masked-out positions never contribute, even when they hold inf/nan.
    """
    if loss_tokens.shape != response_mask.shape:
        raise ValueError(f"aggregate: loss_tokens {tuple(loss_tokens.shape)} != response_mask {tuple(response_mask.shape)}")
    if normalizer is None:
        normalizer = normalizer_for(response_mask)
    m = response_mask.bool()
    masked = torch.where(m, loss_tokens, torch.zeros_like(loss_tokens))
    if mode == "token-mean":
        return masked.sum() / normalizer.num_tokens.clamp_min(1.0)
    s = normalizer.num_sequences.clamp_min(1.0)
    if mode == "seq-mean-token-mean":
        lengths = m.sum(dim=-1).to(masked.dtype).clamp_min(1.0)
        return (masked.sum(dim=-1) / lengths).sum() / s
    if mode == "seq-mean-token-sum":
        return masked.sum() / s
    if mode == "seq-mean-token-sum-norm":
        if max_len is None or max_len <= 0:
            raise ValueError("aggregate: mode seq-mean-token-sum-norm needs max_len > 0")
        return masked.sum() / (s * float(max_len))
    raise ValueError(f"aggregate: unknown mode {mode!r}; expected one of {AGG_MODES}")
