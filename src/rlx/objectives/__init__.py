"""Pure RLVR math: advantage estimators, policy/value losses, KL estimators, aggregation, presets.

See docs/objectives.md for the table of functions, equations and papers.
"""

from rlx.objectives.advantages import (
    ace_advantages,
    broadcast,
    dr_grpo_advantages,
    gae_advantages,
    grpo_advantages,
    masked_whiten,
    outcome_to_token_rewards,
    reinforce_pp_advantages,
    rloo_advantages,
    weighted_reinforce_advantages,
)
from rlx.objectives.aggregate import AGG_MODES, AggMode, Normalizer, aggregate, masked_mean, normalizer_for
from rlx.objectives.build import AdvantageResult, LossInputs, Objective, accumulate_metrics, build_objective
from rlx.objectives.config import PRESETS, ObjectiveConfig
from rlx.objectives.kl import kl_k1, kl_k2, kl_k3, kl_penalty_rewards, mismatch_metrics
from rlx.objectives.policy import entropy_bonus, gspo_loss, ppo_clip_loss, reinforce_loss, tis_weights, value_loss
from rlx.objectives.shaping import overlong_penalty

__all__ = [
    "AGG_MODES", "AggMode", "Normalizer", "aggregate", "masked_mean", "normalizer_for",
    "broadcast", "outcome_to_token_rewards", "grpo_advantages", "dr_grpo_advantages", "rloo_advantages",
    "reinforce_pp_advantages", "gae_advantages", "weighted_reinforce_advantages", "ace_advantages", "masked_whiten",
    "kl_k1", "kl_k2", "kl_k3", "kl_penalty_rewards", "mismatch_metrics",
    "ppo_clip_loss", "gspo_loss", "reinforce_loss", "tis_weights", "entropy_bonus", "value_loss",
    "overlong_penalty", "ObjectiveConfig", "PRESETS",
    "LossInputs", "AdvantageResult", "Objective", "build_objective", "accumulate_metrics",
]
