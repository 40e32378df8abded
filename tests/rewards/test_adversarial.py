"""Every task's `score` on adversarial model output: never raises, garbage scores 0 with parsed=False."""

import pytest

from rlx.rewards import RewardConfig, format_ok
from rlx.tasks import ArithmeticConfig, CountdownConfig, MathConfig, make_task
from rlx.types import Problem

ARITH = Problem(id="a" * 16, question="12+34", answer="46")
CD = Problem(id="c" * 16, question="3 7 25 50 -> 75", answer="75", meta={"numbers": [3, 7, 25, 50], "target": 75})
MATH = Problem(id="m" * 16, question="What is 17 + 25?", answer="42")

GARBAGE = [
    "", " ", "\n", "x" * 1_000_000, "9" * 100_000, "٤٦", "４６", "1e999", "-1e999", "1/0", "0/0", "9**9**9", "nan",
    "NaN", "inf", "\\boxed{", "\\boxed{\\boxed{}", "}" * 1000 + "{" * 1000, "<answer>", "</answer><answer>",
    "<answer><answer></answer>", "<answer>" * 10_000, "\\boxed{" * 10_000, "(" * 10_000, "\x00\x01\x02",
    "\ud800", "🙂" * 1000, "<answer>1e999</answer>", "\\boxed{9^{9^{9^{9}}}}", "\\boxed{1/0}",
]


@pytest.mark.parametrize("fmt", ["plain", "boxed", "tags"])
@pytest.mark.parametrize("cfg,problem", [(ArithmeticConfig, ARITH), (CountdownConfig, CD), (MathConfig, MATH)],
                         ids=["arithmetic", "countdown", "math"])
def test_garbage_never_raises_and_scores_zero(cfg, problem, fmt):
    task = make_task(cfg(answer_format=fmt, reward=RewardConfig(correct=1.0, format=0.5)))
    for text in GARBAGE + [None, 46, b"46"]:
        s = task.score(text, problem)
        assert not s.correct, (fmt, text[:20] if isinstance(text, str) else text)
        assert s.reward == 0.5 * format_ok(text, fmt)
        if s.reward == 0.0:
            assert s.parts["correct"] == 0.0


def test_unparseable_answers_are_flagged():
    task = make_task(ArithmeticConfig())
    for text in ("1e999", "٤٦", "nan", "9**9**9", "1/0", "x" * 1_000_000):
        assert not task.score(text, ARITH).parsed, text
