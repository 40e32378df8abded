"""Countdown: reach a target from given numbers with + - * / and parentheses.

Generation builds a solution first, so every problem is solvable: draw `num_numbers` numbers,
take all of them (`use_all`) or a random subset of at least two, and combine random pairs with
random operators while every intermediate result stays a positive integer (exact divisions only).
The final value is the target (1..max_target, not itself one of the numbers). The verifier accepts
any expression that uses the given numbers at most once each and equals the target.
"""

from __future__ import annotations

import random
from typing import Any

from rlx.config import ConfigError
from rlx.rewards.countdown import check_countdown
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import CountdownConfig
from rlx.tasks.heldout import problem_id
from rlx.types import Problem

__all__ = ["CountdownTask", "canonical_countdown"]

_INSTRUCTION = ("Using the numbers {numbers}, each at most once, and the operations {operators} with "
                "parentheses, write an expression that equals {target}")
_MAX_REDRAWS = 10_000


def canonical_countdown(numbers: list[int], target: int) -> str:
    """The order-free form hashed into the problem id: sorted numbers and the target."""
    return ",".join(str(x) for x in sorted(numbers)) + "->" + str(target)


def _combine(rng: random.Random, a: tuple[int, str], b: tuple[int, str], ops: str) -> tuple[int, str] | None:
    (x, ex), (y, ey) = a, b
    for op in rng.sample(ops, len(ops)):
        if op == "+":
            v = x + y
        elif op == "*":
            v = x * y
        elif op == "-":
            if x <= y:
                continue
            v = x - y
        else:
            if y <= 1 or x % y:
                continue
            v = x // y
        return v, f"({ex}{op}{ey})"
    return None


class CountdownTask(VerifiableTask):
    name = "countdown"
    default_templates = {
        "plain": "{question}:",
        "boxed": _INSTRUCTION + ". Put the expression in \\boxed{{}}.",
        "tags": _INSTRUCTION + ". Put the expression between <answer> and </answer>.",
    }

    def __init__(self, cfg: CountdownConfig) -> None:
        super().__init__(cfg)
        self.cfg: CountdownConfig = cfg
        self.check_template(self._sample(random.Random(0)))

    def _solution(self, rng: random.Random, numbers: list[int]) -> tuple[int, str] | None:
        k = len(numbers) if self.cfg.use_all else rng.randint(2, len(numbers))
        items = [(x, str(x)) for x in rng.sample(numbers, k)]
        while len(items) > 1:
            i, j = rng.sample(range(len(items)), 2)
            merged = _combine(rng, items[i], items[j], self.cfg.operators)
            if merged is None:
                return None
            items = [it for t, it in enumerate(items) if t not in (i, j)] + [merged]
        value, expr = items[0]
        return value, expr[1:-1] if expr.startswith("(") else expr

    def _sample(self, rng: random.Random) -> Problem:
        cfg = self.cfg
        for _ in range(_MAX_REDRAWS):
            numbers = [rng.randint(cfg.min_value, cfg.max_value) for _ in range(cfg.num_numbers)]
            sol = self._solution(rng, numbers)
            if sol is None or not 1 <= sol[0] <= cfg.max_target or sol[0] in numbers:
                continue
            target, expr = sol
            question = " ".join(map(str, numbers)) + " -> " + str(target)
            meta = {"numbers": numbers, "target": target, "solution": expr}
            return Problem(id=problem_id(self.name, canonical_countdown(numbers, target)),
                           question=question, answer=str(target), meta=meta)
        raise ConfigError(f"config error: task: no countdown problem with a target in 1..{cfg.max_target} "
                          f"found in {_MAX_REDRAWS} draws (widen max_target or the value range)")

    def _fields(self, problem: Problem) -> dict[str, Any]:
        return {"question": problem.question, "numbers": ", ".join(map(str, problem.meta["numbers"])),
                "target": problem.meta["target"], "operators": " ".join(self.cfg.operators)}

    def reference_answer(self, problem: Problem) -> str:
        return problem.meta["solution"]

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        v = check_countdown(answer, problem.meta["numbers"], problem.meta["target"], self.cfg.operators)
        return v.correct, v.parsed
