"""Difficulty-aligned training prompts (papers simplerl, drive): keep problems the policy sometimes solves.

Before RL, each of C candidate training problems is sampled S times with the initial policy; its
pass rate is p_i = (correct samples) / S. Training then draws prompts only from the problems with

    min_pass <= p_i <= max_pass

(SimpleRL-Zoo's "align query difficulty with the base model"; DRIVE's curation of a training set by
measured difficulty). Problems with p_i = 0 or 1 give groups whose rewards all tie, which carry no
group-relative signal; the band decides how far from those edges training stays.

    cfg = DifficultyConfig(candidates=2000, samples=8, min_pass=0.125, max_pass=0.875)
    task = curate(task, engine, tokenizer, cfg, params, seed=0)   # a DifficultyPool: same task, narrower train set
    task.pass_rates                                                  # [pool] the measured p_i of the kept problems

Deterministic given the seed and the initial weights, so a resumed run rebuilds the same pool.
"""

from __future__ import annotations

import random

import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.rollout.base import SamplingParams
from rlx.types import Problem

__all__ = ["DifficultyConfig", "DifficultyPool", "pass_rates", "select_band", "curate"]


class DifficultyConfig(Section):
    """Off unless `candidates` > 0: then training draws only from problems in the pass-rate band."""

    candidates: int = Field(0, ge=0, le=1_000_000, description="training problems scored before RL (0: off)")
    samples: int = Field(8, ge=1, le=1024, description="samples per candidate to estimate its pass rate")
    min_pass: float = Field(0.0, ge=0, le=1, description="keep problems with pass rate >= this")
    max_pass: float = Field(1.0, ge=0, le=1, description="keep problems with pass rate <= this")
    batch_size: int = Field(256, ge=1, description="candidate prompts per generation call")

    @model_validator(mode="after")
    def _band(self) -> "DifficultyConfig":
        if self.min_pass > self.max_pass:
            raise ValueError(f"min_pass ({self.min_pass}) must be <= max_pass ({self.max_pass})")
        return self

    @property
    def enabled(self) -> bool:
        return self.candidates > 0


def pass_rates(correct: torch.Tensor, samples: int) -> torch.Tensor:
    """Per-problem fraction of correct samples.  correct [C*S] bool, rows of one problem contiguous -> [C] f32"""
    if correct.dim() != 1 or correct.numel() % samples:
        raise ValueError(f"correct must be [C*S] with S={samples} dividing it, got shape {tuple(correct.shape)}")
    return correct.view(-1, samples).float().mean(dim=1)


def select_band(rates: torch.Tensor, min_pass: float, max_pass: float) -> torch.Tensor:
    """Indices [K] (ascending) of problems with min_pass <= rate <= max_pass.  rates [C]"""
    return torch.nonzero((rates >= min_pass) & (rates <= max_pass)).squeeze(1)


class DifficultyPool:
    """A task whose training problems come from a fixed curated pool; everything else is the task's own."""

    def __init__(self, task, pool: list[Problem], rates: torch.Tensor, candidate_rates: torch.Tensor):
        self.task, self.pool, self.pass_rates, self.candidate_rates = task, pool, rates, candidate_rates

    def metrics(self) -> dict[str, float]:
        return {"difficulty/candidates": float(len(self.candidate_rates)), "difficulty/pool_size": float(len(self.pool)),
                "difficulty/candidate_pass_rate": float(self.candidate_rates.mean()),
                "difficulty/pool_pass_rate": float(self.pass_rates.mean())}

    def train_problems(self, n: int, seed: int) -> list[Problem]:
        """`n` problems drawn with replacement from the pool (same seed, same draw)."""
        rng = random.Random(f"curated:{seed}")
        return [self.pool[rng.randrange(len(self.pool))] for _ in range(n)]

    def __getattr__(self, name: str):
        return getattr(self.task, name)


@torch.no_grad()
def curate(task, engine, tokenizer, cfg: DifficultyConfig, params: SamplingParams, seed: int) -> DifficultyPool:
    """Score `cfg.candidates` training problems `cfg.samples` times each; keep the pass-rate band."""
    candidates = task.train_problems(cfg.candidates, seed=-(seed + 1))  # a draw the training steps never use
    params = params.model_copy(update={"n": cfg.samples})
    per_call = max(1, cfg.batch_size // cfg.samples)
    correct: list[bool] = []
    for start in range(0, len(candidates), per_call):
        chunk = candidates[start:start + per_call]
        gen = engine.generate([task.prompt(p, tokenizer) for p in chunk], params, seed=seed * 7919 + start)
        for i, text in enumerate(gen.texts):
            try:
                correct.append(bool(task.score(text, chunk[i // cfg.samples]).correct))
            except Exception:  # a failing verifier counts the sample as wrong, as in training
                correct.append(False)
    rates = pass_rates(torch.tensor(correct), cfg.samples)
    keep = select_band(rates, cfg.min_pass, cfg.max_pass)
    if keep.numel() == 0:
        hist = torch.bincount((rates * cfg.samples).round().long(), minlength=cfg.samples + 1).tolist()
        raise ConfigError(f"config error: difficulty: no candidate problem has a pass rate in [{cfg.min_pass}, "
                          f"{cfg.max_pass}] (problems by correct samples out of {cfg.samples}: {hist})")
    return DifficultyPool(task, [candidates[i] for i in keep.tolist()], rates[keep], rates)
