"""Numeric exact match: integers, decimals and fractions compared as exact rationals.

"46" == "46.0" == " 46 " == "+46"; "-7/2" == "-3.5". Parsing is strict and total: anything that
is not a plain ASCII number (unicode digits, "1e999", "nan", "inf", "1,000", digit strings longer
than MAX_CHARS, "1/0") parses to None and never raises.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["parse_number", "numeric_equal", "MAX_CHARS", "MAX_EXPONENT"]

MAX_CHARS = 1000  # longer answers are not parsed (bounds the cost of int conversion)
MAX_EXPONENT = 100  # "1e101" is not parsed: no answer of ours is that large, and 1e999 is a trap

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE]([+-]?\d{1,6}))?", re.ASCII)
_FRACTION = re.compile(r"([+-]?\d+)\s*/\s*([+-]?\d+)", re.ASCII)


def parse_number(text: object) -> Fraction | None:
    """The exact value of a numeric answer string, or None when it is not one."""
    if not isinstance(text, str):
        return None
    s = text.strip()
    if not s or len(s) > MAX_CHARS:
        return None
    try:
        m = _FRACTION.fullmatch(s)
        if m is not None:
            den = int(m.group(2))
            return None if den == 0 else Fraction(int(m.group(1)), den)
        m = _DECIMAL.fullmatch(s)
        if m is None:
            return None
        if m.group(1) is not None and abs(int(m.group(1))) > MAX_EXPONENT:
            return None
        return Fraction(s)
    except (ValueError, ZeroDivisionError, OverflowError):  # defensive; the regexes exclude these
        return None


def numeric_equal(pred: object, gold: object) -> bool:
    """True when both parse as numbers and are exactly equal."""
    a, b = parse_number(pred), parse_number(gold)
    return a is not None and b is not None and a == b
