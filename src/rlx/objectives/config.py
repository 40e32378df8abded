"""ObjectiveConfig: which advantage estimator, policy loss, KL, aggregation; named presets.

A recipe picks a preset in one line and may override any field:

    objective:
      preset: dapo          # fills every field below that the recipe does not set
      clip_eps_high: 0.3    # a user-set field wins over the preset

The preset is resolved by a `model_validator(mode="before")`, so `dump_yaml(cfg)` shows every
resolved value and loading that dump gives the same config back. With no preset the field defaults
apply, and they equal the `grpo` preset.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from rlx.config import Section
from rlx.objectives.aggregate import AggMode
from rlx.objectives.kl import KLEstimator

__all__ = ["ObjectiveConfig", "PRESETS", "PresetName", "AdvantageName", "PolicyLossName"]

PresetName = Literal["grpo", "dr_grpo", "dapo", "rloo", "reinforce_pp", "ppo", "gspo", "nsr", "w_reinforce"]
AdvantageName = Literal["grpo", "rloo", "reinforce_pp", "gae", "w_reinforce"]
PolicyLossName = Literal["ppo_clip", "gspo", "reinforce"]

_GRPO: dict[str, Any] = {
    "advantage": "grpo", "scale_by_std": True, "policy_loss": "ppo_clip",
    "clip_eps_low": 0.2, "clip_eps_high": 0.2, "aggregation": "seq-mean-token-mean",
}
PRESETS: dict[str, dict[str, Any]] = {
    # DeepSeekMath GRPO; the paper's KL term (k3, 0.04) is off by default: set kl_coef to use it.
    "grpo": _GRPO,
    # Dr.GRPO: no std division, sum over tokens divided by a constant length.
    "dr_grpo": {**_GRPO, "scale_by_std": False, "aggregation": "seq-mean-token-sum-norm"},
    # DAPO: clip-higher, token-level loss, dynamic sampling, soft overlong punishment (4096 / 20480).
    "dapo": {**_GRPO, "clip_eps_high": 0.28, "aggregation": "token-mean", "dynamic_sampling": True,
             "overlong_buffer_frac": 0.2, "overlong_penalty": 1.0},
    # RLOO: leave-one-out baseline, sequence-level REINFORCE (sum of token log-probs).
    "rloo": {**_GRPO, "advantage": "rloo", "aggregation": "seq-mean-token-sum"},
    # REINFORCE++: batch-whitened returns; KL (when kl_coef > 0) goes into the per-token reward.
    "reinforce_pp": {**_GRPO, "advantage": "reinforce_pp", "aggregation": "token-mean",
                     "kl_placement": "reward", "kl_estimator": "k1"},
    # PPO with a value head and GAE.
    "ppo": {**_GRPO, "advantage": "gae", "aggregation": "token-mean", "gamma": 1.0, "lam": 0.95,
            "kl_placement": "reward", "kl_estimator": "k1", "value_coef": 0.5, "value_clip": 0.2},
    # GSPO: sequence-level ratio with tiny clip range.
    "gspo": {**_GRPO, "policy_loss": "gspo", "clip_eps_low": 3e-4, "clip_eps_high": 4e-4},
    # Negative sample reinforcement only, and its weighted REINFORCE variant (lambda = 0.1).
    "nsr": {**_GRPO, "advantage": "w_reinforce", "positive_weight": 0.0, "aggregation": "token-mean"},
    "w_reinforce": {**_GRPO, "advantage": "w_reinforce", "positive_weight": 0.1, "aggregation": "token-mean"},
}


class ObjectiveConfig(Section):
    """Advantage estimator, policy loss, KL, entropy, aggregation and reward shaping of an RLVR run."""

    preset: PresetName | None = Field(None, description="named preset filling every field not set explicitly")
    advantage: AdvantageName = Field("grpo", description="advantage estimator")
    scale_by_std: bool = Field(True, description="grpo: divide by the group std (False = Dr.GRPO)")
    adv_eps: float = Field(1e-6, ge=0, description="grpo: epsilon added to the group std")
    gamma: float = Field(1.0, ge=0, le=1, description="reinforce_pp / gae: discount")
    lam: float = Field(0.95, ge=0, le=1, description="gae: lambda")
    positive_weight: float = Field(0.1, ge=0, description="w_reinforce: weight of correct samples (0 = NSR)")
    correct_threshold: float = Field(0.5, description="w_reinforce: reward above which a sample counts as correct")
    ace_alpha: float = Field(0.0, ge=0,
        description="ACE: scale negative advantages by 1 + alpha softplus(log pi/pi_ref); 0 = off")
    uncertainty_alpha: float = Field(0.0, ge=0,
        description="paper qhawkeye: scale a group's advantages by exp(-alpha u), u = normalised variance of its numeric answers; 0 = off")
    uncertainty_range: tuple[float, float] = Field((1.0, 5.0),
        description="qhawkeye: answers are clamped to [lo, hi]; u = Var / (0.25 (hi - lo)^2)")
    dispersion_floor: float | None = Field(None, ge=0, le=1,
        description="paper puzzlecraft: scale a group's advantages by floor + (1 - floor) D, D = normalised answer entropy; None = off")
    perception_coef: float = Field(0.0, ge=0,
        description="paper qhawkeye: weight gamma of the implicit perception loss -gamma KL(pi(.|x) || pi(.|x with digits masked)); 0 = off")
    perception_zero_step: int | None = Field(None, ge=1,
        description="qhawkeye: cosine-anneal the perception weight to 0 at this RL step; None = constant")
    policy_loss: PolicyLossName = Field("ppo_clip", description="per-token policy loss")
    clip_eps_low: float = Field(0.2, ge=0, lt=1, description="lower clip: ratio >= 1 - eps_low")
    clip_eps_high: float = Field(0.2, ge=0, description="upper clip: ratio <= 1 + eps_high (clip-higher when > eps_low)")
    dual_clip: float | None = Field(None, gt=1, description="dual-clip constant c for negative advantages; None = off")
    tis_cap: float | None = Field(None, gt=0,
        description="truncated importance weight cap C on pi_old/pi_rollout; None = off")
    entropy_coef: float = Field(0.0, ge=0, description="entropy bonus coefficient (needs token entropies)")
    aggregation: AggMode = Field("seq-mean-token-mean", description="how per-token losses reduce to a scalar")
    aggregation_max_len: int | None = Field(None, gt=0,
        description="seq-mean-token-sum-norm constant; None = max new tokens")
    kl_estimator: KLEstimator = Field("k3", description="estimator of KL(pi || pi_ref)")
    kl_coef: float = Field(0.0, ge=0, description="KL coefficient; 0 = no reference model needed")
    kl_placement: Literal["loss", "reward"] = Field("loss", description="KL as a loss term or as a reward penalty")
    value_coef: float = Field(0.5, ge=0, description="gae: weight of the value loss")
    value_clip: float | None = Field(0.2, gt=0, description="gae: value clip range; None = unclipped")
    overlong_buffer_frac: float | None = Field(None, gt=0, le=1,
        description="DAPO soft overlong buffer as a fraction of max new tokens; None = off")
    overlong_penalty: float = Field(1.0, ge=0, description="DAPO overlong: penalty at the maximum length")
    dynamic_sampling: bool = Field(False, description="drop zero-reward-variance groups and refill from new prompts")
    dynamic_sampling_max_rounds: int = Field(3, ge=0, le=100,
                                             description="extra generation rounds allowed per step to refill (at most "
                                             "100: each step's rounds draw from seeds of their own)")
    zero_var_tol: float = Field(1e-6, ge=0, description="a group whose reward range is <= this has zero variance")

    @model_validator(mode="after")
    def _check_range(self) -> "ObjectiveConfig":
        lo, hi = self.uncertainty_range
        if not hi > lo:
            raise ValueError(f"uncertainty_range = [{lo}, {hi}]: hi must be greater than lo")
        shaped = [f for f, on in (("overlong_buffer_frac", self.overlong_buffer_frac is not None),
                                  ("kl_placement: reward", self.kl_placement == "reward" and self.kl_coef > 0)) if on]
        if self.kl_estimator == "k1" and self.kl_placement == "loss" and self.kl_coef > 0:
            raise ValueError("kl_estimator = k1 with kl_placement = loss: the k1 term log(pi/pi_ref) has zero gradient "
                             "in expectation, so it adds noise and never pulls toward the reference; use k2 (its "
                             "gradient is KL's) or k3 in the loss, or kl_placement: reward for k1")
        base = PRESETS.get(self.preset, {}) if self.preset else {}  # presets carry clip values nobody wrote
        ignored = sorted(f for f in ("dual_clip", "clip_eps_low", "clip_eps_high")
                         if getattr(self, f) != base.get(f, type(self).model_fields[f].default))
        if self.policy_loss == "reinforce" and ignored:
            raise ValueError(f"policy_loss = reinforce has no ratio to clip, so {', '.join(ignored)} would be ignored: "
                             f"remove them or use policy_loss: ppo_clip")
        if self.advantage == "w_reinforce" and shaped:
            raise ValueError(f"advantage = w_reinforce decides correct vs incorrect by reward > correct_threshold; "
                             f"{' and '.join(shaped)} shape the reward first, so a correct answer can fall below "
                             f"the threshold and be pushed down: turn the shaping off")
        return self

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("preset"), str) and data["preset"] in PRESETS:
            return {**PRESETS[data["preset"]], **data}
        return data
