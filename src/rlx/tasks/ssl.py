"""Self-supervised pretext tasks as verifiable rewards (paper ssl4rl), made from arithmetic equations.

SSL4RL turns self-supervised objectives (predict an image's rotation, reconstruct masked patches)
into RL tasks whose answers are known by construction, so no labels or judges are needed. The text
analogues here start from an unlabeled equation `a op b=c` (drawn by the arithmetic generator,
written out with its value):

    masked_digit  (masked reconstruction) one digit is replaced by '?': "1?+34=46" -> "2". Only
                  positions whose digit is the unique one of 0-9 that keeps the equation true are
                  masked, so every problem has exactly one answer.
    reversed      (rotation prediction) the equation text is written backwards or not, with equal
                  probability: "64=43+21" -> "1", "12+34=46" -> "0".

Prompt: "{question}>" (plain); the answer is one digit. Held-out problems are split by the hash of
the pretext question, like every generator task. Departure: the paper's pretexts are visual and its
models VLMs; these are the closest text pretexts for the arithmetic models of this repo.
"""

from __future__ import annotations

import random

from rlx.rewards.numeric import parse_number
from rlx.tasks.arithmetic import ArithmeticTask, evaluate_tokens
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import SSLConfig
from rlx.tasks.heldout import is_heldout, problem_id
from rlx.types import Problem

__all__ = ["SSLTask", "equation_text", "unique_digit_positions"]

_DRAWS = 1000


def equation_text(question: str, answer: str) -> str:
    """'a op b' and its value -> 'a op b=value'."""
    return f"{question}={answer}"


def _holds(equation: str) -> bool:
    """Whether 'lhs=rhs' is a true equation (both sides evaluate and are equal)."""
    lhs, _, rhs = equation.partition("=")
    tokens = []
    for ch in lhs:  # re-tokenise: numbers and operators (no parentheses or spaces in these equations)
        if ch.isdigit() and tokens and tokens[-1].isdigit():
            tokens[-1] += ch
        else:
            tokens.append(ch)
    if any(len(t) > 1 and t[0] == "0" for t in tokens if t.isdigit()) or (len(rhs) > 1 and rhs[0] == "0"):
        return False  # no leading zeros: "07" is not how the generator writes numbers
    value, right = evaluate_tokens(tokens), parse_number(rhs)
    return value is not None and right is not None and value == right


def _forced(equation: str, i: int) -> bool:
    """Whether the digit at i is the only digit 0-9 keeping `equation` true."""
    return all(_holds(equation[:i] + d + equation[i + 1:]) == (d == equation[i]) for d in "0123456789")


def unique_digit_positions(equation: str) -> list[int]:
    """Indices of digits that are the only digit 0-9 keeping `equation` true."""
    return [i for i, ch in enumerate(equation) if ch.isdigit() and _forced(equation, i)]


class SSLTask(VerifiableTask):
    name = "ssl"
    default_templates = {"plain": "{question}>", "boxed": "{question}> Put the answer in \\boxed{{}}.",
                         "tags": "{question}> Put the answer between <answer> and </answer>."}

    def __init__(self, cfg: SSLConfig) -> None:
        super().__init__(cfg)
        self.cfg: SSLConfig = cfg
        self.source = ArithmeticTask(cfg.source)
        self.check_template(self._sample(random.Random(0)))

    def _sample(self, rng: random.Random) -> Problem:
        for _ in range(_DRAWS):
            p = self.source._sample(rng)
            if is_heldout(p.id, self.cfg.source.heldout_fraction):
                continue  # never train (or evaluate) a pretext on an equation `--task arithmetic` scores
            eq = equation_text(p.question, p.answer)
            if self.cfg.pretext == "reversed":
                flip = rng.random() < 0.5
                question, answer = (eq[::-1], "1") if flip else (eq, "0")
            else:
                digits = [i for i, ch in enumerate(eq) if ch.isdigit()]
                rng.shuffle(digits)
                i = next((j for j in digits if _forced(eq, j)), None)  # a random forced position
                if i is None:
                    continue
                question, answer = eq[:i] + "?" + eq[i + 1:], eq[i]
            meta = {"pretext": self.cfg.pretext, "equation": eq}
            # the split (the id's first 8 hex digits) follows the equation, so a held-out equation is never
            # trained on under another mask or orientation; the rest keeps pretext questions distinct
            pid = problem_id("ssl", eq)[:8] + problem_id(f"ssl-{self.cfg.pretext}", question)[:8]
            return Problem(id=pid, question=question, answer=answer, meta=meta)
        raise RuntimeError(f"no maskable equation in {_DRAWS} draws")  # pragma: no cover - every a+b=c has one

    _verify = ArithmeticTask._verify  # a digit answer, compared as a number
