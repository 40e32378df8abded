"""Combine verifier outcomes into a `Score` with the weights and noise of a RewardConfig."""

from __future__ import annotations

from collections.abc import Sequence

from rlx.rewards.config import RewardConfig
from rlx.rewards.noise import flip_reward, random_reward
from rlx.tasks.base import Score

__all__ = ["combine", "summarize"]


def combine(
    cfg: RewardConfig, *, correct: bool, parsed: bool, format_ok: bool, problem_id: str, completion: str
) -> Score:
    """reward = cfg.correct * c + cfg.format * f, where c is the (possibly noisy) correctness.

    parts: {"correct": c, "format": f}; `Score.correct` is the true verdict.
    """
    c = 1.0 if correct else 0.0
    if cfg.noise == "random":
        c = random_reward(cfg.noise_p, cfg.noise_seed, problem_id, completion)
    elif cfg.noise == "flip":
        c = flip_reward(correct, cfg.noise_p, cfg.noise_seed, problem_id, completion)
    f = 1.0 if format_ok else 0.0
    reward = cfg.correct * c + cfg.format * f
    return Score(reward=reward, correct=bool(correct), parsed=bool(parsed), parts={"correct": c, "format": f})


def summarize(scores: Sequence[Score], prefix: str = "rollout/") -> dict[str, float]:
    """Batch metrics of verifier verdicts: mean reward, accuracy, format rate, unparsed count.

    `{prefix}unparsed` counts malformed outputs (no answer could be read), so they show up in the
    run's metrics instead of silently scoring 0.
    """
    n = len(scores)
    if n == 0:
        return {}
    return {
        f"{prefix}reward": sum(s.reward for s in scores) / n,
        f"{prefix}accuracy": sum(s.correct for s in scores) / n,
        f"{prefix}format": sum(s.parts.get("format", float(s.parsed)) for s in scores) / n,
        f"{prefix}unparsed": float(sum(not s.parsed for s in scores)),
        f"{prefix}unparsed_frac": sum(not s.parsed for s in scores) / n,
    }


def part_means(scores: Sequence[Score], prefix: str = "rollout/part/") -> dict[str, float]:
    """Mean of each named reward component over all `scores` (a score without the part counts 0),
    e.g. {"rollout/part/correct": 0.4, "rollout/part/format": 0.9}: what each term of the reward paid."""
    n = len(scores)
    totals: dict[str, float] = {}
    for s in scores:
        for name, value in s.parts.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {f"{prefix}{name}": total / n for name, total in sorted(totals.items())} if n else {}
