"""Generalisation splits (papers randcalc, seedbench): levels differ as promised, all held out."""

import re

import pytest

from rlx.config import ConfigError
from rlx.tasks import ArithmeticConfig, make_task
from rlx.tasks.heldout import is_heldout
from rlx.tasks.splits import difficulty_levels, evaluation_sets, generalization_split, unseen_composition

NUM = re.compile(r"\d+")


def test_three_levels_for_default_training_config():
    cfg = ArithmeticConfig()
    sets = generalization_split(cfg, 100)
    assert list(sets) == ["in_distribution", "harder", "new_composition"]
    assert sets["in_distribution"] == make_task(cfg).heldout(100)
    for p in sets["harder"]:  # 3 operands of 3 digits: longer than anything in training
        assert [len(x) for x in NUM.findall(p.question)] == [3, 3, 3]
    for p in sets["new_composition"]:  # '/' never appears in training with operators '+-*'
        assert "/" in p.question and len(NUM.findall(p.question)) == 2
        assert p.answer != p.question  # an already reduced a/b would be answered by copying
    train_ids = {p.id for s in range(5) for p in make_task(cfg).train_problems(1000, seed=s)}
    for name, probs in sets.items():
        assert len(probs) == 100 and len({p.id for p in probs}) == 100, name
        assert all(is_heldout(p.id, cfg.heldout_fraction) for p in probs), name
        assert not train_ids & {p.id for p in probs}, name


def test_new_composition_fallbacks():
    cfg, keep, why = unseen_composition(ArithmeticConfig(operators="+-*/"))
    assert cfg.paren_prob == 1.0 and "parentheses" in why
    cfg, keep, why = unseen_composition(ArithmeticConfig(operators="+-*/", paren_prob=0.3))
    assert cfg.spaced and "spaced" in why
    with pytest.raises(ConfigError, match="new-composition"):
        unseen_composition(ArithmeticConfig(operators="+-*/", paren_prob=0.3, spaced=True))
    sets = generalization_split(ArithmeticConfig(operators="+-*/"), 30)
    assert all("(" in p.question for p in sets["new_composition"])


def test_difficulty_levels_and_evaluation_sets():
    levels = difficulty_levels(ArithmeticConfig(), 50, operands=(2, 3), digits=(1, 3))
    assert list(levels) == ["ops2_dig1", "ops2_dig3", "ops3_dig1", "ops3_dig3"]
    # 2 one-digit operands: 10*10*3 = 300 questions, ~10% held out -> fewer than 50, all of them kept
    assert 10 < len(levels["ops2_dig1"]) < 50
    for name, probs in levels.items():
        k, d = int(name[3]), int(name[-1])
        assert all([len(x) for x in NUM.findall(p.question)] == [d] * k for p in probs), name
    sets = evaluation_sets(ArithmeticConfig(), 20, levels=True)
    assert {"in_distribution", "harder", "new_composition", "ops4_dig3"} <= set(sets)
