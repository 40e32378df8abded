"""Held-out evaluation settings shared by `rlx eval`, SFT and the RLVR loop."""

from __future__ import annotations

from pydantic import Field, field_validator

from rlx.config import Section

__all__ = ["EvalConfig"]


class EvalConfig(Section):
    """Greedy accuracy on a fixed held-out set, plus pass@k from `samples` draws per problem."""

    n: int = Field(200, ge=1, le=1_000_000, description="held-out problems")
    every: int = Field(0, ge=0, description="evaluate every this many training steps (0: only before/after)")
    samples: int = Field(0, ge=0, le=4096, description="samples per problem for pass@k (0: greedy only)")
    temperature: float = Field(1.0, gt=0, le=10, description="sampling temperature for pass@k")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus mass for pass@k sampling (1: off)")
    top_k: int = Field(0, ge=0, description="top-k for pass@k sampling (0: off)")
    stop: list[str] | None = Field(None, description="stop strings for every eval generation; None: the training "
                                   "rollouts' (rollout.stop) in an RLVR run, none elsewhere")
    max_new_tokens: int = Field(16, ge=1, le=65536, description="completion length limit")
    batch_size: int = Field(256, ge=1, description="prompts per generation call")

    @field_validator("stop")
    @classmethod
    def _non_empty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and any(s == "" for s in v):
            raise ValueError("stop strings must be non-empty")
        return v
