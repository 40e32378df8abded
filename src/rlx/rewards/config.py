"""RewardConfig: how verifier outcomes become the scalar training reward (weights and noise)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlx.config import Section

__all__ = ["RewardConfig"]


class RewardConfig(Section):
    """reward = correct * correctness + format * format_ok  (correctness possibly made noisy).

    `noise` is for reward-noise studies (paper `randcalc`): "random" replaces correctness by a
    Bernoulli(noise_p) draw; "flip" returns the wrong correctness with probability noise_p. The
    draw is deterministic in (noise_seed, problem id, completion). `Score.correct` always keeps the
    true verdict, so accuracy metrics are never noisy.

    `source: self_consistency` (paper spark) replaces correctness during RLVR rollouts by agreement
    with the group's majority answer (`rlx.rewards.consistency`); evaluation still uses the verifier.
    """

    correct: float = Field(1.0, ge=-100, le=100, allow_inf_nan=False, description="weight of answer correctness (0/1)")
    format: float = Field(0.0, ge=-100, le=100, allow_inf_nan=False, description="weight of the format reward (0/1: answer delimiters present and well-formed)")
    source: Literal["reference", "self_consistency"] = Field("reference",
        description="reference: the verifier's verdict; self_consistency (paper spark): agreement with the group's majority answer, no reference read (RLVR training only)")
    consistency_min_share: float = Field(0.0, ge=0, le=1,
        description="self_consistency: a group whose majority answer has a smaller share of G scores 0")
    noise: Literal["none", "random", "flip"] = Field("none", description="reward noise: none, random (Bernoulli(noise_p)), or flip (wrong with prob. noise_p)")
    noise_p: float = Field(0.5, ge=0.0, le=1.0, description="probability used by the noise mode")
    noise_seed: int = Field(0, ge=0, description="seed of the deterministic noise draws")

    @model_validator(mode="after")
    def _used(self) -> "RewardConfig":
        """Settings the chosen source would silently ignore are errors."""
        if self.source == "self_consistency" and self.noise != "none":
            raise ValueError(f"noise = {self.noise!r} needs source: reference (self-consistency rewards replace the "
                             "verifier's correctness, noisy or not)")
        if self.source == "reference" and self.consistency_min_share > 0:
            raise ValueError("consistency_min_share needs source: self_consistency")
        return self
