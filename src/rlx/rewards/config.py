"""RewardConfig: how verifier outcomes become the scalar training reward (weights and noise)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from rlx.config import Section

__all__ = ["RewardConfig"]


class RewardConfig(Section):
    """reward = correct * correctness + format * format_ok  (correctness possibly made noisy).

    `noise` is for reward-noise studies (paper `randcalc`): "random" replaces correctness by a
    Bernoulli(noise_p) draw; "flip" returns the wrong correctness with probability noise_p. The
    draw is deterministic in (noise_seed, problem id, completion). `Score.correct` always keeps the
    true verdict, so accuracy metrics are never noisy.
    """

    correct: float = Field(1.0, ge=-100, le=100, allow_inf_nan=False, description="weight of answer correctness (0/1)")
    format: float = Field(0.0, ge=-100, le=100, allow_inf_nan=False, description="weight of the format reward (0/1: answer delimiters present and well-formed)")
    noise: Literal["none", "random", "flip"] = Field("none", description="reward noise: none, random (Bernoulli(noise_p)), or flip (wrong with prob. noise_p)")
    noise_p: float = Field(0.5, ge=0.0, le=1.0, description="probability used by the noise mode")
    noise_seed: int = Field(0, ge=0, description="seed of the deterministic noise draws")
