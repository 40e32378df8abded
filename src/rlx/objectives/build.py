"""`build_objective(cfg)`: pick the named functions once; the loop calls `advantages` and `loss`.

Usage in a training step (one mini-batch split into micro-batches):

    obj = build_objective(cfg.objective, max_new_tokens=cfg.rollout.max_new_tokens)
    rewards, m = obj.shape_rewards(batch.rewards, batch.response_mask)
    adv, m = obj.advantages(rewards, batch.response_mask, G, old_logprobs=old, ref_logprobs=ref)
    norm = normalizer_for(minibatch.response_mask)          # once per mini-batch
    acc = {}
    for mb in micro_batches:
        loss, metrics = obj.loss(LossInputs(...mb...), norm)
        loss.backward()                                      # no division by the micro-batch count
        acc = accumulate_metrics(acc, metrics)
    optimizer.step()

`loss` returns metrics that add up over the micro-batches of one mini-batch (token means are taken
over the mini-batch's token count); keys ending in `_max` / `_min` reduce by max / min.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from rlx.objectives import advantages as adv_lib
from rlx.objectives import group_weights as gw
from rlx.objectives import policy as pol
from rlx.objectives.aggregate import Normalizer, aggregate
from rlx.objectives.config import ObjectiveConfig
from rlx.objectives.kl import KL_ESTIMATORS, kl_penalty_rewards, mismatch_metrics
from rlx.objectives.perception import perception_kl
from rlx.objectives.shaping import overlong_penalty

__all__ = ["LossInputs", "AdvantageResult", "Objective", "build_objective", "accumulate_metrics"]

Metrics = dict[str, torch.Tensor]
AdvantageFn = Callable[
    [torch.Tensor, torch.Tensor, int, "torch.Tensor | None"], tuple[torch.Tensor, "torch.Tensor | None", Metrics]
]


@dataclass(frozen=True)
class LossInputs:
    """One micro-batch for the loss. All [n, T]; rows are whole sequences."""

    logprobs: torch.Tensor  # [n, T] current policy, with grad
    old_logprobs: torch.Tensor  # [n, T] trainer log-probs before this update (detached)
    advantages: torch.Tensor  # [n, T]
    response_mask: torch.Tensor  # [n, T] bool
    ref_logprobs: torch.Tensor | None = None  # [n, T] reference policy (KL in loss)
    rollout_logprobs: torch.Tensor | None = None  # [n, T] rollout engine (TIS, mismatch metrics)
    entropies: torch.Tensor | None = None  # [n, T] token entropies of the current policy (with grad)
    values: torch.Tensor | None = None  # [n, T] value head, with grad (gae only)
    old_values: torch.Tensor | None = None  # [n, T] value head before the update (gae only)
    returns: torch.Tensor | None = None  # [n, T] value targets from `advantages` (gae only)
    degraded_logprobs: torch.Tensor | None = None  # [n, T] policy on the degraded prompt (qhawkeye), detached
    perception_coef: float | None = None  # this step's perception weight (scheduled); None: the config's

    def __post_init__(self) -> None:
        shape = self.logprobs.shape
        for name in ("old_logprobs", "advantages", "response_mask", "ref_logprobs", "rollout_logprobs",
                     "entropies", "values", "old_values", "returns", "degraded_logprobs"):
            t = getattr(self, name)
            if t is not None and t.shape != shape:
                raise ValueError(f"LossInputs.{name} has shape {tuple(t.shape)}, expected {tuple(shape)}")


@dataclass(frozen=True)
class AdvantageResult:
    advantages: torch.Tensor  # [N, T], 0 outside the response mask
    returns: torch.Tensor | None = None  # [N, T] value targets (gae only)


def accumulate_metrics(acc: Metrics, new: Metrics) -> Metrics:
    """Combine metrics of successive micro-batches: sum, except `*_max` (max) and `*_min` (min)."""
    out = dict(acc)
    for k, v in new.items():
        v = v.detach()
        if k not in out:
            out[k] = v
        elif k.endswith("_max"):
            out[k] = torch.maximum(out[k], v)
        elif k.endswith("_min"):
            out[k] = torch.minimum(out[k], v)
        else:
            out[k] = out[k] + v
    return out


@dataclass(frozen=True)
class Objective:
    cfg: ObjectiveConfig
    advantage_fn: AdvantageFn  # (rewards [N] or [N, T], response_mask, G, values | None) -> (adv, returns, metrics)
    token_rewards: bool  # the estimator takes per-token rewards (KL reward penalty applied per token)
    policy_fn: Callable[..., tuple[torch.Tensor, Metrics]]
    kl_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    max_len: int | None  # constant of seq-mean-token-sum-norm
    max_new_tokens: int | None  # rollout length cap (overlong shaping)

    @property
    def needs_ref(self) -> bool:
        """Whether ref_logprobs must be computed (KL on, or ACE)."""
        return self.cfg.kl_coef > 0 or self.cfg.ace_alpha > 0

    @property
    def needs_values(self) -> bool:
        """Whether a value head is trained (GAE): pass values to `advantages` and to `loss`."""
        return self.cfg.advantage == "gae"

    @property
    def needs_answers(self) -> bool:
        """Whether `group_scale` needs the extracted answers (papers qhawkeye, puzzlecraft)."""
        return self.cfg.uncertainty_alpha > 0 or self.cfg.dispersion_floor is not None

    def group_scale(self, answers: list[str | None], group_size: int) -> tuple[torch.Tensor, Metrics]:
        """[B] multiplier of each group's advantages from its answers (1 when neither scale is on)."""
        c = self.cfg
        if not answers or len(answers) % group_size:
            raise ValueError(f"group_scale needs the answers of whole groups of {group_size}, got {len(answers)} "
                             "(does the rollout engine return texts?)")
        scale = torch.ones(len(answers) // group_size)
        metrics: Metrics = {}
        if c.uncertainty_alpha > 0:
            values = gw.answer_values(answers)
            u = gw.uncertainty_scale(values, group_size, *c.uncertainty_range, alpha=c.uncertainty_alpha)
            scale = scale * u
            metrics["uncertainty_scale_mean"] = u.mean()
        if c.dispersion_floor is not None:
            d = gw.answer_dispersion(answers, group_size)
            scale = scale * gw.dispersion_scale(d, c.dispersion_floor)
            metrics["dispersion_mean"] = d.mean()
        return scale, metrics

    @property
    def needs_entropies(self) -> bool:
        return self.cfg.entropy_coef > 0

    def shape_rewards(self, rewards: torch.Tensor, response_mask: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        """Add DAPO's overlong penalty (if configured) to rewards [N]; lengths = response_mask.sum(1)."""
        c = self.cfg
        if c.overlong_buffer_frac is None or c.overlong_penalty == 0:
            return rewards, {}
        if self.max_new_tokens is None:
            raise ValueError("objective.overlong_buffer_frac needs max_new_tokens passed to build_objective")
        buffer = max(1, round(c.overlong_buffer_frac * self.max_new_tokens))
        pen, m = overlong_penalty(response_mask.sum(dim=1), self.max_new_tokens, buffer, c.overlong_penalty)
        return rewards.to(torch.float32) + pen, m

    def advantages(
        self,
        rewards: torch.Tensor,
        response_mask: torch.Tensor,
        group_size: int,
        *,
        old_logprobs: torch.Tensor | None = None,
        ref_logprobs: torch.Tensor | None = None,
        values: torch.Tensor | None = None,
    ) -> tuple[AdvantageResult, Metrics]:
        """Advantages [N, T] from sequence rewards [N] (KL reward penalty and ACE applied if configured)."""
        c = self.cfg
        metrics: Metrics = {}
        r: torch.Tensor = rewards.to(torch.float32)
        if c.kl_placement == "reward" and c.kl_coef > 0:
            if old_logprobs is None or ref_logprobs is None:
                raise ValueError("objective.kl_placement=reward needs old_logprobs and ref_logprobs")
            kl = self.kl_fn(old_logprobs, ref_logprobs)
            r, m = kl_penalty_rewards(r, kl, response_mask, c.kl_coef, per_token=self.token_rewards)
            metrics.update(m)
        adv, returns, m = self.advantage_fn(r, response_mask, group_size, values)
        metrics.update(m)
        if c.ace_alpha > 0:
            if old_logprobs is None or ref_logprobs is None:
                raise ValueError("objective.ace_alpha > 0 needs old_logprobs and ref_logprobs")
            adv, m = adv_lib.ace_advantages(adv, old_logprobs, ref_logprobs, response_mask, alpha=c.ace_alpha)
            metrics.update(m)
        return AdvantageResult(adv, returns), metrics

    def loss(self, inputs: LossInputs, normalizer: Normalizer) -> tuple[torch.Tensor, Metrics]:
        """Scalar loss of one micro-batch, reduced with the mini-batch's `normalizer`, plus metrics."""
        c, x = self.cfg, inputs
        mask = x.response_mask.bool()
        local: Metrics = {}  # local token means, rescaled below to be additive
        pg, m = self.policy_fn(x.logprobs, x.old_logprobs, x.advantages, mask)
        local.update(m)
        if x.rollout_logprobs is not None:
            local.update(mismatch_metrics(x.old_logprobs, x.rollout_logprobs, mask))
        if c.tis_cap is not None:
            if x.rollout_logprobs is None:
                raise ValueError("objective.tis_cap is set but LossInputs.rollout_logprobs is None")
            w, m = pol.tis_weights(x.old_logprobs, x.rollout_logprobs, mask, c.tis_cap)
            pg = pg * w
            local.update(m)
        total = pg
        out: Metrics = {"loss/policy": aggregate(pg, mask, c.aggregation, normalizer, self.max_len).detach()}
        if x.ref_logprobs is not None:
            kl = self.kl_fn(x.logprobs, x.ref_logprobs)
            local["kl/ref"] = kl.detach()  # per-token; reduced to a token mean below
            if c.kl_placement == "loss" and c.kl_coef > 0:
                total = total + c.kl_coef * kl
        elif c.kl_placement == "loss" and c.kl_coef > 0:
            raise ValueError("objective.kl_coef > 0 (placement loss) needs LossInputs.ref_logprobs")
        if x.entropies is not None:
            local["entropy/mean"] = x.entropies.detach()
            if c.entropy_coef > 0:
                total = total + pol.entropy_bonus(x.entropies, c.entropy_coef)
        elif c.entropy_coef > 0:
            raise ValueError("objective.entropy_coef > 0 needs LossInputs.entropies")
        if x.degraded_logprobs is not None:  # paper qhawkeye: maximise KL to the degraded-input policy
            kld = perception_kl(x.logprobs, x.degraded_logprobs)
            local["perception_kl"] = kld.detach()
            total = total - (c.perception_coef if x.perception_coef is None else x.perception_coef) * kld
        elif (c.perception_coef if x.perception_coef is None else x.perception_coef) > 0:
            raise ValueError("objective.perception_coef > 0 needs LossInputs.degraded_logprobs")
        loss = aggregate(total, mask, c.aggregation, normalizer, self.max_len)
        if self.needs_values:
            if x.values is None or x.old_values is None or x.returns is None:
                raise ValueError("objective.advantage=gae needs values, old_values and returns in LossInputs")
            vl, m = pol.value_loss(x.values, x.old_values, x.returns, mask, clip_eps=c.value_clip)
            vloss = aggregate(vl, mask, "token-mean", normalizer)
            loss = loss + c.value_coef * vloss
            out["loss/value"] = vloss.detach()
            local.update(m)
        out["loss/total"] = loss.detach()
        share = mask.sum().to(torch.float32) / normalizer.num_tokens.clamp_min(1.0)
        for k, v in local.items():
            if v.dim() > 0:  # per-token tensor: local masked mean
                v = (v * mask).sum() / mask.sum().clamp_min(1)
            out[k] = v if k.endswith(("_max", "_min")) else v * share
        return loss, out


_POLICY = {"ppo_clip": pol.ppo_clip_loss, "gspo": pol.gspo_loss, "reinforce": pol.reinforce_loss}


def _outcome(fn: Callable[..., tuple[torch.Tensor, Metrics]], **kwargs) -> AdvantageFn:
    def advantage_fn(rewards, response_mask, group_size, values):
        adv, m = fn(rewards, response_mask, group_size, **kwargs)
        return adv, None, m

    return advantage_fn


def _gae(gamma: float, lam: float) -> AdvantageFn:
    def advantage_fn(rewards, response_mask, group_size, values):
        if values is None:
            raise ValueError("objective.advantage=gae needs values from a value head")
        (adv, returns), m = adv_lib.gae_advantages(rewards, values, response_mask, gamma=gamma, lam=lam)
        return adv, returns, m

    return advantage_fn


def _advantage_fn(cfg: ObjectiveConfig) -> AdvantageFn:
    if cfg.advantage == "grpo":
        return _outcome(adv_lib.grpo_advantages, scale_by_std=cfg.scale_by_std, eps=cfg.adv_eps)
    if cfg.advantage == "rloo":
        return _outcome(adv_lib.rloo_advantages)
    if cfg.advantage == "reinforce_pp":
        return _outcome(adv_lib.reinforce_pp_advantages, gamma=cfg.gamma)
    if cfg.advantage == "w_reinforce":
        return _outcome(adv_lib.weighted_reinforce_advantages, positive_weight=cfg.positive_weight,
                        threshold=cfg.correct_threshold)
    return _gae(cfg.gamma, cfg.lam)


def build_objective(cfg: ObjectiveConfig, max_new_tokens: int | None = None) -> Objective:
    """Resolve the configured functions once. `max_new_tokens` is the rollout length cap: the
    constant of seq-mean-token-sum-norm (unless cfg.aggregation_max_len) and of overlong shaping."""
    policy_fn = _POLICY[cfg.policy_loss]
    if cfg.policy_loss in ("ppo_clip", "gspo"):
        policy_fn = partial(policy_fn, eps_low=cfg.clip_eps_low, eps_high=cfg.clip_eps_high, dual_clip=cfg.dual_clip)
    max_len = cfg.aggregation_max_len or max_new_tokens
    if cfg.aggregation == "seq-mean-token-sum-norm" and max_len is None:
        raise ValueError("objective.aggregation=seq-mean-token-sum-norm needs aggregation_max_len or max_new_tokens")
    return Objective(cfg=cfg, advantage_fn=_advantage_fn(cfg), token_rewards=cfg.advantage in ("reinforce_pp", "gae"),
                     policy_fn=policy_fn, kl_fn=KL_ESTIMATORS[cfg.kl_estimator], max_len=max_len,
                     max_new_tokens=max_new_tokens)
