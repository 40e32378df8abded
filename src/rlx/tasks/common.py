"""What every verifiable task shares: prompting, answer extraction, scoring, the held-out split.

A task subclasses `VerifiableTask` and provides `_sample(rng)` (one random problem) or overrides
`train_problems`/`heldout` (dataset tasks), plus `_verify(answer, problem) -> (correct, parsed)`.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from typing import Any

from rlx.config import ConfigError
from rlx.rewards.combine import combine
from rlx.rewards.delimiters import extract, format_ok, wrap
from rlx.tasks.base import Score
from rlx.tasks.config import TaskBase
from rlx.tasks.heldout import HeldoutStream, draw
from rlx.types import Problem

__all__ = ["VerifiableTask", "apply_chat_template"]


def apply_chat_template(text: str, tokenizer: Any | None) -> str | None:
    """`text` as one user turn in the tokenizer's chat template, or None if it has none."""
    if tokenizer is None or getattr(tokenizer, "chat_template", None) is None:
        return None
    out = tokenizer.apply_chat_template(
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
    return out if isinstance(out, str) else None


class VerifiableTask(ABC):
    """Base of the built-in tasks; implements the `rlx.tasks.base.Task` protocol."""

    name: str = ""
    default_templates: dict[str, str] = {}

    def __init__(self, cfg: TaskBase) -> None:
        self.cfg = cfg
        self.template = cfg.template or self.default_templates[cfg.answer_format]
        self._stream: HeldoutStream | None = None

    # -- problems -------------------------------------------------------------------------------
    def _sample(self, rng: random.Random) -> Problem:
        """One random problem (held-out or not; the caller filters). Generator tasks override it;
        tasks backed by a fixed pool of rows (MathTask) override train_problems instead."""
        raise TypeError(f"{type(self).__name__} has no problem generator")

    def train_problems(self, n: int, seed: int) -> list[Problem]:
        """`n` training problems drawn with `seed`; never a held-out problem. With `train_pool` = k,
        the n problems are drawn with replacement from one fixed pool of k (paper oneshot: k = 1)."""
        if self.cfg.train_pool is not None:
            pool = draw(self._sample, self.cfg.train_pool, random.Random(f"pool:{self.cfg.pool_seed}"),
                        self.cfg.heldout_fraction)
            rng = random.Random(f"train:{seed}")
            return [pool[rng.randrange(len(pool))] for _ in range(n)]
        return draw(self._sample, n, random.Random(f"train:{seed}"), self.cfg.heldout_fraction)

    def heldout(self, n: int, allow_fewer: bool = False) -> list[Problem]:
        """The first `n` problems of this task's fixed held-out sequence (unique, same everywhere).

        If the held-out space has fewer than `n` problems: all of them with `allow_fewer`, else a
        ConfigError.
        """
        if self._stream is None:
            self._stream = HeldoutStream(self._sample, self.cfg.heldout_fraction)
        return list(self._stream.take(n, allow_fewer))

    # -- text -----------------------------------------------------------------------------------
    def _fields(self, problem: Problem) -> dict[str, Any]:
        return {"question": problem.question}

    def prompt(self, problem: Problem, tokenizer: Any | None = None) -> str:
        """Plain template for answer_format=plain or tokenizers without a chat template."""
        text = self.template.format_map(self._fields(problem))
        if self.cfg.answer_format != "plain":
            chat = apply_chat_template(text, tokenizer)
            if chat is not None:
                return chat
        return text

    def check_template(self, problem: Problem) -> None:
        try:
            self.template.format_map(self._fields(problem))
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
            raise ConfigError(f"config error: task.template = {self.template!r}: cannot be filled ({e!r}); "
                              f"available fields: {sorted(self._fields(problem))}; write literal braces as {{{{ }}}}") from None

    def reference_answer(self, problem: Problem) -> str:
        return problem.answer

    def reference_completion(self, problem: Problem) -> str:
        return wrap(self.reference_answer(problem), self.cfg.answer_format)

    def extract_answer(self, completion: str) -> str | None:
        return extract(completion, self.cfg.answer_format)

    def same_answer(self, a: str, b: str) -> bool:
        """Whether two extracted answers are the same answer (the self-consistency vote, paper spark). Equal
        strings here; tasks whose verifier reads values (numbers, math) override it."""
        return a == b

    # -- scoring --------------------------------------------------------------------------------
    @abstractmethod
    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        """(correct, parsed) of an extracted answer."""

    def score(self, completion: str, problem: Problem) -> Score:
        """Malformed output scores (correct=False, parsed=False). A verifier that fails (a bug, a sandbox that
        cannot start) raises: the loops score through `rlx.rewards.safe.safe_score`, which counts and logs it
        and scores the sample 0 (it used to be a silent 0 here, invisible in `rollout/reward_errors`)."""
        answer = self.extract_answer(completion)
        fmt = format_ok(completion, self.cfg.answer_format)
        correct, parsed = (False, False) if answer is None else self._verify(answer, problem)
        text = completion if isinstance(completion, str) else ""
        return combine(self.cfg.reward, correct=correct, parsed=parsed, format_ok=fmt,
                       problem_id=problem.id, completion=text)
