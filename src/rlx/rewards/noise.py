"""Reward-noise wrappers (paper `randcalc`): random rewards and flipped rewards.

Deterministic: the draw for one (seed, problem id, completion) is a hash, the same on every call
and machine, so a run is reproducible and a re-scored completion gets the same reward.
"""

from __future__ import annotations

import hashlib

__all__ = ["noise_uniform", "random_reward", "flip_reward"]


def noise_uniform(seed: int, problem_id: str, completion: str) -> float:
    """A uniform number in [0, 1) determined by (seed, problem_id, completion)."""
    h = hashlib.sha256()
    for part in (str(seed), str(problem_id), completion if isinstance(completion, str) else repr(completion)):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return int.from_bytes(h.digest()[:8], "little") / 2.0**64


def random_reward(p: float, seed: int, problem_id: str, completion: str) -> float:
    """1.0 with probability p, else 0.0, regardless of correctness."""
    return 1.0 if noise_uniform(seed, problem_id, completion) < p else 0.0


def flip_reward(correct: bool, p: float, seed: int, problem_id: str, completion: str) -> float:
    """The correctness reward, flipped (1 <-> 0) with probability p."""
    flip = noise_uniform(seed, problem_id, completion) < p
    return float(bool(correct) != flip)
