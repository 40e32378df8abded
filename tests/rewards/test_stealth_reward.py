"""Semantic preservation and the composite evasion reward (paper stealthrl), by hand."""

import pytest

from rlx.rewards.stealth import (bottleneck_evasion, ensemble_evasion, gated_reward, log_evasion, preserves, relation,
                                weighted_reward)


def test_relation_of_every_form():
    key = (12, 34, 46)
    for text in ["12+34=46", "34+12=46", "46=12+34", "46=34+12", "46-12=34", "46-34=12", "34=46-12", "12=46-34",
                 "12 +34=46", "46 = 34 + 12", "46- 12 =34"]:
        assert relation(text) == key, text


def test_relation_rejects_false_or_malformed_text():
    for text in ["12+34=47", "46-12=35", "12  +34=46", " 12+34=46", "12+34=46 ", "012+34=46", "12+34+46",
                 "12=34=46", "12*34=408", "", "12+34", "twelve", None]:
        assert relation(text) is None, text


def test_preserves_needs_the_same_numbers():
    assert preserves("46 - 34 = 12", "12+34=46")
    assert not preserves("13+33=46", "12+34=46")  # true, same sum, different relation
    assert not preserves("12+34=47", "12+34=46")


def test_rewards_by_hand():
    assert ensemble_evasion([0.2, 0.6]) == pytest.approx(0.4, abs=1e-12)
    assert bottleneck_evasion([0.2, 0.6]) == 0.2
    assert gated_reward(True, 0.3) == 0.3 and gated_reward(False, 0.9) == 0.0
    # w = 0.3: preserved, E = 0.5 -> 0.3 + 0.7 * 0.5 = 0.65; not preserved -> 0 whatever E
    assert gated_reward(True, 0.5, 0.3) == pytest.approx(0.65, abs=1e-12) and gated_reward(False, 1.0, 0.3) == 0.0
    # w = 0.5: not preserved, E = 0.9 -> 0.45; preserved, E = 0.2 -> 0.5 + 0.1 = 0.6
    assert weighted_reward(False, 0.9, 0.5) == pytest.approx(0.45, abs=1e-12)
    assert weighted_reward(True, 0.2, 0.5) == pytest.approx(0.6, abs=1e-12)
    for f in (ensemble_evasion, bottleneck_evasion):
        with pytest.raises(ValueError):
            f([])


def test_log_evasion_by_hand():
    # alpha = 0.01: s = 0.05 -> ln 5 / ln 50 = 1.609438 / 3.912023 = 0.411409; s <= alpha -> 0; s >= 0.5 -> 1
    assert log_evasion(0.05, 0.01) == pytest.approx(0.411409, abs=1e-6)
    assert log_evasion(0.01, 0.01) == 0.0 and log_evasion(0.004, 0.01) == 0.0
    assert log_evasion(0.5, 0.01) == pytest.approx(1.0, abs=1e-12) and log_evasion(0.9, 0.01) == 1.0
    with pytest.raises(ValueError):
        log_evasion(0.5, 0.0)
