"""Config of the RLVR loop (`kind: rlvr`). Every field documents itself; see recipes/arith_grpo.yaml."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from rlx.config import Section
from rlx.evaluation.config import EvalConfig
from rlx.models import ModelConfig
from rlx.objectives.config import ObjectiveConfig
from rlx.sampling.difficulty import DifficultyConfig
from rlx.sampling.downsample import D3SConfig
from rlx.sampling.prune import PruneConfig
from rlx.tasks import TaskConfig
from rlx.train.optim import OptimConfig

__all__ = ["RolloutConfig", "RLTrainConfig", "Config"]


class RolloutConfig(Section):
    """How completions are sampled each step."""

    engine: Literal["hf", "vllm"] = Field("hf", description="hf: in-process (CPU/GPU); vllm: GPU engine")
    prompts_per_step: int = Field(8, ge=1, description="B: prompts sampled per step")
    group_size: int = Field(8, ge=1, description="G: completions per prompt")
    temperature: float = Field(1.0, gt=0, le=10, description="sampling temperature")
    top_p: float = Field(1.0, gt=0, le=1, description="nucleus sampling mass")
    top_k: int = Field(0, ge=0, description="top-k sampling (0: off)")
    max_new_tokens: int = Field(8, ge=1, le=65536, description="completion length limit")
    stop: list[str] = Field(default_factory=list, description="stop strings (EOS always stops)")
    reward_workers: int = Field(1, ge=1, le=256,
        description="verify completions on this many threads (for slow verifiers: sandboxed code, remote judges)")
    gpu_memory_utilization: float = Field(0.5, gt=0, le=1, description="vllm only: share of GPU memory")
    staleness: int = Field(0, ge=0, le=1,
        description="0: every step samples with the current weights; 1: step t+1's rollouts are sampled on a "
                    "background thread with the weights before step t's update, so generation overlaps training "
                    "(one-step off-policy; the importance ratio uses the sampling weights' log-probs)")


class RLTrainConfig(Section):
    """The update: mu epochs over minibatches, gradient accumulation over micro-batches."""

    steps: int = Field(100, ge=1, description="RL steps (each: rollout, score, update)")
    epochs: int = Field(1, ge=1, le=64, description="mu: passes over each step's batch")
    minibatches: int = Field(1, ge=1, description="optimizer steps per epoch (batch split evenly)")
    micro_batch_size: int = Field(64, ge=1, description="sequences per forward/backward (gradient accumulation)")
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-5), description="optimizer")
    log_every: int = Field(1, ge=1, description="write metrics every this many steps")
    checkpoint_every: int = Field(25, ge=0, description="checkpoint every this many steps (0: only at the end)")
    precision_flow: Literal["none", "fp8_rollout", "fp8_unified"] = Field(
        "none", description="paper jetrl: fp8 fake-quant in rollouts only, or in rollouts and training forward")
    ref_reset_every: int = Field(0, ge=0, description="paper prorl: every this many steps the KL reference becomes "
                                 "the current policy and the optimizer state is cleared (0: never)")


class Config(Section):
    kind: Literal["rlvr"] = Field("rlvr", description="trainer")
    seed: int = Field(0, ge=0, description="seed for init, data and sampling")
    model: ModelConfig = Field(description="policy to train (and reference, when KL is on)")
    task: TaskConfig = Field(description="where problems come from and how they are scored")
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="sampling")
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig, description="advantages, loss, KL")
    d3s: D3SConfig = Field(default_factory=D3SConfig, description="paper d3s: dual-level down-sampling (off by default)")
    difficulty: DifficultyConfig = Field(default_factory=DifficultyConfig,
                                         description="papers simplerl/drive: train on a pass-rate band (off by default)")
    prune: PruneConfig = Field(default_factory=PruneConfig,
                               description="paper arrol: start more rollouts, prune them mid-generation (off by default)")
    train: RLTrainConfig = Field(default_factory=RLTrainConfig, description="update loop")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="held-out evaluation")

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        n = self.rollout.prompts_per_step * self.rollout.group_size
        if n % self.train.minibatches:
            raise ValueError(f"train.minibatches ({self.train.minibatches}) must divide prompts_per_step x group_size ({n})")
        if self.rollout.group_size < 2:
            raise ValueError("rollout.group_size must be >= 2 for group-relative advantages")
        d = self.difficulty
        if not d.enabled:  # curation off: a band or a retirement rule would be silently ignored
            named = (("retire_above", d.retire_above), ("min_pass", d.min_pass if d.min_pass > 0 else None),
                     ("max_pass", d.max_pass if d.max_pass < 1 else None))
            unused = [f"difficulty.{k} = {v}" for k, v in named if v is not None]
            if unused:
                raise ValueError(f"{', '.join(unused)} needs difficulty.candidates > 0 (curation is off without "
                                 "scored candidates)")
        if self.train.ref_reset_every and self.objective.kl_coef == 0:
            raise ValueError("train.ref_reset_every needs a KL reference: set objective.kl_coef > 0")
        if self.train.ref_reset_every and self.model.lora is not None:
            raise ValueError("train.ref_reset_every needs full fine-tuning (the LoRA reference is the frozen base)")
        if self.prune.enabled and self.prune.candidates <= self.rollout.group_size:
            raise ValueError(f"prune.candidates ({self.prune.candidates}) must exceed rollout.group_size "
                             f"({self.rollout.group_size})")
        if self.prune.enabled and self.rollout.engine != "hf":
            raise ValueError("prune: online pruning runs inside the hf engine; set rollout.engine: hf")
        if self.prune.enabled and self.prune.at_tokens >= self.rollout.max_new_tokens:
            raise ValueError(f"prune.at_tokens ({self.prune.at_tokens}) must be below rollout.max_new_tokens "
                             f"({self.rollout.max_new_tokens})")
        off_policy = [name for name, on in ((f"train.epochs: {self.train.epochs}", self.train.epochs > 1),
                                            (f"train.minibatches: {self.train.minibatches}", self.train.minibatches > 1),
                                            ("rollout.staleness: 1", self.rollout.staleness > 0)) if on]
        if self.objective.policy_loss == "reinforce" and off_policy:
            raise ValueError(f"objective.policy_loss = reinforce is on-policy only; with {', '.join(off_policy)} some "
                             f"updates use samples of an older policy and nothing corrects for it: use "
                             f"policy_loss: ppo_clip (its ratio does)")
        if self.objective.advantage == "w_reinforce":  # correct vs incorrect is read off the reward
            thr = self.objective.correct_threshold
            leaves = self.task.tasks if self.task.name == "mixture" else [self.task]
            for i, leaf in enumerate(leaves):
                r, where = leaf.reward, ("task" if self.task.name != "mixture" else f"task.tasks.{i}")
                if not (r.correct + min(0.0, r.format) > thr >= max(0.0, r.format)):
                    raise ValueError(
                        f"objective.advantage = w_reinforce counts a sample as correct when its reward > "
                        f"correct_threshold = {thr}; with {where}.reward.correct = {r.correct} and format = "
                        f"{r.format} a correct answer can score {r.correct + min(0.0, r.format)} and a wrong one "
                        f"{max(0.0, r.format)}: set the weights or objective.correct_threshold so that they fall "
                        f"on either side")
        needs_answers = self.objective.uncertainty_alpha > 0 or self.objective.dispersion_floor is not None
        if needs_answers and self.task.name == "mixture":
            kinds = {(t.name, getattr(t, "answer_format", None)) for t in self.task.tasks}
            if len(kinds) > 1:
                raise ValueError(f"objective.uncertainty_alpha / dispersion_floor read each group's answers with the "
                                 f"mixture's first task; its tasks differ in (name, answer_format): {sorted(kinds)}")
        if self.difficulty.enabled and getattr(getattr(self.task, "reward", None), "source", None) == "self_consistency":
            raise ValueError("difficulty with task.reward.source = self_consistency: curation measures pass rates with "
                             "the reference verifier, which self-consistency training must not read")
        if self.difficulty.enabled and self.task.name == "mixture":
            raise ValueError("difficulty with task.name = 'mixture': curate the pool of one task, or mix tasks")
        if self.rollout.staleness:
            why = [name for name, on in (("rollout.engine: vllm", self.rollout.engine != "hf"),
                                          ("prune.enabled", self.prune.enabled),
                                          ("difficulty.enabled", self.difficulty.enabled),
                                          ("task.name: mixture", self.task.name == "mixture"),
                                          (f"train.precision_flow: {self.train.precision_flow}",
                                           self.train.precision_flow != "none")) if on]
            if why:
                raise ValueError(f"rollout.staleness: 1 samples on a background thread with the hf engine and needs "
                                 f"each step's prompts to be independent of the last step's outcomes; it cannot run "
                                 f"with {', '.join(why)} (set rollout.staleness: 0)")
        return self
