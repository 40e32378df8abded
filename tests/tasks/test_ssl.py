"""SSL pretext tasks (paper ssl4rl): unique masked digits, reversal labels, verification, held-out split."""

import pytest

from rlx.tasks import SSLConfig, make_task
from rlx.tasks.ssl import unique_digit_positions


def test_unique_digit_positions_by_hand():
    # 12+34=46: every digit is forced by the others
    assert unique_digit_positions("12+34=46") == [0, 1, 3, 4, 6, 7]
    # 10*0=0: the multiplier 0 makes the first factor's digits free (any value times 0 is 0; "00" is
    # not a number the generator writes); the multiplier and the result are forced
    assert unique_digit_positions("10*0=0") == [3, 5]
    # 5+5=10: '1' of 10 is forced, and so is '0'; the 5s are forced too
    assert unique_digit_positions("5+5=10") == [0, 2, 4, 5]


def test_masked_digit_problems_have_one_answer_that_verifies():
    task = make_task(SSLConfig())
    for p in task.train_problems(50, seed=3):
        assert p.question.count("?") == 1
        filled = p.question.replace("?", p.answer)
        assert filled == p.meta["equation"]
        assert task.score(p.answer, p).correct
        wrong = str((int(p.answer) + 1) % 10)
        assert not task.score(wrong, p).correct
    assert task.prompt(task.train_problems(1, seed=0)[0]).endswith(">")


def test_reversed_labels_and_balance():
    task = make_task(SSLConfig(pretext="reversed"))
    probs = task.train_problems(400, seed=1)
    for p in probs:
        eq = p.meta["equation"]
        assert p.question == (eq[::-1] if p.answer == "1" else eq)
    share = sum(p.answer == "1" for p in probs) / len(probs)
    assert 0.4 < share < 0.6


def test_heldout_is_disjoint_from_training():
    task = make_task(SSLConfig())
    held = {p.question for p in task.heldout(100)}
    assert len(held) == 100
    assert not held & {p.question for p in task.train_problems(500, seed=0)}


def test_bad_pretext_is_rejected():
    with pytest.raises(Exception, match="pretext"):
        SSLConfig(pretext="jigsaw")


def test_pretexts_never_use_an_equation_the_arithmetic_task_holds_out():
    # without the filter about 10% of the equations would be ones `rlx eval --task arithmetic` scores
    from rlx.tasks import ArithmeticConfig, ArithmeticTask

    held = {p.question for p in ArithmeticTask(ArithmeticConfig()).heldout(2430)}  # the whole held-out space
    for pretext in ("masked_digit", "reversed"):
        task = make_task(SSLConfig(pretext=pretext))
        problems = task.train_problems(600, seed=3) + task.heldout(200)
        lhs = {p.meta["equation"].split("=")[0] for p in problems}
        assert len(lhs) > 300 and not lhs & held


def test_no_held_out_equation_is_trained_on_under_another_mask_or_orientation():
    """The split follows the equation, not the pretext question (22 of 3000 masked-digit training draws and
    13 reversed ones used a held-out equation before)."""
    from rlx.tasks import make_task
    from rlx.tasks.config import SSLConfig

    for pretext in ("masked_digit", "reversed"):
        task = make_task(SSLConfig(pretext=pretext))
        held = {p.meta["equation"] for p in task.heldout(100)}
        train = {p.meta["equation"] for p in task.train_problems(3000, seed=0)}
        assert held and not held & train
