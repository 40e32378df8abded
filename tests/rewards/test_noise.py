"""Reward-noise wrappers (paper randcalc): rates within binomial tolerance, deterministic draws."""

from rlx.rewards import RewardConfig, combine, flip_reward, noise_uniform, random_reward

N = 20000


def _tol(p, n=N):
    return 4.5 * (p * (1 - p) / n) ** 0.5  # 4.5 sigma: fails with probability ~7e-6 if the rate is right


def test_uniform_is_deterministic_and_sensitive_to_each_key():
    u = noise_uniform(0, "abc", "46")
    assert u == noise_uniform(0, "abc", "46") and 0.0 <= u < 1.0
    assert len({u, noise_uniform(1, "abc", "46"), noise_uniform(0, "abd", "46"), noise_uniform(0, "abc", "47")}) == 4
    assert noise_uniform(0, "ab", "c46") != noise_uniform(0, "abc", "46")  # length-prefixed, no ambiguity


def test_random_reward_rate():
    for p in (0.1, 0.5, 0.8):
        rate = sum(random_reward(p, 3, f"q{i}", "46") for i in range(N)) / N
        assert abs(rate - p) < _tol(p), (p, rate)
    assert all(random_reward(0.0, 0, f"q{i}", "x") == 0.0 for i in range(200))
    assert all(random_reward(1.0, 0, f"q{i}", "x") == 1.0 for i in range(200))


def test_random_reward_independent_of_correctness():
    cfg = RewardConfig(noise="random", noise_p=0.5)
    right = [combine(cfg, correct=True, parsed=True, format_ok=True, problem_id=f"q{i}", completion="46").reward for i in range(N)]
    wrong = [combine(cfg, correct=False, parsed=True, format_ok=True, problem_id=f"q{i}", completion="46").reward for i in range(N)]
    assert right == wrong  # same key -> same draw whatever the verdict
    assert abs(sum(right) / N - 0.5) < _tol(0.5)


def test_flip_rate():
    for p in (0.2, 0.5):
        flips = sum(flip_reward(True, p, 7, f"q{i}", "c") == 0.0 for i in range(N)) / N
        assert abs(flips - p) < _tol(p), (p, flips)
    # the same draw flips a wrong answer into reward 1
    for i in range(100):
        assert flip_reward(True, 0.3, 1, f"q{i}", "c") + flip_reward(False, 0.3, 1, f"q{i}", "c") == 1.0


def test_noise_keeps_true_verdict_in_score():
    cfg = RewardConfig(noise="flip", noise_p=1.0)
    s = combine(cfg, correct=True, parsed=True, format_ok=True, problem_id="q", completion="46")
    assert s.correct and s.reward == 0.0 and s.parts == {"correct": 0.0, "format": 1.0}


def test_summarize_counts_unparsed():
    from rlx.rewards import summarize
    from rlx.tasks import Score

    scores = [Score(1.0, True, True, {"correct": 1.0, "format": 1.0}), Score(0.0, False, False, {"correct": 0.0, "format": 0.0}),
              Score(0.5, False, True, {"correct": 0.0, "format": 1.0}), Score(0.0, False, False, {"correct": 0.0, "format": 0.0})]
    # reward (1+0+0.5+0)/4 = 0.375; accuracy 1/4; format 2/4; unparsed 2 of 4
    assert summarize(scores) == {"rollout/reward": 0.375, "rollout/accuracy": 0.25, "rollout/format": 0.5,
                                 "rollout/unparsed": 2.0, "rollout/unparsed_frac": 0.5}
    assert summarize([]) == {}
