"""Arithmetic generator: determinism, difficulty knobs, exact answers checked against fractions."""

import random
import re
from fractions import Fraction

import pytest

from rlx.tasks import ArithmeticConfig, make_task
from rlx.tasks.arithmetic import evaluate_tokens, generate_tokens

NUM = re.compile(r"\d+")


def fraction_eval(question: str) -> Fraction:
    """Independent reference: Python evaluates the question with every literal as a Fraction."""
    return eval(NUM.sub(lambda m: f"Fraction({m.group()})", question), {"Fraction": Fraction})  # test-only input


def test_same_seed_same_problems_different_seed_different():
    t = make_task(ArithmeticConfig())
    a, b = t.train_problems(50, seed=3), make_task(ArithmeticConfig()).train_problems(50, seed=3)
    assert [p.question for p in a] == [p.question for p in b]
    c = t.train_problems(50, seed=4)
    assert [p.question for p in a] != [p.question for p in c]


def test_default_difficulty_is_two_two_digit_operands_plus_minus_times_integers():
    for p in make_task(ArithmeticConfig()).train_problems(500, seed=0):
        nums = NUM.findall(p.question)
        ops = re.findall(r"[-+*/]", p.question)
        assert len(nums) == 2 and all(10 <= int(x) <= 99 for x in nums), p.question
        assert len(ops) == 1 and ops[0] in "+-*"
        assert Fraction(p.answer).denominator == 1 and "(" not in p.question


@pytest.mark.parametrize("lo,hi,dlo,dhi,ops", [(3, 5, 1, 3, "+-"), (1, 1, 4, 4, "*"), (4, 6, 2, 2, "*/")])
def test_knobs_are_respected(lo, hi, dlo, dhi, ops):
    cfg = ArithmeticConfig(min_operands=lo, max_operands=hi, min_digits=dlo, max_digits=dhi,
                           operators=ops, integer_answers=False)
    counts, digit_counts, used = set(), set(), set()
    for p in make_task(cfg).train_problems(400, seed=1):
        nums = NUM.findall(p.question)
        counts.add(len(nums))
        digit_counts |= {len(x) for x in nums}
        used |= set(re.findall(r"[-+*/]", p.question))
        assert all(len(x) == 1 or x[0] != "0" for x in nums), "no leading zeros"
    assert counts == set(range(lo, hi + 1))  # every operand count in range occurs, nothing else
    assert digit_counts == set(range(dlo, dhi + 1))
    assert used == (set(ops) if hi > 1 else set())


def test_answers_are_exact_against_python_fractions():
    cfg = ArithmeticConfig(min_operands=2, max_operands=6, min_digits=1, max_digits=3, operators="+-*/",
                           paren_prob=0.4, integer_answers=False)
    probs = make_task(cfg).train_problems(1000, seed=7)
    assert any("(" in p.question for p in probs) and any("/" in p.answer for p in probs)
    for p in probs:
        want = fraction_eval(p.question)
        assert Fraction(p.answer) == want, p.question
        assert p.answer == (str(want.numerator) if want.denominator == 1 else f"{want.numerator}/{want.denominator}")


def test_hand_computed_values():
    # 12+7*3 = 12+21 = 33; (12+7)*3 = 57; 7/2-1 = 5/2; 1-2-3 = -4 (left-assoc); 8/4/2 = 1; 5/0 -> None
    assert evaluate_tokens(["12", "+", "7", "*", "3"]) == 33
    assert evaluate_tokens(["(", "12", "+", "7", ")", "*", "3"]) == 57
    assert evaluate_tokens(["7", "/", "2", "-", "1"]) == Fraction(5, 2)
    assert evaluate_tokens(["1", "-", "2", "-", "3"]) == -4
    assert evaluate_tokens(["8", "/", "4", "/", "2"]) == 1
    assert evaluate_tokens(["5", "/", "0"]) is None


def test_integer_answers_with_division():
    cfg = ArithmeticConfig(min_operands=2, max_operands=3, min_digits=1, max_digits=2, operators="+-*/")
    probs = make_task(cfg).train_problems(300, seed=2)
    assert any("/" in p.question for p in probs)
    assert all(fraction_eval(p.question).denominator == 1 and "/" not in p.answer for p in probs)


def test_parentheses_probability():
    def paren_share(prob):
        cfg = ArithmeticConfig(min_operands=3, max_operands=3, paren_prob=prob)
        return sum("(" in p.question for p in make_task(cfg).train_problems(2000, seed=0)) / 2000

    assert paren_share(0.0) == 0.0
    # p=1: the first operand always opens a group of 2 (a group never spans all 3) -> always parens
    assert paren_share(1.0) == 1.0
    assert 0.3 < paren_share(0.5) < 0.9


def test_groups_never_wrap_whole_expression():
    cfg = ArithmeticConfig(min_operands=2, max_operands=5, paren_prob=1.0)
    rng = random.Random(0)
    for _ in range(300):
        toks = generate_tokens(rng, rng.randint(2, 5), cfg)
        assert not (toks[0] == "(" and evaluate_tokens(toks) is not None and _matching(toks, 0) == len(toks) - 1)


def _matching(toks, i):
    depth = 0
    for j in range(i, len(toks)):
        depth += (toks[j] == "(") - (toks[j] == ")")
        if depth == 0:
            return j
    return -1


def test_must_use_and_spaced():
    cfg = ArithmeticConfig(operators="+-*/", must_use="/", integer_answers=False, spaced=True)
    for p in make_task(cfg).train_problems(200, seed=0):
        assert " / " in p.question and fraction_eval(p.question) == Fraction(p.answer)


def test_spacing_does_not_change_the_id():
    a = make_task(ArithmeticConfig()).train_problems(20, seed=5)
    b = make_task(ArithmeticConfig(spaced=True)).train_problems(20, seed=5)
    assert [p.id for p in a] == [p.id for p in b]
    assert [p.question.replace(" ", "") for p in b] == [p.question for p in a]


def test_fixed_training_pool_for_one_shot_rlvr():
    from rlx.tasks import ArithmeticConfig, make_task

    one = make_task(ArithmeticConfig(train_pool=1, pool_seed=3))
    a, b = one.train_problems(5, seed=0), one.train_problems(7, seed=9)
    assert len({p.id for p in a + b}) == 1  # one problem, every step
    held = {p.id for p in one.heldout(200)}
    assert a[0].id not in held
    four = make_task(ArithmeticConfig(train_pool=4, pool_seed=3))
    ids = {p.id for s in range(20) for p in four.train_problems(8, seed=s)}
    assert len(ids) == 4 and not ids & held
    # the pool depends on pool_seed, not on the step seed
    assert make_task(ArithmeticConfig(train_pool=1, pool_seed=4)).train_problems(1, 0)[0].id != a[0].id
