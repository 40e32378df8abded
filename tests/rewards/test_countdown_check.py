"""The countdown checker: safe parsing (no eval), numbers used at most once, exact value."""

import pytest

from rlx.rewards import check_countdown, evaluate_expression

NUMS, TARGET = [3, 7, 25, 50], 75


# 50+25 = 75; 25*3 = 75; (50-25)*3 = 25*3 = 75
@pytest.mark.parametrize("expr", ["50+25", "25*3", "(50+25)", "50 + 25 = 75", "(50-25)*3", "3*(50-25)", " 25 * 3 "])
def test_valid(expr):
    v = check_countdown(expr, NUMS, TARGET)
    assert v.parsed and v.correct, v.reason


def test_division_exact():
    # 50/(7-3) = 12.5; 12.5*6 = 75 needs a 6 that is not given; (3+7)/2 = 5 with [3,7,2,15]: 5*15 = 75
    assert check_countdown("(3+7)/2*15", [3, 7, 2, 15], 75).correct
    assert not check_countdown("50/(7-3)", NUMS, TARGET).correct


@pytest.mark.parametrize("expr,parsed,reason", [
    ("50+25+3-3", True, "not available"),  # 3 used twice
    ("75", True, "not available"),
    ("50+24", True, "not available"),
    ("50+7+3", True, "value 60"),
    ("50/(7-3-3)", True, "not available"),
    ("1/0", True, "not available"),  # 1 and 0 are not given; never raises
    ("50+25+(7-7)", True, "not available"),
    ("-3+78", False, "disallowed syntax"),  # unary minus
    ("50**1+25", False, "not allowed"),  # '**' passes the charset but is not an allowed operator
    ("9**9**9", False, "not allowed"),
    ("1e999", False, "not an arithmetic"),
    ("0x4B", False, "not an arithmetic"),
    ("__import__('os')", False, "not an arithmetic"),
    ("50 25", False, "cannot parse"),
    ("03+72", False, "cannot parse"),
    ("(" * 140 + "50" + ")" * 140, True, "value 50"),  # deep but under the length cap
    ("(" * 200 + "50" + ")" * 200, False, "not an arithmetic"),  # over the 300-character cap
    ("", False, "empty"),
    ("٥٠+٢٥", False, "not an arithmetic"),
    ("1" * 400, False, "not an arithmetic"),
    ("50+25=75=75", False, "not an arithmetic"),
])
def test_invalid(expr, parsed, reason):
    v = check_countdown(expr, NUMS, TARGET)
    assert not v.correct and v.parsed is parsed and reason in v.reason, v


def test_division_by_zero_is_wrong_not_an_error():
    # 9/(5-5): both 5s are given, so only the value is at fault
    v = check_countdown("9/(5-5)", [5, 5, 9, 3], 3)
    assert v.parsed and not v.correct and v.reason == "division by zero"


def test_operator_set_and_non_strings():
    assert not check_countdown("25*3", NUMS, TARGET, operators="+-").correct
    assert check_countdown("50+25", NUMS, TARGET, operators="+-").correct
    assert not check_countdown(None, NUMS, TARGET).parsed
    assert not check_countdown(75, NUMS, TARGET).parsed


def test_evaluate_expression_raises_value_error_only():
    assert evaluate_expression("2*(3+4)") == (14, [2, 3, 4])
    assert evaluate_expression("5/0")[0] is None
    with pytest.raises(ValueError):
        evaluate_expression("2**3")


def test_latex_and_unicode_operators_and_a_closing_period():
    """`\\boxed{3 \\times 5 + 4}`, `×`, `÷` and a sentence's final period used to be unparsed (reward 0)."""
    from rlx.rewards.countdown import check_countdown

    for expr in ("3 \\times 5 + 4", "3 \\cdot 5 + 4", "3×5+4", "(3 × 5) + 4.", "\\left(3 \\cdot 5\\right) + 4"):
        assert check_countdown(expr, [3, 5, 4], 19).correct, expr
    assert check_countdown("20 \\div 5 − 4", [20, 5, 4], 0).correct
    assert not check_countdown("3 \\times 5 - 4", [3, 5, 4], 19).correct
