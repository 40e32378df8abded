"""build_objective: advantages/loss wiring, additive metrics, TIS, KL placement, errors."""

import pytest
import torch

from rlx.objectives import (
    LossInputs,
    ObjectiveConfig,
    accumulate_metrics,
    aggregate,
    build_objective,
    grpo_advantages,
    kl_k1,
    kl_k3,
    normalizer_for,
    ppo_clip_loss,
    rloo_advantages,
)

G = 4


def _batch(seed=0, n=8, t=5):
    g = torch.Generator().manual_seed(seed)
    mask = torch.arange(t)[None] < torch.randint(1, t + 1, (n,), generator=g)[:, None]
    old = torch.randn(n, t, generator=g, dtype=torch.float64) * 0.2 - 1.0
    logp = old + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.2
    ref = old + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.1
    roll = old + torch.randn(n, t, generator=g, dtype=torch.float64) * 0.1
    rewards = torch.randint(0, 2, (n,), generator=g).double()
    return mask, old, logp, ref, roll, rewards


def test_advantages_dispatch():
    mask, old, _, ref, _, rewards = _batch()
    obj = build_objective(ObjectiveConfig(preset="grpo"))
    res, _ = obj.advantages(rewards, mask, G)
    assert torch.equal(res.advantages, grpo_advantages(rewards, mask, G)[0]) and res.returns is None
    res, _ = build_objective(ObjectiveConfig(preset="rloo")).advantages(rewards, mask, G)
    assert torch.equal(res.advantages, rloo_advantages(rewards, mask, G)[0])


def test_kl_in_reward_sequence_level():
    mask, old, _, ref, _, rewards = _batch()
    obj = build_objective(ObjectiveConfig(kl_coef=0.1, kl_placement="reward", kl_estimator="k1"))
    res, m = obj.advantages(rewards, mask, G, old_logprobs=old, ref_logprobs=ref)
    penalised = rewards - 0.1 * (kl_k1(old, ref) * mask).sum(1)
    assert torch.allclose(res.advantages, grpo_advantages(penalised, mask, G)[0], atol=1e-6)  # float32 out
    with pytest.raises(ValueError, match="ref_logprobs"):
        obj.advantages(rewards, mask, G)


def test_loss_matches_manual_composition():
    mask, old, logp, ref, roll, rewards = _batch()
    adv = grpo_advantages(rewards, mask, G)[0].double()
    cfg = ObjectiveConfig(preset="dapo", kl_coef=0.05, tis_cap=1.5, entropy_coef=0.01)
    obj = build_objective(cfg, max_new_tokens=5)
    ent = torch.rand_like(logp)
    loss, m = obj.loss(LossInputs(logp, old, adv, mask, ref_logprobs=ref, rollout_logprobs=roll, entropies=ent),
                       normalizer_for(mask))
    pg, _ = ppo_clip_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28)
    w = torch.clamp(torch.exp(old - roll), max=1.5)
    manual = aggregate(pg * w + 0.05 * kl_k3(logp, ref) - 0.01 * ent, mask, "token-mean")
    assert loss.item() == pytest.approx(manual.item(), abs=1e-12)
    for key in ("policy/clip_frac", "mismatch/kl_k3", "mismatch/ratio_max", "tis/capped_frac", "kl/ref", "entropy/mean"):
        assert key in m


def test_metrics_add_up_over_micro_batches():
    mask, old, logp, ref, roll, rewards = _batch(seed=1, n=12)
    adv = grpo_advantages(rewards, mask, G)[0].double()
    obj = build_objective(ObjectiveConfig(kl_coef=0.1), max_new_tokens=5)
    norm = normalizer_for(mask)
    full_loss, full = obj.loss(LossInputs(logp, old, adv, mask, ref_logprobs=ref, rollout_logprobs=roll), norm)
    acc = {}
    for rows in (slice(0, 5), slice(5, 6), slice(6, 12)):
        _, m = obj.loss(LossInputs(logp[rows], old[rows], adv[rows], mask[rows], ref_logprobs=ref[rows],
                                   rollout_logprobs=roll[rows]), norm)
        acc = accumulate_metrics(acc, m)
    assert set(acc) == set(full)
    for k in full:
        assert acc[k].item() == pytest.approx(full[k].item(), abs=1e-6), k  # fractions are float32
    assert acc["loss/total"].item() == pytest.approx(full_loss.item(), abs=1e-12)


def test_gae_loss_includes_value_term():
    mask, old, logp, ref, _, rewards = _batch(seed=2)
    obj = build_objective(ObjectiveConfig(preset="ppo"))
    values = torch.randn_like(old)
    res, _ = obj.advantages(rewards, mask, G, values=values)
    assert res.returns is not None
    new_values = (values + 0.5).requires_grad_(True)
    x = LossInputs(logp, old, res.advantages, mask, values=new_values, old_values=values, returns=res.returns)
    loss, m = obj.loss(x, normalizer_for(mask))
    loss.backward()
    assert new_values.grad is not None and new_values.grad.abs().sum() > 0
    assert loss.item() == pytest.approx((m["loss/policy"] + 0.5 * m["loss/value"]).item(), abs=1e-12)


def test_shape_rewards_dapo_overlong():
    obj = build_objective(ObjectiveConfig(preset="dapo"), max_new_tokens=10)  # buffer = 0.2 * 10 = 2 tokens
    mask = torch.arange(10)[None] < torch.tensor([5, 9, 10])[:, None]
    r, _ = obj.shape_rewards(torch.tensor([1.0, 1.0, 1.0]), mask)
    # |y| = 5 <= 8: 0 ; |y| = 9: (8 - 9) / 2 = -0.5 ; |y| = 10: (8 - 10) / 2 = -1
    assert torch.allclose(r, torch.tensor([1.0, 0.5, 0.0]))
    same, _ = build_objective(ObjectiveConfig(preset="grpo")).shape_rewards(torch.tensor([1.0, 1.0, 1.0]), mask)
    assert torch.equal(same, torch.tensor([1.0, 1.0, 1.0]))


def test_errors():
    mask, old, logp, ref, _, rewards = _batch()
    adv = torch.zeros_like(old)
    with pytest.raises(ValueError, match="ref_logprobs"):
        build_objective(ObjectiveConfig(kl_coef=0.1)).loss(LossInputs(logp, old, adv, mask), normalizer_for(mask))
    with pytest.raises(ValueError, match="rollout_logprobs"):
        build_objective(ObjectiveConfig(tis_cap=2.0)).loss(LossInputs(logp, old, adv, mask), normalizer_for(mask))
    with pytest.raises(ValueError, match="max_new_tokens"):
        build_objective(ObjectiveConfig(preset="dr_grpo"))
    with pytest.raises(ValueError, match="old_logprobs"):
        LossInputs(logp, old[:, :2], adv, mask)


def test_reinforce_pp_kl_reward_per_token():
    from rlx.objectives import kl_penalty_rewards, reinforce_pp_advantages

    mask, old, _, ref, _, rewards = _batch(seed=3)
    obj = build_objective(ObjectiveConfig(preset="reinforce_pp", kl_coef=0.2))
    assert obj.needs_ref and not obj.needs_values
    res, _ = obj.advantages(rewards, mask, G, old_logprobs=old, ref_logprobs=ref)
    tok, _ = kl_penalty_rewards(rewards, kl_k1(old, ref), mask, 0.2, per_token=True)
    assert torch.allclose(res.advantages, reinforce_pp_advantages(tok, mask)[0], atol=1e-6)
    with pytest.raises(ValueError, match="values"):
        build_objective(ObjectiveConfig(preset="ppo")).advantages(rewards, mask, G)
