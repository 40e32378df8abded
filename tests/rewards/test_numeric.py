"""Numeric exact match on hand-written and adversarial strings."""

from fractions import Fraction

import pytest

from rlx.rewards import numeric_equal, parse_number


@pytest.mark.parametrize("text,value", [
    ("46", 46), (" 46 ", 46), ("46.0", 46), ("+46", 46), ("-7/2", Fraction(-7, 2)), ("-3.5", Fraction(-7, 2)),
    ("14/4", Fraction(7, 2)), ("7 / 2", Fraction(7, 2)), (".5", Fraction(1, 2)), ("5.", 5), ("1.5e2", 150),
    ("2E-1", Fraction(1, 5)), ("007", 7), ("0.1", Fraction(1, 10)),
])
def test_parses_exactly(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", [
    "", " ", "abc", "1e999", "1e101", "nan", "NaN", "inf", "-inf", "1/0", "0/0", "1,000", "1_000", "4 6", "--4",
    "٤٦", "４６", "²", "46!", "0x2E", "9**9**9", "1" * 1001, None, 46, ["46"], "46\x00",
])
def test_rejects_without_raising(text):
    assert parse_number(text) is None


def test_equality():
    assert numeric_equal("46", "46.0") and numeric_equal(" 46 ", "46") and numeric_equal("-7/2", "-3.5")
    assert numeric_equal("0.1", "1/10")  # exact rationals: no float rounding (0.1 != 1/10 in binary)
    assert not numeric_equal("46", "46.0000001")
    assert not numeric_equal("1e999", "1e999")  # unparsed on both sides is never a match
    assert numeric_equal("1" * 1000, "1" * 1000) and not numeric_equal("1" * 1000, "1" * 999)
    assert not numeric_equal("", "")
