"""Self-consistency rewards (paper spark): majority pseudo-labels, format constraint, weak majorities."""

import pytest
import torch

from rlx.rewards.consistency import self_consistency_rewards


def test_majority_answer_scores_and_unparsed_never_do():
    answers = ["4", "4", "5", None,   # majority 4 (share 0.5)
               None, None, None, "7",  # only "7" parsed -> it is the majority (share 0.25)
               None, None, None, None]  # nothing parsed -> all 0
    r, share = self_consistency_rewards(answers, 4)
    assert r.tolist() == [1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]
    torch.testing.assert_close(share, torch.tensor([0.5, 0.25, 0.0]))


def test_min_share_zeroes_weak_majorities_and_a_tie_has_no_label():
    """A tie at the top (2-2) or all-different answers give no pseudo-label: the group scores 0 whatever the
    sample order (the first-seen answer used to win, so order decided which answer was 'correct')."""
    answers = ["1", "2", "2", "1", "3", "3", "3", "9"]
    r, _ = self_consistency_rewards(answers, 4, min_share=0.6)
    assert r.tolist() == [0, 0, 0, 0, 1, 1, 1, 0]  # group 1 ties; group 2's majority 0.75 passes
    r, share = self_consistency_rewards(answers, 4)
    assert r.tolist() == [0, 0, 0, 0, 1, 1, 1, 0] and share.tolist() == [0.0, 0.75]
    r, share = self_consistency_rewards(["1", "2", "3", "4", None, None, "5", None], 4)
    assert r.tolist() == [0, 0, 0, 0, 0, 0, 1, 0] and share.tolist() == [0.0, 0.25]  # lone parsed answer wins
    with pytest.raises(ValueError, match="multiple"):
        self_consistency_rewards(answers, 3)


def test_answers_the_task_reads_as_equal_share_one_vote():
    """46, 46.0 and +46 are one number for the arithmetic verifier: with raw strings they split the vote and
    the group got no pseudo-label (all zeros)."""
    from rlx.tasks import make_task
    from rlx.tasks.config import ArithmeticConfig

    same = make_task(ArithmeticConfig()).same_answer
    r, share = self_consistency_rewards(["46", "46.0", "+46", "47"], 4, same=same)
    assert r.tolist() == [1.0, 1.0, 1.0, 0.0] and share.tolist() == [0.75]
    r, _ = self_consistency_rewards(["46", "46.0", "+46", "47"], 4)  # raw strings: four answers, no majority
    assert r.tolist() == [0.0] * 4
    r, _ = self_consistency_rewards(["46", "47", "47.0", None, "46.0", "46"], 6, same=same)
    assert r.tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 1.0]  # 3 votes for 46 beat 2 for 47; unparsed never scores
