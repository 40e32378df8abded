"""Countdown verifier: does an expression reach the target using only the given numbers?

Safe by construction: the text must consist of ASCII digits, `+ - * /`, parentheses and spaces
before it is parsed with `ast` (never `eval`), so `1e999`, `0x10`, `9**9**9`, names and calls are
rejected before parsing. Values are exact `Fraction`s; a division by zero makes the expression
wrong, not an error. Each given number may be used at most once (a multiset check); unary minus
is not allowed (it would create numbers that are not given).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["CountdownVerdict", "check_countdown", "evaluate_expression", "MAX_CHARS"]

MAX_CHARS = 300  # longer expressions are rejected before parsing
_ALLOWED = re.compile(r"[0-9+\-*/() \t]+", re.ASCII)
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


@dataclass(frozen=True)
class CountdownVerdict:
    parsed: bool  # the text is a well-formed expression over integers with allowed operators
    correct: bool  # ... that uses only the given numbers (each at most once) and equals the target
    reason: str  # "ok", or why not (for debugging and tests)


class _Reject(Exception):
    pass


def _eval(node: ast.AST, ops: str, used: list[int]) -> Fraction | None:
    """Exact value of the tree (None on division by zero); raises _Reject on disallowed syntax."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        sym = _OPS[type(node.op)]
        if sym not in ops:
            raise _Reject(f"operator {sym} not allowed")
        a, b = _eval(node.left, ops, used), _eval(node.right, ops, used)
        if a is None or b is None:
            return None
        if sym == "+":
            return a + b
        if sym == "-":
            return a - b
        if sym == "*":
            return a * b
        return None if b == 0 else a / b
    if isinstance(node, ast.BinOp):
        raise _Reject(f"operator {type(node.op).__name__} not allowed")
    raise _Reject(f"disallowed syntax {type(node).__name__}")


def evaluate_expression(text: str, operators: str = "+-*/") -> tuple[Fraction | None, list[int]]:
    """Parse and exactly evaluate an integer expression; returns (value, literals used).

    Raises ValueError on anything that is not such an expression (callers that face model output
    use `check_countdown`, which never raises). Value None means a division by zero.
    """
    if not isinstance(text, str) or len(text) > MAX_CHARS or not _ALLOWED.fullmatch(text):
        raise ValueError("not an arithmetic expression over non-negative integers")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        raise ValueError(f"cannot parse: {type(e).__name__}") from None
    used: list[int] = []
    try:
        value = _eval(tree.body, operators, used)
    except _Reject as e:
        raise ValueError(str(e)) from None
    except RecursionError:
        raise ValueError("expression nested too deeply") from None
    return value, used


_OPERATOR_SPELLINGS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"), ("×", "*"), ("·", "*"), ("÷", "/"),
                       ("−", "-"), ("\\left", ""), ("\\right", ""))


def _plain_operators(text: str) -> str:
    """LaTeX and unicode spellings of the operators (`3 \\times 5`, `×`, `÷`, `−`) as Python's."""
    for spelled, plain in _OPERATOR_SPELLINGS:
        text = text.replace(spelled, plain)
    return text


def check_countdown(
    expression: object, numbers: list[int] | tuple[int, ...], target: int, operators: str = "+-*/"
) -> CountdownVerdict:
    """Verify a countdown answer. Total: never raises. A trailing `= <number>` is ignored."""
    if not isinstance(expression, str):
        return CountdownVerdict(False, False, "not a string")
    text = _plain_operators(expression).strip().rstrip(".").strip()  # a sentence's closing period
    if text.count("=") == 1:
        text = text.split("=", 1)[0].strip()
    if not text:
        return CountdownVerdict(False, False, "empty")
    try:
        value, used = evaluate_expression(text, operators)
    except ValueError as e:
        return CountdownVerdict(False, False, str(e))
    except Exception as e:  # defensive: nothing from model output may escape
        return CountdownVerdict(False, False, f"error: {type(e).__name__}")
    extra = Counter(used) - Counter(numbers)
    if extra:
        return CountdownVerdict(True, False, f"numbers not available: {sorted(extra.elements())}")
    if value is None:
        return CountdownVerdict(True, False, "division by zero")
    if value != target:
        return CountdownVerdict(True, False, f"value {value} != target {target}")
    return CountdownVerdict(True, True, "ok")
