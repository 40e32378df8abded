"""Math-answer equivalence through the `math_verify` package, wrapped so it never raises.

`math_verify` guards its sympy work with `signal.alarm`, which only works in the main thread. We
pass its timeouts there; in other threads we disable them (math_verify would refuse otherwise) and
rely on the input size cap and a screen for explosive inputs (`too_costly`) instead. Every exception, math_verify's own `TimeoutException` (a
BaseException) included, scores False.
"""

from __future__ import annotations

import logging
import re
import threading

__all__ = ["math_equal", "too_costly", "MAX_CHARS"]

MAX_CHARS = 2000  # longer answers are not compared (sympy cost grows quickly with size)

# Inputs that make sympy compute astronomically large numbers: nested powers (9^{9^{9}}), huge
# exponents (2^{10000}), factorials of big or compound arguments ((10^{100})!). Such work can sit
# in C code where no timeout can interrupt it, so these are refused before sympy sees them.
_COSTLY = [
    re.compile(r"(\^|\*\*)\s*\{[^{}]*\d\s*(\^|\*\*)"),  # a power of a number inside a braced exponent
    re.compile(r"(\^|\*\*)\s*\(?\s*\d*\s*(\^|\*\*)"),  # x^2^3, 9**9**9
    re.compile(r"(\^|\*\*)\s*[{(]?\s*-?\d{4,}"),  # exponent with 4+ digits
    re.compile(r"\d{4,}\s*!|(\^|\*\*)\s*-?\d+\s*!"),  # factorial of a 4+ digit number or of a power
    re.compile(r"\d[eE][+-]?\d{3,}"),  # 1e999
    re.compile(r"\\(?:d|t)?binom\s*\{?\s*\d{4,}|\d{4,}\s*\}?\s*\\choose"),  # \binom{999999}{499999}: 66 s in sympy
]
# a factorial of a group without a letter: (999*999)! has 5 million digits; (n+1)! stays symbolic
_GROUP_FACTORIAL = re.compile(r"\(([^()]*)\)\s*!|\{([^{}]*)\}\s*!")
_COMMAND_POWER = re.compile(r"(\^|\*\*)\s*\\[a-zA-Z]+\s*-?\d+\s*(\^|\*\*)")
_GAMMA = re.compile(r"\\Gamma|\\operatorname\s*\{\s*Gamma")  # Gamma(10^9) is a factorial in disguise


def too_costly(s: str) -> bool:
    """True for answers whose evaluation could blow up (see _COSTLY); they never match.

    The patterns are also tried with every brace and parenthesis removed, so grouping cannot hide a
    nested power ({10}^{{10}^{10}} reads as 10^10^10), and a power whose exponent starts with a LaTeX
    command holding another power (10^{\\frac{10^{10}}{1}} -> 10^\\frac10^101) is refused too.
    """
    flat = re.sub(r"[{}()]", "", s)
    numeric_group_factorial = any(  # a variable, not a command name like \cdot, keeps it symbolic
        not re.search(r"[a-zA-Z]", re.sub(r"\\[a-zA-Z]+", "", m.group(1) or m.group(2) or ""))
        for m in _GROUP_FACTORIAL.finditer(s))
    return (bool(_GAMMA.search(s) or _COMMAND_POWER.search(flat)) or numeric_group_factorial
            or any(p.search(s) or p.search(flat) for p in _COSTLY))

logging.getLogger("math_verify").setLevel(logging.ERROR)


def _wrap(s: str) -> str:
    """An answer as math-verify reads it: escaped dollar signs (`\\$18`, GSM8K money) and thin-space thousands
    separators (`1\\,000`) dropped, then wrapped in `$...$` unless it is already math or boxed."""
    s = re.sub(r"(?<=\d)\\,(?=\d{3}(?!\d))", "", s.replace("\\$", ""))
    return s if "$" in s or "\\boxed" in s else f"${s}$"


def math_equal(pred: object, gold: object, timeout_s: int = 5) -> bool:
    """True when `pred` and `gold` are mathematically equivalent answers (e.g. "0.5" vs "\\frac{1}{2}")."""
    if not isinstance(pred, str) or not isinstance(gold, str):
        return False
    pred, gold = pred.strip(), gold.strip()
    if not pred or not gold or len(pred) > MAX_CHARS or len(gold) > MAX_CHARS:
        return False
    if re.sub(r"\s+", "", pred) == re.sub(r"\s+", "", gold):  # the same answer, whatever the cost screen says
        return True
    if too_costly(pred) or too_costly(gold):
        return False
    try:
        from math_verify import parse, verify
        from math_verify.errors import TimeoutException
    except Exception:  # pragma: no cover - math-verify is a hard dependency
        return False
    main = threading.current_thread() is threading.main_thread()
    t = timeout_s if main else None
    try:
        g = parse(_wrap(gold), parsing_timeout=t)
        p = parse(_wrap(pred), parsing_timeout=t)
        if not g or not p:
            return False
        return bool(verify(g, p, timeout_seconds=t))
    except (Exception, TimeoutException):
        return False
