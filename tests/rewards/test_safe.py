"""safe_score on user reward functions that raise or misbehave; failures counted and logged once."""

import math

from rlx.rewards import RewardErrors, safe_score
from rlx.tasks import Score


def boom(completion, problem):
    raise KeyError(f"missing {completion}")


def test_raising_function_scores_zero_with_traceback():
    score, err = safe_score(boom, "46", None)
    assert score.reward == 0.0 and not score.correct and not score.parsed
    assert "KeyError" in err and "def boom" not in err and "boom" in err


def test_return_types():
    assert safe_score(lambda c, p: 0.5, "x", None) == (Score(0.5, True, True, {"reward": 0.5}), None)
    assert safe_score(lambda c, p: False, "x", None)[0] == Score(0.0, False, True, {"reward": 0.0})
    s = Score(2.0, True, True, {"a": 2.0})
    assert safe_score(lambda c, p: s, "x", None) == (s, None)
    for bad in (math.nan, math.inf, "1.0", None, Score(math.nan, True, True, {})):
        score, err = safe_score(lambda c, p: bad, "x", None)
        assert score.reward == 0.0 and err is not None, bad


def test_each_distinct_failure_reported_once():
    errors = RewardErrors()
    first = [errors.record(safe_score(boom, str(i), None)[1]) for i in range(5)]  # same site, varying message
    other = errors.record(safe_score(lambda c, p: 1 / 0, "x", None)[1])
    assert first == [True, False, False, False, False] and other is True
    assert errors.metrics() == {"rollout/reward_errors": 6.0, "rollout/reward_error_kinds": 2.0}


def chained(completion, problem):
    try:
        return float(completion)
    except ValueError:
        if completion == "plain":
            raise RuntimeError("no number") from None
        raise RuntimeError("no number")  # the ValueError, with the input in its message, is the context


def test_a_chained_failure_is_one_kind_whatever_the_messages():
    """Only the last line's message used to be dropped from the key: an exception raised while handling
    another kept the first message (with the input), so 1000 samples were 1000 kinds, each logged."""
    errors = RewardErrors()
    logged = [errors.record(safe_score(chained, f"answer {i}", None)[1]) for i in range(50)]
    assert logged == [True] + [False] * 49 and errors.metrics()["rollout/reward_error_kinds"] == 1.0
    assert errors.record(safe_score(chained, "plain", None)[1])  # `from None`: another chain, another kind
    assert errors.record("Traceback (most recent call last):\nValueError: x")  # plain text still works


def test_base_exceptions_are_not_swallowed():
    import pytest

    def interrupt(c, p):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        safe_score(interrupt, "x", None)


def test_a_reward_function_calling_sys_exit_scores_zero():
    """A stray sys.exit in a user's reward function fails that sample; it used to stop the run."""
    import sys

    score, err = safe_score(lambda c, p: sys.exit(3), "x", None)
    assert score.reward == 0.0 and "SystemExit" in err


def test_failure_kinds_survive_a_checkpoint():
    """A resumed run logs a failure kind it already logged? No: the kinds seen are part of the state."""
    errors = RewardErrors()
    _, err = safe_score(lambda c, p: 1 / 0, "x", None)
    assert errors.record(err)
    restored = RewardErrors()
    restored.load_state_dict(errors.state_dict())
    assert not restored.record(err)  # the same kind: not logged again
    assert restored.metrics() == {"rollout/reward_errors": 2.0, "rollout/reward_error_kinds": 1.0}
    old = RewardErrors()
    old.load_state_dict(5)  # a checkpoint written before the kinds were saved
    assert old.count == 5 and old.seen == {}
