"""math_verify wrapper: equivalences, and never raising (also off the main thread)."""

import threading

import pytest

from rlx.rewards import math_equal


@pytest.mark.parametrize("pred,gold", [
    ("0.5", "\\frac{1}{2}"), ("12.0", "12"), ("1+x^2", "x^2+1"), ("2^{1/2}", "\\sqrt{2}"), ("10/12", "\\frac{5}{6}"),
    ("\\boxed{3}", "3"), ("$-7/2$", "-3.5"),
    # GSM8K money and thousands, as a boxed answer holds them (math-verify alone parses `\\$18` to nothing and
    # `1\\,000` to 1*0)
    ("\\$18", "18"), ("18", "\\$18"), ("1\\,000", "1000"), ("\\$1\\,250\\,000", "1250000"),
])
def test_equivalent(pred, gold):
    assert math_equal(pred, gold)


@pytest.mark.parametrize("pred,gold", [("13", "12"), ("x^2", "x^2+1"), ("\\frac{5}{7}", "\\frac{5}{6}"),
                                       ("\\$19", "18"), ("1\\,0", "10"), ("1\\,0000", "10000")])
def test_not_equivalent(pred, gold):
    assert not math_equal(pred, gold)


ADVERSARIAL = ["", " ", "}}}{{{", "\\frac{", "\\boxed{", "$", "$$$$", "1e999", "1/0", "9**9**9", "9^{9^{9^{9}}}",
               "nan", "NaN", "\\infty", "٤٦", "x" * 5000, "1" * 3000, "\x00", "\\begin{matrix}", None, 46]


@pytest.mark.parametrize("bad", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_never_raises(bad):
    assert math_equal(bad, "46") in (True, False)
    assert math_equal("46", bad) in (True, False)


def test_off_main_thread():
    out = []
    t = threading.Thread(target=lambda: out.append((math_equal("0.5", "\\frac{1}{2}"), math_equal("}{", "1"))))
    t.start()
    t.join(60)
    assert out == [(True, False)]


def test_grouping_cannot_hide_an_explosive_answer():
    """Found in review: braces around a nested power, a power inside \\frac, and Gamma of a huge number
    passed the screen and hung sympy off the main thread (no alarm there)."""
    from rlx.rewards.mathverify import too_costly

    for bad in (r"{10}^{{10}^{10}}", r"10^{\frac{10^{10}}{1}}", r"\Gamma(10^{9})"):
        assert too_costly(bad), bad
    for fine in ("x^2 + y^2", r"2^{3} \cdot 3^{2}", r"2^{\frac{1}{2}}", r"e^{i\pi}", "10^{-3}", r"\sqrt{2}^{3}"):
        assert not too_costly(fine), fine


def test_huge_binomials_are_refused_before_sympy():
    """\\binom{999999}{499999} passed the cost screen and took 66 s in a reward thread (no timeout there)."""
    from rlx.rewards.mathverify import too_costly

    assert too_costly("\\binom{999999}{499999}") and too_costly("{99999 \\choose 3}")
    assert not too_costly("\\binom{5}{2}") and math_equal("\\binom{5}{2}", "10")


def test_the_cost_screen_lets_symbolic_towers_and_factorials_through():
    """The screen refused any power inside a braced exponent and any group factorial, so golds like
    e^{-x^2}, x^{n^2} or (n+1)! could never score correct, even against themselves. Numeric towers and
    numeric group factorials are still refused; an answer equal to the gold as written always matches."""
    from rlx.rewards.mathverify import too_costly

    for bad in ("9^{9^{9}}", "(10^{100})!", "(999*999)!", r"(99999\cdot 99)!", "2^{10000}", "10000!"):
        assert too_costly(bad), bad
    for fine in ("e^{-x^2}", "x^{n^2}", r"e^{\frac{x^2}{2}}", "(n+1)!", r"\frac{(n+1)!}{2}"):
        assert not too_costly(fine), fine
    assert math_equal("e^{-x^2}", "e^{-x^{2}}") and math_equal("(n+1)!", "(1+n)!")
    assert not math_equal("e^{-x^2}", "e^{-x^3}")
    assert math_equal("10^{1000}", "10^{ 1000 }") and not math_equal("10^{1000}", "10^{1001}")
