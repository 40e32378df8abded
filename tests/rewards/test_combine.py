"""Reward components: per-part means over a batch."""

from rlx.rewards.combine import combine, part_means
from rlx.tasks.base import Score


def test_part_means_by_hand_missing_parts_count_zero():
    scores = [Score(1.1, True, True, {"correct": 1.0, "format": 0.1}),
              Score(0.1, False, True, {"correct": 0.0, "format": 0.1}),
              Score(0.0, False, False, {})]  # e.g. a reward function that raised
    # correct: (1 + 0 + 0) / 3; format: (0.1 + 0.1 + 0) / 3
    assert part_means(scores) == {"rollout/part/correct": 1 / 3, "rollout/part/format": 0.2 / 3}
    assert part_means([]) == {}


def test_flipped_correctness_shows_in_the_part_not_in_the_verdict():
    from rlx.rewards.config import RewardConfig

    cfg = RewardConfig(format=0.5, noise="flip", noise_p=1.0)  # every correctness reward is flipped
    s = combine(cfg, correct=True, parsed=True, format_ok=True, problem_id="00000000", completion="46")
    assert s.correct and s.reward == 0.5  # 1.0 * 0 + 0.5 * 1
    assert part_means([s], prefix="p/") == {"p/correct": 0.0, "p/format": 1.0}
