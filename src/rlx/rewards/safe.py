"""Running user reward functions safely inside the training loop.

    errors = RewardErrors()
    for completion, problem in pairs:
        score, err = safe_score(my_reward, completion, problem)
        if err is not None and errors.record(err):
            log.warning("reward function failed (logged once per distinct failure):\\n%s", err)
    run.log(step, {**errors.metrics(), ...})     # rollout/reward_errors

A failing call scores 0 (`parsed=False`) and the training run goes on. A function may return a
`Score`, a bool, or a finite number; anything else is a failure too.
"""

from __future__ import annotations

import math
import traceback
from typing import Any, Callable

from rlx.tasks.base import Score

__all__ = ["safe_score", "RewardErrors", "ZERO"]

ZERO = Score(reward=0.0, correct=False, parsed=False, parts={})


def _as_score(value: Any) -> Score:
    if isinstance(value, Score):
        if not math.isfinite(value.reward):
            raise ValueError(f"reward function returned a non-finite reward {value.reward!r}")
        return value
    if isinstance(value, bool):
        return Score(reward=float(value), correct=value, parsed=True, parts={"reward": float(value)})
    if isinstance(value, (int, float)):
        r = float(value)
        if not math.isfinite(r):
            raise ValueError(f"reward function returned a non-finite reward {value!r}")
        return Score(reward=r, correct=r > 0, parsed=True, parts={"reward": r})
    raise TypeError(f"reward function must return a Score, bool or number, got {type(value).__name__}")


def safe_score(fn: Callable[[str, Any], Any], completion: str, problem: Any) -> tuple[Score, str | None]:
    """Call `fn(completion, problem)`; on any exception return (zero score, traceback text).
    `SystemExit` from a reward function (a stray `sys.exit`) is a failure of that sample too; only
    KeyboardInterrupt (a kill of the run) goes through."""
    try:
        return _as_score(fn(completion, problem)), None
    except (Exception, SystemExit) as e:
        failure = Failure(traceback.format_exc())
        failure.key = _exception_key(e)
        return ZERO, failure


class Failure(str):
    """A failure's traceback text; `.key` names its kind for logging once (see `_exception_key`)."""

    key: str


def _exception_key(e: BaseException | None) -> str:
    """The kind of a failure: exception types and frames along the whole chain (`raise ... from`, or raised
    while handling another), without any message (messages often hold the input, so every sample would be a
    new kind)."""
    parts, seen = [], set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        frames = ";".join(f"{f.filename}:{f.lineno}:{f.name}" for f in traceback.extract_tb(e.__traceback__))
        parts.append(f"{type(e).__module__}.{type(e).__qualname__}@{frames}")
        e = e.__cause__ if e.__cause__ is not None else (None if e.__suppress_context__ else e.__context__)
    return "|".join(parts)


def _failure_key(error_text: str) -> str:
    """The key of a traceback given as plain text: its frames and the last exception's type."""
    key = getattr(error_text, "key", None)
    if key is not None:
        return key
    lines = error_text.rstrip().splitlines()
    if not lines:
        return ""
    return "\n".join(lines[:-1] + [lines[-1].split(":", 1)[0]])


class RewardErrors:
    """Counts reward-function failures; `record` is True the first time a distinct failure is seen."""

    def __init__(self) -> None:
        self.count = 0
        self.seen: dict[str, int] = {}

    def record(self, error_text: str) -> bool:
        self.count += 1
        key = _failure_key(error_text)
        first = key not in self.seen
        self.seen[key] = self.seen.get(key, 0) + 1
        return first

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "seen": dict(self.seen)}

    def load_state_dict(self, state: dict[str, Any] | int) -> None:
        """Restore from `state_dict()` (an int: a checkpoint that kept only the count)."""
        if isinstance(state, int):
            self.count, self.seen = state, {}
        else:
            self.count, self.seen = int(state["count"]), dict(state["seen"])

    def metrics(self) -> dict[str, float]:
        return {"rollout/reward_errors": float(self.count), "rollout/reward_error_kinds": float(len(self.seen))}
