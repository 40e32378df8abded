"""The task protocol: a seeded source of verifiable problems plus how to prompt and score them.

Usage (what SFT, the RLVR loop and `rlx eval` do):

    task = make_task(cfg.task)                    # e.g. ArithmeticTask(ArithmeticConfig(...))
    train = task.train_problems(64, seed=step)     # never overlaps task.heldout(...)
    prompts = [task.prompt(p, tokenizer) for p in train]
    ...generate completions...
    scores = [safe_score(task.score, c, p) for c, p in zip(completions, train)]  # a failing verifier: 0 + traceback
    sft_target = task.reference_completion(problem)                   # for supervised training
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from rlx.types import Problem

__all__ = ["Task", "Score"]


@dataclass(frozen=True)
class Score:
    """A verifier's verdict on one completion."""

    reward: float  # weighted total reward used for training
    correct: bool  # the extracted answer matches the reference (accuracy is the mean of this)
    parsed: bool  # an answer could be extracted at all (format ok); malformed output -> False
    parts: dict[str, float]  # named reward components, e.g. {"correct": 1.0, "format": 0.1}


@runtime_checkable
class Task(Protocol):
    name: str

    def train_problems(self, n: int, seed: int) -> list[Problem]:
        """`n` training problems drawn with `seed`; disjoint from every held-out problem."""
        ...

    def heldout(self, n: int) -> list[Problem]:
        """A fixed held-out set (the same `n` problems on every call and machine)."""
        ...

    def prompt(self, problem: Problem, tokenizer: Any | None = None) -> str:
        """The text fed to the model (plain template, or the tokenizer's chat template if it has one)."""
        ...

    def reference_completion(self, problem: Problem) -> str:
        """A correct completion (without EOS) for supervised training."""
        ...

    def extract_answer(self, completion: str) -> str | None:
        """The final answer in a completion, or None if there is none."""
        ...

    def score(self, completion: str, problem: Problem) -> Score:
        """Verify one completion. Total: never raises on model output."""
        ...
