"""Held-out evaluation settings shared by `rlx eval`, SFT and the RLVR loop."""

from __future__ import annotations

from pydantic import Field

from rlx.config import Section

__all__ = ["EvalConfig"]


class EvalConfig(Section):
    """Greedy accuracy on a fixed held-out set, plus pass@k from `samples` draws per problem."""

    n: int = Field(200, ge=1, le=1_000_000, description="held-out problems")
    every: int = Field(0, ge=0, description="evaluate every this many training steps (0: only before/after)")
    samples: int = Field(0, ge=0, le=4096, description="samples per problem for pass@k (0: greedy only)")
    temperature: float = Field(1.0, gt=0, le=10, description="sampling temperature for pass@k")
    max_new_tokens: int = Field(16, ge=1, le=65536, description="completion length limit")
    batch_size: int = Field(256, ge=1, description="prompts per generation call")
