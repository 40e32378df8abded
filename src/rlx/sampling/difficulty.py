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

Hard focus (paper drive: "a curriculum that continuously retains the most difficult instances"):
with `retire_above` set, the pool also learns from training. Every `retire_every` steps, a pool problem
whose rollouts since the last check solved it more often than `retire_above` leaves the pool (the
easiest first, never below `min_pool` problems), so training keeps moving to what is still hard.

One-shot selection (paper oneshot: "select the example by its reward variance"): with `top_variance: k`
only the k problems of the band with the largest pass-rate variance p_i (1 - p_i) stay (k = 1: one-shot
RLVR on the problem the initial policy is least sure about). The paper ranks by the variance of each
example's training accuracy over a preliminary RL run; we use the initial policy's pass rate, which needs
no extra run.

Deterministic given the seed and the initial weights, so a resumed run rebuilds the same pool; the
hard-focus state (which problems are retired, the counts since the last check) is checkpointed.
"""

from __future__ import annotations

import logging
import random

import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.rewards.safe import RewardErrors, safe_score
from rlx.rollout.base import SamplingParams
from rlx.types import Problem

log = logging.getLogger("rlx.difficulty")

__all__ = ["DifficultyConfig", "DifficultyPool", "pass_rates", "select_band", "top_variance", "curate"]


class DifficultyConfig(Section):
    """Off unless `candidates` > 0: then training draws only from problems in the pass-rate band."""

    candidates: int = Field(0, ge=0, le=1_000_000, description="training problems scored before RL (0: off)")
    samples: int = Field(8, ge=1, le=1024, description="samples per candidate to estimate its pass rate")
    min_pass: float = Field(0.0, ge=0, le=1, description="keep problems with pass rate >= this")
    max_pass: float = Field(1.0, ge=0, le=1, description="keep problems with pass rate <= this")
    batch_size: int = Field(256, ge=1, description="candidate prompts per generation call")
    retire_above: float | None = Field(None, ge=0, le=1, description="paper drive, hard focus: retire pool problems "
                                       "solved more often than this since the last check (None: static pool)")
    retire_every: int = Field(50, ge=1, description="hard focus: steps between checks")
    min_pool: int = Field(32, ge=1, description="hard focus: never retire below this many problems")
    top_variance: int | None = Field(None, ge=1, description="paper oneshot: keep only the k band problems with the "
                                     "largest pass-rate variance p(1-p) (None: the whole band)")

    @model_validator(mode="after")
    def _band(self) -> "DifficultyConfig":
        if self.min_pass > self.max_pass:
            raise ValueError(f"min_pass ({self.min_pass}) must be <= max_pass ({self.max_pass})")
        if self.top_variance is not None and self.candidates == 0:
            raise ValueError("top_variance needs candidates > 0 (the problems it ranks are the scored candidates)")
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


def top_variance(rates: torch.Tensor, keep: torch.Tensor, k: int) -> torch.Tensor:
    """The k indices of `keep` whose pass rate has the largest variance p (1 - p), ascending; ties go to the
    earlier candidate.  rates [C], keep [K] ascending -> [min(k, K)]

    rates [0.5, 0.25, 1.0, 0.75, 0.5], keep all, k 2 -> variances .25 .1875 0 .1875 .25 -> [0, 4].
    """
    var = (rates[keep] * (1 - rates[keep]) * 1e6).round()  # exact ties for p and 1 - p despite float rounding
    order = var.argsort(descending=True, stable=True)[:k]
    return keep[order].sort().values


class DifficultyPool:
    """A task whose training problems come from a curated pool; everything else is the task's own.

    `observe` / `end_step` implement hard focus when the config has `retire_above`; `state_dict` /
    `load_state_dict` carry that state through checkpoints.
    """

    def __init__(self, task, pool: list[Problem], rates: torch.Tensor, candidate_rates: torch.Tensor,
                 cfg: DifficultyConfig | None = None):
        self.task, self.pool, self.pass_rates, self.candidate_rates = task, pool, rates, candidate_rates
        self.cfg = cfg or DifficultyConfig()
        self.active = torch.ones(len(pool), dtype=torch.bool)  # [K] not retired
        self.tries = torch.zeros(len(pool))  # [K] samples since the last check
        self.wins = torch.zeros(len(pool))  # [K] correct samples since the last check
        self._index: dict[tuple[str, str], list[int]] = {}
        for i, p in enumerate(pool):
            self._index.setdefault((p.question, p.answer), []).append(i)

    def metrics(self) -> dict[str, float]:
        return {"difficulty/candidates": float(len(self.candidate_rates)), "difficulty/pool_size": float(len(self.pool)),
                "difficulty/candidate_pass_rate": float(self.candidate_rates.mean()),
                "difficulty/pool_pass_rate": float(self.pass_rates.mean())}

    def train_problems(self, n: int, seed: int) -> list[Problem]:
        """`n` problems drawn with replacement from the active pool (same seed and state, same draw)."""
        live = self.active.nonzero().squeeze(1).tolist()
        rng = random.Random(f"curated:{seed}")
        return [self.pool[live[rng.randrange(len(live))]] for _ in range(n)]

    def observe(self, attempts: list[tuple[Problem, int, int]]) -> None:
        """Record (problem, correct samples, samples) of every group generated this step."""
        for problem, wins, tries in attempts:
            for i in self._index.get((problem.question, problem.answer), []):
                self.tries[i] += tries
                self.wins[i] += wins

    def end_step(self, step: int) -> dict[str, float]:
        """Every `retire_every` steps: retire problems solved more often than `retire_above` (easiest first,
        keeping `min_pool`), then reset the counts. Returns metrics."""
        c = self.cfg
        if c.retire_above is not None and step % c.retire_every == 0:
            seen = self.active & (self.tries > 0)
            rate = torch.where(seen, self.wins / self.tries.clamp_min(1), torch.zeros_like(self.tries))
            easy = (seen & (rate > c.retire_above)).nonzero().squeeze(1)
            room = max(0, int(self.active.sum()) - c.min_pool)
            order = easy[rate[easy].argsort(descending=True, stable=True)][:room]
            self.active[order] = False
            self.tries.zero_()
            self.wins.zero_()
        return {"difficulty/active_pool": float(self.active.sum())}

    def state_dict(self) -> dict:
        return {"active": self.active.clone(), "tries": self.tries.clone(), "wins": self.wins.clone(),
                "questions": [p.question for p in self.pool]}

    def load_state_dict(self, state: dict) -> None:
        """Restore hard-focus state; the pool rebuilt on resume must be the one the state belongs to."""
        if state.get("questions") != [p.question for p in self.pool]:
            raise ConfigError("config error: difficulty: the pool curated on resume differs from the checkpoint's "
                              f"({len(self.pool)} vs {len(state.get('questions') or [])} problems; curation is "
                              "reproducible only with the same seed, weights and a deterministic rollout engine)")
        self.active, self.tries, self.wins = state["active"].clone(), state["tries"].clone(), state["wins"].clone()

    def __getattr__(self, name: str):
        if name == "task":  # not set yet (copy / unpickle): no delegation loop
            raise AttributeError(name)
        return getattr(self.task, name)


@torch.no_grad()
def curate(task, engine, tokenizer, cfg: DifficultyConfig, params: SamplingParams, seed: int,
           errors: RewardErrors | None = None) -> DifficultyPool:
    """Score `cfg.candidates` training problems `cfg.samples` times each; keep the pass-rate band.
    The verifier runs through `safe_score`, as in training: a failing sample counts as wrong, is counted in
    `errors` and its traceback is logged once per kind."""
    errors = errors if errors is not None else RewardErrors()
    drawn = task.train_problems(cfg.candidates, seed=-(seed + 1))  # a draw the training steps never use
    # once per problem: a fixed pool (task.train_pool, a dataset smaller than `candidates`) repeats problems,
    # and copies with their own noisy pass rates were banded, ranked and counted as separate problems
    candidates, seen = [], set()
    for p in drawn:
        if (p.id, p.question, p.answer) not in seen:
            seen.add((p.id, p.question, p.answer))
            candidates.append(p)
    if len(candidates) < len(drawn):
        log.info("difficulty: %d of %d candidates were repeats of the same problems; scoring %d distinct",
                 len(drawn) - len(candidates), len(drawn), len(candidates))
    params = params.model_copy(update={"n": cfg.samples})
    per_call = max(1, cfg.batch_size // cfg.samples)
    correct: list[bool] = []
    for start in range(0, len(candidates), per_call):
        chunk = candidates[start:start + per_call]
        gen = engine.generate([task.prompt(p, tokenizer) for p in chunk], params, seed=seed * 7919 + start)
        for i, text in enumerate(gen.texts):
            score, err = safe_score(task.score, text, chunk[i // cfg.samples])
            if err is not None and errors.record(err):
                log.warning("reward function failed while curating; the sample counts as wrong (logged once per "
                            "kind):\n%s", err)
            correct.append(bool(score.correct))
    rates = pass_rates(torch.tensor(correct), cfg.samples)
    keep = select_band(rates, cfg.min_pass, cfg.max_pass)
    if cfg.top_variance is not None:  # paper oneshot
        keep = top_variance(rates, keep, cfg.top_variance)
        if keep.numel() and bool((rates[keep] * (1 - rates[keep]) == 0).all()):
            log.warning("difficulty.top_variance: every kept problem has pass rate 0 or 1, so every group will tie; "
                        "score more candidates or samples")
    if keep.numel() == 0:
        hist = torch.bincount((rates * cfg.samples).round().long(), minlength=cfg.samples + 1).tolist()
        raise ConfigError(f"config error: difficulty: no candidate problem has a pass rate in [{cfg.min_pass}, "
                          f"{cfg.max_pass}] (problems by correct samples out of {cfg.samples}: {hist})")
    return DifficultyPool(task, [candidates[i] for i in keep.tolist()], rates[keep], rates, cfg)
