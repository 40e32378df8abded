"""Train / held-out disjointness by construction: a problem's split is a function of its question.

    id = sha256(task name + canonical question)[:16]           (Problem.id)
    held out  <=>  int(id[:8], 16) / 2**32 < heldout_fraction

Training draws reject held-out ids, held-out sets keep only held-out ids, so no setting of any
generator (seed, difficulty, operators) can put a held-out question into training, as long as
train and eval use the same `heldout_fraction` (it is part of the task config written to the run
directory). Held-out sets are drawn with a fixed seed, so `heldout(n)` is the same list on every
call and machine, and `heldout(m)` is a prefix of `heldout(n)` for m < n.
"""

from __future__ import annotations

import hashlib
import random
from typing import Callable

from rlx.config import ConfigError
from rlx.types import Problem

__all__ = ["problem_id", "is_heldout", "draw", "HeldoutStream", "HELDOUT_SEED"]

HELDOUT_SEED = 20_240_611  # fixed: held-out sets never depend on a run's seed
_MAX_STALL = 5_000  # consecutive draws without a new problem before we call the space exhausted
# ... scaled for a small held-out fraction f, where a new held-out problem takes ~1/f draws: the held-out
# space is exhausted after ~500 draws in its bucket without a new one (the same 5,000 at the default 0.1)
_BUCKET_REPEATS = 500
_MAX_DRAWS = 2_000_000  # a few seconds: below fraction ~2.5e-4 the stream may stop before the space is used up


def problem_id(task_name: str, canonical_question: str) -> str:
    """Stable 16-hex-digit id of a question (same on every machine and Python version)."""
    data = f"{task_name}\0{canonical_question}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(data).hexdigest()[:16]


def is_heldout(pid: str, fraction: float) -> bool:
    """Whether the problem with id `pid` belongs to the held-out bucket."""
    return int(pid[:8], 16) / 2.0**32 < fraction


def draw(sample: Callable[[random.Random], Problem], n: int, rng: random.Random, fraction: float) -> list[Problem]:
    """`n` training problems (never held out) from `sample`; repeats are allowed."""
    out: list[Problem] = []
    stall = 0
    while len(out) < n:
        p = sample(rng)
        if not is_heldout(p.id, fraction):
            out.append(p)
            stall = 0
            continue
        stall += 1
        if stall > _MAX_STALL:
            raise ConfigError("config error: task.heldout_fraction: almost every problem is held out; "
                              "no training problems could be drawn")
    return out


class HeldoutStream:
    """The fixed held-out sequence of a sampler: unique held-out problems in draw order, drawn with
    HELDOUT_SEED and extended on demand, so `take(m)` is a prefix of `take(n)` for m < n."""

    def __init__(self, sample: Callable[[random.Random], Problem], fraction: float) -> None:
        self.sample, self.fraction = sample, fraction
        self.rng = random.Random(HELDOUT_SEED)
        self.problems: list[Problem] = []
        self.seen: set[str] = set()
        self.exhausted = False  # no new held-out problem in _MAX_STALL draws: the space is used up

    def take(self, n: int, allow_fewer: bool = False) -> list[Problem]:
        stall, limit = 0, min(_MAX_DRAWS, max(_MAX_STALL, int(_BUCKET_REPEATS / max(self.fraction, 1e-12))))
        while len(self.problems) < n and not self.exhausted:
            p = self.sample(self.rng)
            if is_heldout(p.id, self.fraction) and p.id not in self.seen:
                self.seen.add(p.id)
                self.problems.append(p)
                stall = 0
            else:
                stall += 1
                self.exhausted = stall > limit
        if len(self.problems) < n and not allow_fewer:
            raise ConfigError(f"config error: task: the held-out space has only {len(self.problems)} problems, "
                              f"{n} requested (raise digits/operands or heldout_fraction)")
        return self.problems[:n]
