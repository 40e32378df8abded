"""Execution rewards for generated programs: run them in the sandbox against test cases.

    r = execution_reward("print(int(input()) * 2)", [("3", "6"), ("5", "10")])   # 1.0

The program runs once per case (stdin in, stdout compared after stripping trailing whitespace on
each line); the reward is the fraction of cases passed. A crash, timeout, resource limit or refused
operation fails that case; nothing raises. `fenced_code` takes the last ```python block of a
completion (or the whole completion when there is none).
"""

from __future__ import annotations

import re

from rlx.rewards.sandbox import SandboxLimits, run_many

__all__ = ["fenced_code", "normalise_output", "execution_reward"]

_FENCE = re.compile(r"```(?:python|py)?\n(.*?)```", re.DOTALL)


def fenced_code(completion: str) -> str:
    blocks = _FENCE.findall(completion)
    return blocks[-1] if blocks else completion


def normalise_output(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().splitlines())


def execution_reward(program: str, cases: list[tuple[str, str]], limits: SandboxLimits = SandboxLimits(),
                      workers: int = 1) -> float:
    """Fraction of (stdin, expected stdout) cases the program passes in the sandbox."""
    if not cases:
        raise ValueError("execution_reward needs at least one case")
    results = run_many([(program, stdin) for stdin, _ in cases], limits, workers)
    passed = sum(r.ok and normalise_output(r.stdout) == normalise_output(exp) for r, (_, exp) in zip(results, cases))
    return passed / len(cases)
