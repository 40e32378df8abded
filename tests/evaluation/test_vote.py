"""Majority and weighted voting over sampled answers."""

import pytest

from rlx.evaluation.vote import weighted_vote


def test_majority_vote_hand_values():
    assert weighted_vote(["12", "13", "12", None]) == 0  # "12" twice
    assert weighted_vote(["13", "12", "12", "13"]) == 0  # tie 2-2: the answer seen first
    assert weighted_vote([None, None]) is None
    assert weighted_vote([None, "7"]) == 1


def test_weighted_vote_hand_values():
    # "12": 0.2 + 0.3 = 0.5, "13": 0.9 -> the single confident sample outvotes the pair
    assert weighted_vote(["12", "13", "12", None], [0.2, 0.9, 0.3, 1.0]) == 1
    assert weighted_vote(["12", "13", "12"], [0.5, 0.9, 0.5]) == 0  # 1.0 > 0.9
    with pytest.raises(ValueError, match="2 weights for 3 answers"):
        weighted_vote(["1", "2", "3"], [1.0, 1.0])


def test_a_tie_in_exact_arithmetic_goes_to_the_answer_seen_first():
    """0.1 + 0.2 = 0.30000000000000004 in floats: "b" beat "a" (0.3) by rounding, not by weight."""
    assert weighted_vote(["a", "b", "b"], [0.3, 0.1, 0.2]) == 0
    assert weighted_vote(["b", "a", "b"], [0.1, 0.3, 0.2]) == 0  # "b" is seen first
    assert weighted_vote(["a", "b", "b"], [0.3, 0.1, 0.2000001]) == 1  # a real margin still wins
