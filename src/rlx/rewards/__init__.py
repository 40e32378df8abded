"""Verifiers and reward shaping: pure, total, deterministic functions of (completion, problem).

No function here raises on model output; malformed output scores 0 with `Score.parsed=False`.
"""

from rlx.rewards.combine import combine, summarize
from rlx.rewards.config import RewardConfig
from rlx.rewards.countdown import CountdownVerdict, check_countdown, evaluate_expression
from rlx.rewards.delimiters import AnswerFormat, extract, extract_boxed, extract_plain, extract_tags, format_ok, wrap
from rlx.rewards.mathverify import math_equal
from rlx.rewards.noise import flip_reward, noise_uniform, random_reward
from rlx.rewards.numeric import numeric_equal, parse_number
from rlx.rewards.safe import RewardErrors, safe_score

__all__ = [
    "RewardConfig", "combine", "summarize", "CountdownVerdict", "check_countdown", "evaluate_expression",
    "AnswerFormat", "extract", "extract_boxed", "extract_plain", "extract_tags", "format_ok", "wrap",
    "math_equal", "flip_reward", "noise_uniform", "random_reward", "numeric_equal", "parse_number",
    "RewardErrors", "safe_score",
]
