"""Random arithmetic expressions with exact answers (paper `randcalc`, RandomCalculation).

An expression has k operands (k uniform in [min_operands, max_operands]), each with d digits (d
uniform in [min_digits, max_digits]; 1-digit operands include 0), joined by operators drawn from
`operators` (each operator in `must_use` at least once). At each operand, with probability `paren_prob`, a parenthesised group of 2..(k-1)
operands opens (recursively). Values are exact `Fraction`s under the usual precedence; answers are
integers ("-46") or reduced fractions ("-7/2"). Expressions dividing by zero are redrawn, and so
are non-integer ones when `integer_answers` is set.
"""

from __future__ import annotations

import random
from fractions import Fraction

from rlx.config import ConfigError
from rlx.rewards.numeric import numeric_equal, parse_number
from rlx.tasks.common import VerifiableTask
from rlx.tasks.config import ArithmeticConfig
from rlx.tasks.heldout import problem_id
from rlx.types import Problem

__all__ = ["ArithmeticTask", "evaluate_tokens", "generate_tokens"]

_INSTRUCTION = "Compute {question}. Give the exact value (an integer or a reduced fraction a/b)"
_MAX_REDRAWS = 10_000


def _operand(rng: random.Random, cfg: ArithmeticConfig) -> str:
    d = rng.randint(cfg.min_digits, cfg.max_digits)
    lo = 0 if d == 1 else 10 ** (d - 1)
    return str(rng.randint(lo, 10**d - 1))


def generate_tokens(rng: random.Random, n: int, cfg: ArithmeticConfig) -> list[str]:
    """Tokens of a random expression with exactly `n` operands, e.g. ["(", "12", "+", "3", ")", "*", "4"]."""
    out: list[str] = []
    i = 0
    while i < n:
        if out:
            out.append(cfg.operators[rng.randrange(len(cfg.operators))])
        rem = n - i
        m, hi = 1, (rem if rem < n else n - 1)  # a group never wraps the whole expression
        if cfg.paren_prob > 0 and hi >= 2 and rng.random() < cfg.paren_prob:
            m = rng.randint(2, hi)
        if m >= 2:
            out += ["(", *generate_tokens(rng, m, cfg), ")"]
        else:
            out.append(_operand(rng, cfg))
        i += m
    return out


def _force_operators(rng: random.Random, tokens: list[str], ops: str) -> bool:
    """Put each operator of `ops` that is missing into a random free operator slot (in place)."""
    slots = [i for i, t in enumerate(tokens) if t in ("+", "-", "*", "/")]
    missing = [op for op in ops if op not in tokens]
    free = [i for i in slots if tokens[i] not in ops]
    if len(free) < len(missing):
        return False
    for op, i in zip(missing, rng.sample(free, len(missing))):
        tokens[i] = op
    return True


def evaluate_tokens(tokens: list[str]) -> Fraction | None:
    """Exact value of a token list by recursive descent (None on division by zero)."""
    pos = 0

    def atom() -> Fraction | None:
        nonlocal pos
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            v = expr()
            pos += 1  # ")"
            return v
        return Fraction(int(tok))

    def term() -> Fraction | None:
        nonlocal pos
        v = atom()
        while pos < len(tokens) and tokens[pos] in "*/":
            op = tokens[pos]
            pos += 1
            w = atom()
            if v is None or w is None or (op == "/" and w == 0):
                v = None
            else:
                v = v * w if op == "*" else v / w
        return v

    def expr() -> Fraction | None:
        nonlocal pos
        v = term()
        while pos < len(tokens) and tokens[pos] in "+-":
            op = tokens[pos]
            pos += 1
            w = term()
            v = None if v is None or w is None else (v + w if op == "+" else v - w)
        return v

    return expr()


class ArithmeticTask(VerifiableTask):
    name = "arithmetic"
    default_templates = {
        "plain": "{question}=",
        "boxed": _INSTRUCTION + " and put it in \\boxed{{}}.",
        "tags": _INSTRUCTION + " between <answer> and </answer>.",
    }

    def __init__(self, cfg: ArithmeticConfig) -> None:
        super().__init__(cfg)
        self.cfg: ArithmeticConfig = cfg
        self.check_template(self._sample(random.Random(0)))

    def _sample(self, rng: random.Random) -> Problem:
        cfg = self.cfg
        for _ in range(_MAX_REDRAWS):
            n = rng.randint(cfg.min_operands, cfg.max_operands)
            tokens = generate_tokens(rng, n, cfg)
            if cfg.must_use and not _force_operators(rng, tokens, cfg.must_use):
                continue
            value = evaluate_tokens(tokens)
            if value is None or (cfg.integer_answers and value.denominator != 1):
                continue
            canonical = "".join(tokens)
            question = " ".join(tokens).replace("( ", "(").replace(" )", ")") if cfg.spaced else canonical
            meta = {"operands": n, "operators": "".join(t for t in tokens if t in "+-*/")}
            return Problem(id=problem_id(self.name, canonical), question=question, answer=str(value), meta=meta)
        raise ConfigError(
            f"config error: task.operators = {cfg.operators!r}: no valid expression in {_MAX_REDRAWS} draws "
            "(integer_answers with '/' and many operands rarely gives integers)")

    def same_answer(self, a: str, b: str) -> bool:
        return a == b or (parse_number(a) is not None and numeric_equal(a, b))

    def _verify(self, answer: str, problem: Problem) -> tuple[bool, bool]:
        parsed = parse_number(answer) is not None
        return parsed and numeric_equal(answer, problem.answer), parsed
