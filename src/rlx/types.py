"""Typed data that crosses room boundaries. Shapes in comments; checked where built.

Names follow docs/NOTATION.md: B prompts, G samples per prompt, N = B*G sequences,
P prompt length (left-padded), T completion length (right-padded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

__all__ = ["Problem", "Generation", "RolloutBatch"]


@dataclass(frozen=True)
class Problem:
    """One verifiable problem. `question` is the bare problem text; the task turns it into a prompt."""

    id: str  # stable identifier (hash of the canonical question); used for disjointness checks
    question: str  # e.g. "12+7*3"
    answer: str  # canonical reference answer, e.g. "33" or "-7/2"
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Generation:
    """What a rollout engine returns for N prompts (already repeated G times if grouped)."""

    prompt_ids: torch.Tensor  # [N, P] long, left-padded with pad_token_id
    prompt_mask: torch.Tensor  # [N, P] bool, True on real prompt tokens
    completion_ids: torch.Tensor  # [N, T] long, right-padded; includes the EOS token when emitted
    completion_mask: torch.Tensor  # [N, T] bool, True on generated tokens up to and including EOS
    logprobs: torch.Tensor  # [N, T] float32, engine log-probs of the sampled tokens (0 on padding)
    finish_reasons: tuple[str, ...]  # N entries, "stop" (EOS or stop string) or "length"
    texts: tuple[str, ...]  # N decoded completions (special tokens removed, cut at stop strings)

    def __post_init__(self) -> None:
        n, t = self.completion_ids.shape
        assert self.prompt_ids.shape == self.prompt_mask.shape, "prompt ids/mask shape mismatch"
        assert self.prompt_ids.shape[0] == n, "prompt/completion row mismatch"
        assert self.completion_mask.shape == (n, t) and self.logprobs.shape == (n, t), "completion shapes"
        assert len(self.finish_reasons) == n and len(self.texts) == n, "per-row lists must have N entries"


@dataclass(frozen=True)
class RolloutBatch:
    """A scored group-structured batch, input to old/ref logprobs, advantages and the loss."""

    prompt_ids: torch.Tensor  # [N, P]
    prompt_mask: torch.Tensor  # [N, P] bool
    completion_ids: torch.Tensor  # [N, T]
    response_mask: torch.Tensor  # [N, T] bool (completion_mask, possibly narrowed by selection)
    rollout_logprobs: torch.Tensor  # [N, T] from the rollout engine
    rewards: torch.Tensor  # [N] float32, total reward per sequence
    correct: torch.Tensor  # [N] bool, verifier's verdict on the answer (for accuracy metrics)
    group_index: torch.Tensor  # [N] long, which prompt (0..B-1) each row belongs to
    group_size: int  # G
    texts: tuple[str, ...] = ()
    finish_reasons: tuple[str, ...] = ()
    completion_mask: torch.Tensor | None = None  # [N, T] bool, generated tokens (None: = response_mask);
    # differs from response_mask once selection (d3s) narrows the loss to some tokens: the forward
    # pass still attends to every generated token.

    def __post_init__(self) -> None:
        n, t = self.completion_ids.shape
        assert self.response_mask.shape == (n, t), "response_mask must be [N, T]"
        assert self.completion_mask is None or self.completion_mask.shape == (n, t), "completion_mask must be [N, T]"
        assert self.rollout_logprobs.shape == (n, t), "rollout_logprobs must be [N, T]"
        assert self.rewards.shape == (n,) and self.correct.shape == (n,), "rewards/correct must be [N]"
        assert self.group_index.shape == (n,), "group_index must be [N]"
        assert self.group_size >= 1 and n % self.group_size == 0, "N must be a multiple of G"

    def to(self, device: torch.device | str) -> "RolloutBatch":
        """The same batch with every tensor on `device` (each `.to` is free for a tensor already there; the
        rollout's tensors and the CPU-built rewards / group index can sit on different devices)."""
        from dataclasses import fields, replace

        return replace(self, **{f.name: getattr(self, f.name).to(device) for f in fields(self)
                                if isinstance(getattr(self, f.name), torch.Tensor)})

    @property
    def attention_mask(self) -> torch.Tensor:
        """[N, T] tokens the forward pass sees (all generated tokens)."""
        return self.response_mask if self.completion_mask is None else self.completion_mask

    @property
    def num_sequences(self) -> int:
        return self.completion_ids.shape[0]
