"""Robust RL: certified and adversarial methods (paper smoothing: policy smoothing certificates)."""

from rlx.robust.smoothing import (certified_expected_reward, certified_quantile, certified_survival, dkw_epsilon,
                                  flip_attack, l2_attack, smoothed_actions)

__all__ = ["certified_survival", "dkw_epsilon", "certified_expected_reward", "certified_quantile",
           "smoothed_actions", "l2_attack", "flip_attack"]
