"""Config of the search-agent trainer (`kind: search_agent`, paper asearcher). See recipes/search_agent.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlx.agents.rollout import TurnConfig
from rlx.agents.search_env import SearchEnvConfig
from rlx.config import Section
from rlx.models import ModelConfig
from rlx.objectives.config import ObjectiveConfig
from rlx.train.optim import OptimConfig

__all__ = ["WarmStartConfig", "AgentRolloutConfig", "AsyncConfig", "AgentTrainConfig", "AgentEvalConfig", "Config"]


class WarmStartConfig(Section):
    """SFT on synthetic search traces before RL (tool outputs masked from the loss, as in RL)."""

    steps: int = Field(300, ge=0, description="SFT steps (0: start RL from model as given, e.g. a saved warm start)")
    batch_size: int = Field(32, ge=1, description="traces per SFT step")
    early_stop_prob: float = Field(0.3, ge=0, le=1, description="share of traces that answer after too few "
                                   "searches (the last entity found), so the warm-started policy sometimes "
                                   "stops early and RL has something to fix")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=3e-3, warmup_steps=20),
                               description="SFT optimizer")


class AgentRolloutConfig(Section):
    """Episodes sampled per RL step."""

    questions_per_step: int = Field(8, ge=1, description="B: questions per step")
    group_size: int = Field(8, ge=2, description="G: episodes per question (group-relative advantages)")
    turns: TurnConfig = Field(default_factory=TurnConfig, description="turn limit, tokens per turn, temperature")


class AsyncConfig(Section):
    """Fully asynchronous RL: a producer thread generates with weights up to `max_staleness` updates old."""

    enabled: bool = Field(False, description="off: synchronous (generate, then update); on: producer thread")
    max_staleness: int = Field(1, ge=0, le=64, description="eta: most updates the behaviour policy may lag")
    correction: Literal["behaviour", "decoupled"] = Field(
        "behaviour", description="behaviour: PPO ratio pi / pi_behaviour; decoupled (AReaL): ratio pi / pi_prox "
        "clipped, times min(pi_prox / pi_behaviour, objective.tis_cap) (needs objective.tis_cap)")


class AgentTrainConfig(Section):
    steps: int = Field(100, ge=0, description="RL steps (0: warm start only)")
    micro_batch_size: int = Field(64, ge=1, description="episodes per forward/backward (gradient accumulation)")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=3e-4), description="RL optimizer")
    log_every: int = Field(1, ge=1, description="write metrics every this many steps")
    checkpoint_every: int = Field(25, ge=0, description="checkpoint every this many steps (0: only at the end)")


class AgentEvalConfig(Section):
    per_hop: int = Field(20, ge=1, description="held-out questions per hop count (greedy)")
    max_turns: int = Field(10, ge=1, le=256, description="turn limit at evaluation (independent of training's)")
    every: int = Field(0, ge=0, description="evaluate every this many RL steps (0: before and after only)")


class Config(Section):
    kind: Literal["search_agent"] = Field("search_agent", description="trainer")
    seed: int = Field(0, ge=0, description="seed for init, questions and sampling")
    model: ModelConfig = Field(description="policy (a tiny model from config, or a warm-started checkpoint)")
    env: SearchEnvConfig = Field(default_factory=SearchEnvConfig, description="synthetic KB and questions")
    warm_start: WarmStartConfig = Field(default_factory=WarmStartConfig, description="SFT on search traces")
    rollout: AgentRolloutConfig = Field(default_factory=AgentRolloutConfig, description="multi-turn sampling")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig, description="advantages, loss, aggregation")
    async_rl: AsyncConfig = Field(default_factory=AsyncConfig, description="asynchronous rollouts (off)")
    train: AgentTrainConfig = Field(default_factory=AgentTrainConfig, description="RL loop")
    eval: AgentEvalConfig = Field(default_factory=AgentEvalConfig, description="held-out accuracy by hop count")

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        if self.async_rl.enabled and self.async_rl.correction == "decoupled" and self.objective.tis_cap is None:
            raise ValueError("async_rl.correction = decoupled needs objective.tis_cap "
                             "(the cap of pi_prox / pi_behaviour)")
        if self.objective.advantage == "gae" or self.objective.kl_coef > 0 or self.objective.ace_alpha > 0:
            raise ValueError("search_agent supports outcome advantages without a reference model "
                             "(objective.advantage != gae, kl_coef = 0, ace_alpha = 0)")
        if self.model.lora is not None:
            raise ValueError("model.lora: the search agent trains every weight (LoRA is supported by rlvr and sft)")
        o = self.objective
        if o.dynamic_sampling or o.perception_coef > 0 or o.uncertainty_alpha > 0 or o.dispersion_floor is not None \
                or o.overlong_buffer_frac is not None:
            raise ValueError("search_agent does not implement objective.dynamic_sampling, perception_coef, "
                             "uncertainty_alpha, dispersion_floor or overlong_buffer_frac: leave them off")
        return self
