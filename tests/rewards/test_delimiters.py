"""Answer extraction and format checks for plain / boxed / tags, including malformed nesting."""

import pytest

from rlx.rewards import extract, extract_boxed, extract_plain, extract_tags, format_ok, wrap


def test_plain():
    assert extract_plain("46") == "46"
    assert extract_plain("  46  \n junk") == "46"
    assert extract_plain("\n\n46\n") == "46"
    assert extract_plain("") is None and extract_plain(" \n ") is None


def test_boxed():
    assert extract_boxed("so \\boxed{46}.") == "46"
    assert extract_boxed("\\boxed{1} no, \\boxed{2}") == "2"  # the last one
    assert extract_boxed("\\boxed{\\frac{7}{2}}") == "\\frac{7}{2}"  # nested braces
    assert extract_boxed("\\boxed{3} then \\boxed{4") == "3"  # unterminated last one skipped
    assert extract_boxed("\\boxed{\\boxed{5}}") == "\\boxed{5}"
    assert extract_boxed("\\boxed{}") is None and extract_boxed("\\boxed{") is None
    assert extract_boxed("}}}{{{\\boxed") is None


def test_tags():
    assert extract_tags("<answer>46</answer>") == "46"
    assert extract_tags("<answer>1</answer> <answer> 2 </answer>") == "2"
    assert extract_tags("<answer><answer>3</answer></answer>") == "3"
    assert extract_tags("<answer>4") is None and extract_tags("4</answer>") is None
    assert extract_tags("</answer>5<answer>") is None
    assert extract_tags("<answer> </answer>") is None
    assert extract_tags("<answer>6</answer> and <answer>unclosed") == "6"


@pytest.mark.parametrize("text,fmt,ok", [
    ("<answer>4</answer>", "tags", True),
    ("think <answer>4</answer> done", "tags", True),
    ("<answer>1</answer><answer>2</answer>", "tags", False),  # two answers: not well-formed
    ("<answer><answer>3</answer></answer>", "tags", False),  # nested
    ("</answer>5<answer>", "tags", False),
    ("<answer>4", "tags", False),
    ("<answer></answer>", "tags", False),
    ("\\boxed{4}", "boxed", True),
    ("\\boxed{4", "boxed", False),
    ("4", "boxed", False),
    ("4", "plain", True),
    ("", "plain", False),
])
def test_format_ok(text, fmt, ok):
    assert format_ok(text, fmt) is ok


@pytest.mark.parametrize("fmt", ["plain", "boxed", "tags"])
def test_wrap_inverts_extract(fmt):
    for ans in ("46", "-7/2", "\\frac{1}{2}", "x^2 + 1"):
        assert extract(wrap(ans, fmt), fmt) == ans and format_ok(wrap(ans, fmt), fmt)
