"""Train / held-out disjointness by construction, and fixed held-out sets."""

import json
import os
import subprocess
import sys

import pytest

from rlx.config import ConfigError
from rlx.tasks import ArithmeticConfig, CountdownConfig, MathConfig, make_task
from rlx.tasks.heldout import is_heldout, problem_id

CONFIGS = [
    ArithmeticConfig(),
    ArithmeticConfig(min_operands=2, max_operands=4, min_digits=1, max_digits=2, operators="+-*/", paren_prob=0.3),
    CountdownConfig(num_numbers=3, max_value=20),
    MathConfig(),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.name)
def test_train_never_returns_heldout(cfg):
    task = make_task(cfg)
    held = {p.id for p in task.heldout(30 if cfg.name == "math" else 500, allow_fewer=True)}
    held_q = {p.question for p in task.heldout(30 if cfg.name == "math" else 500, allow_fewer=True)}
    assert held
    for seed in range(10):
        train = task.train_problems(500, seed=seed)
        assert not held & {p.id for p in train}
        assert not held_q & {p.question for p in train}
        assert not any(is_heldout(p.id, cfg.heldout_fraction) for p in train)


def test_exhaustive_split_of_small_space():
    # 2 one-digit operands with '+': 10*10 = 100 questions; every one is train or held out, never both
    cfg = ArithmeticConfig(min_digits=1, max_digits=1, operators="+")
    task = make_task(cfg)
    held = task.heldout(100, allow_fewer=True)
    train = {p.question for p in task.train_problems(5000, seed=0)}
    assert len(held) + len(train) == 100  # coupon collector: 5000 draws cover all ~90 train questions
    assert not train & {p.question for p in held}
    with pytest.raises(ConfigError, match="held-out space has only"):
        task.heldout(100)


def test_heldout_is_fixed_and_prefix_stable():
    a = make_task(ArithmeticConfig()).heldout(200)
    b = make_task(ArithmeticConfig()).heldout(50)
    assert a[:50] == b and len({p.id for p in a}) == 200
    t = make_task(ArithmeticConfig())
    assert t.heldout(20) == t.heldout(20) == a[:20]


def test_heldout_same_in_a_fresh_process_with_other_hash_seed():
    code = ("import json; from rlx.tasks import ArithmeticConfig, CountdownConfig, make_task;"
            "print(json.dumps([[p.id, p.question] for c in (ArithmeticConfig(), CountdownConfig())"
            " for p in make_task(c).heldout(30)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", "PATH": "",  # rlx from PYTHONPATH where it is not installed
                              **{k: os.environ[k] for k in ("PYTHONPATH",) if k in os.environ}}).stdout
    here = [[p.id, p.question] for c in (ArithmeticConfig(), CountdownConfig()) for p in make_task(c).heldout(30)]
    assert json.loads(out) == here


def test_golden_heldout_problems():
    # Frozen on first release: held-out sets must not drift between versions or machines.
    assert [p.question for p in make_task(ArithmeticConfig()).heldout(5)] == ["61*78", "21+98", "54+49", "76+14", "63-33"]
    assert problem_id("arithmetic", "61*78") == make_task(ArithmeticConfig()).heldout(1)[0].id


def test_bucket_share_matches_fraction():
    # ids are uniform hashes: the held-out share of 20000 distinct questions is within 4.5 sigma of 0.1
    n = 20000
    share = sum(is_heldout(problem_id("arithmetic", f"{i}+1"), 0.1) for i in range(n)) / n
    assert abs(share - 0.1) < 4.5 * (0.1 * 0.9 / n) ** 0.5


def test_heldout_ids_depend_on_question_not_config():
    harder = ArithmeticConfig(max_operands=3)
    for p in make_task(harder).heldout(300):
        assert is_heldout(p.id, 0.1) and p.id == problem_id("arithmetic", p.question)


def test_a_small_heldout_fraction_is_not_taken_for_an_exhausted_space():
    """Every draw outside the held-out bucket used to count toward the stall limit, so at fraction 0.001
    (3-digit arithmetic: ~2,400 held-out problems) the stream stopped after 36 problems."""
    task = make_task(ArithmeticConfig(min_digits=3, max_digits=3, heldout_fraction=0.001))
    problems = task.heldout(150)
    assert len({p.id for p in problems}) == 150 and all(is_heldout(p.id, 0.001) for p in problems)
