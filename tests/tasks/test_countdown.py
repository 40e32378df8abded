"""Countdown generator: every problem solvable, knobs respected, many valid answers accepted."""

from collections import Counter

from rlx.rewards import check_countdown
from rlx.tasks import CountdownConfig, make_task
from rlx.types import Problem


def test_generated_problems_are_solvable_and_respect_knobs():
    cfg = CountdownConfig(num_numbers=5, min_value=2, max_value=30, max_target=500)
    task = make_task(cfg)
    for p in task.train_problems(500, seed=0):
        nums, target = p.meta["numbers"], p.meta["target"]
        assert len(nums) == 5 and all(2 <= x <= 30 for x in nums)
        assert 1 <= target <= 500 and target not in nums and p.answer == str(target)
        assert check_countdown(p.meta["solution"], nums, target).correct, p.meta
        assert task.score(task.reference_completion(p), p).correct


def test_use_all_solutions_use_every_number():
    task = make_task(CountdownConfig(num_numbers=4, use_all=True, operators="+-*"))
    for p in task.train_problems(200, seed=1):
        literals = [int(t) for t in p.meta["solution"].replace("(", " ").replace(")", " ").replace("+", " ")
                    .replace("-", " ").replace("*", " ").split()]
        assert Counter(literals) == Counter(p.meta["numbers"])
        assert "/" not in p.meta["solution"]


def test_determinism():
    a = make_task(CountdownConfig()).train_problems(30, seed=9)
    b = make_task(CountdownConfig()).train_problems(30, seed=9)
    assert [(p.question, p.meta["solution"]) for p in a] == [(p.question, p.meta["solution"]) for p in b]


def test_many_valid_answers_scored_by_the_task():
    p = Problem(id="x" * 16, question="3 7 25 50 -> 75", answer="75", meta={"numbers": [3, 7, 25, 50], "target": 75})
    task = make_task(CountdownConfig())
    # 50+25 = 75; 3*25 = 75; (7-3)*25-25 would reuse 25; 50+25+3-3 reuses 3
    assert task.score("50+25", p).correct and task.score("3*25", p).correct
    assert task.score("25*3 = 75", p).correct
    bad = task.score("(7-3)*25-25", p)
    assert bad.parsed and not bad.correct
    assert not task.score("50+25+3-3", p).correct
    assert not task.score("75", p).correct  # 75 is not a given number
