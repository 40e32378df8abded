"""Advantage estimators on hand values and against slow loops."""

import math

import pytest
import torch

from rlx.objectives import (
    ace_advantages,
    dr_grpo_advantages,
    gae_advantages,
    grpo_advantages,
    outcome_to_token_rewards,
    reinforce_pp_advantages,
    rloo_advantages,
    weighted_reinforce_advantages,
)

MASK2 = torch.ones(8, 2, dtype=torch.bool)


def test_grpo_hand_values():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    adv, m = grpo_advantages(r, MASK2, 4, eps=1e-6)
    # group 1: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = 0.5773503 -> +-0.5 / (0.5773503 + 1e-6)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)
    assert torch.allclose(adv[:4, 0], torch.tensor([a, -a, -a, a]), atol=1e-6)
    assert torch.all(adv[4:] == 0)  # zero-variance group: no signal, no nan
    assert torch.allclose(adv[:, 0], adv[:, 1])  # broadcast over tokens
    assert "adv/mean" in m


def test_grpo_masks_padding_and_g1():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    adv, _ = grpo_advantages(torch.tensor([1.0, 0.0]), mask, 2)
    assert adv[0, 2] == 0 and adv[1, 1] == 0 and adv[0, 0] > 0
    adv1, _ = grpo_advantages(torch.tensor([1.0, 0.0]), mask, 1)  # G=1: std undefined -> 0, adv 0
    assert torch.all(adv1 == 0)


def test_dr_grpo_hand_values():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 3.0, 1.0, 1.0, 1.0])
    adv, _ = dr_grpo_advantages(r, MASK2, 4)
    # group means 0.5 and 1.5
    assert torch.allclose(adv[:, 0], torch.tensor([0.5, -0.5, -0.5, 0.5, 1.5, -0.5, -0.5, -0.5]), atol=1e-7)


def test_rloo_hand_values_and_loop():
    r = torch.tensor([1.0, 0.0, 0.0, 0.0])
    adv, _ = rloo_advantages(r, torch.ones(4, 1, dtype=torch.bool), 4)
    # i=0: baseline 0 -> 1; others: baseline 1/3 -> -1/3
    assert torch.allclose(adv[:, 0], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]), atol=1e-7)
    g = torch.Generator().manual_seed(0)
    r = torch.randn(12, generator=g)
    adv, _ = rloo_advantages(r, torch.ones(12, 1, dtype=torch.bool), 3)
    for i in range(12):
        grp = range(3 * (i // 3), 3 * (i // 3) + 3)
        base = sum(float(r[j]) for j in grp if j != i) / 2
        assert adv[i, 0].item() == pytest.approx(float(r[i]) - base, abs=1e-6)
    with pytest.raises(ValueError, match="group_size"):
        rloo_advantages(r, torch.ones(12, 1, dtype=torch.bool), 1)


def test_reinforce_pp_hand_values():
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]], dtype=torch.bool)
    adv, _ = reinforce_pp_advantages(torch.tensor([1.0, 0.0]), mask)
    # returns (gamma 1): [1, 1] and [0, 0, 0]; mean 0.4; unbiased var (2*0.36 + 3*0.16)/4 = 0.3
    hi, lo = 0.6 / math.sqrt(0.3), -0.4 / math.sqrt(0.3)
    expect = torch.tensor([[hi, hi, 0.0], [lo, lo, lo]])
    assert torch.allclose(adv, expect, atol=1e-5)


def test_reinforce_pp_token_rewards_loop():
    g = torch.Generator().manual_seed(3)
    tok = torch.randn(4, 5, generator=g)
    lengths = [5, 2, 3, 1]
    mask = torch.arange(5)[None] < torch.tensor(lengths)[:, None]
    adv, _ = reinforce_pp_advantages(tok, mask, gamma=0.9)
    rets = []
    for i, n in enumerate(lengths):
        for t in range(n):
            rets.append(sum(0.9 ** (s - t) * float(tok[i, s]) for s in range(t, n)))
    mean = sum(rets) / len(rets)
    std = math.sqrt(sum((x - mean) ** 2 for x in rets) / (len(rets) - 1))
    k = 0
    for i, n in enumerate(lengths):
        for t in range(n):
            assert adv[i, t].item() == pytest.approx((rets[k] - mean) / std, abs=1e-5)
            k += 1
    assert torch.all(adv[~mask] == 0)


def test_gae_hand_values():
    mask = torch.ones(1, 3, dtype=torch.bool)
    values = torch.tensor([[0.5, 0.6, 0.7]])
    (adv, ret), _ = gae_advantages(torch.tensor([1.0]), values, mask, gamma=1.0, lam=0.9, whiten=False)
    # delta2 = 1 - 0.7 = 0.3; A1 = (0.7-0.6) + 0.9*0.3 = 0.37; A0 = (0.6-0.5) + 0.9*0.37 = 0.433
    assert torch.allclose(adv, torch.tensor([[0.433, 0.37, 0.3]]), atol=1e-6)
    assert torch.allclose(ret, torch.tensor([[0.933, 0.97, 1.0]]), atol=1e-6)


def test_gae_matches_loop_with_padding():
    g = torch.Generator().manual_seed(5)
    n, t = 4, 6
    lengths = [6, 3, 1, 4]
    mask = torch.arange(t)[None] < torch.tensor(lengths)[:, None]
    rewards = torch.randn(n, t, generator=g)
    values = torch.randn(n, t, generator=g)
    (adv, ret), _ = gae_advantages(rewards, values, mask, gamma=0.95, lam=0.8, whiten=False)
    for i, L in enumerate(lengths):
        a_next = 0.0
        for s in reversed(range(L)):
            v_next = float(values[i, s + 1]) if s + 1 < L else 0.0
            delta = float(rewards[i, s]) + 0.95 * v_next - float(values[i, s])
            a_next = delta + 0.95 * 0.8 * a_next
            assert adv[i, s].item() == pytest.approx(a_next, abs=1e-5)
            assert ret[i, s].item() == pytest.approx(a_next + float(values[i, s]), abs=1e-5)
    assert torch.all(adv[~mask] == 0) and torch.all(ret[~mask] == 0)


def test_outcome_to_token_rewards():
    mask = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=torch.bool)
    out = outcome_to_token_rewards(torch.tensor([2.0, 5.0, -1.0]), mask)
    assert torch.equal(out, torch.tensor([[0.0, 2.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, -1.0]]))


def test_weighted_reinforce_and_nsr():
    r = torch.tensor([1.0, 0.0, 1.0])
    mask = torch.ones(3, 2, dtype=torch.bool)
    adv, _ = weighted_reinforce_advantages(r, mask, positive_weight=0.1)
    assert torch.allclose(adv[:, 0], torch.tensor([0.1, -1.0, 0.1]))
    nsr, _ = weighted_reinforce_advantages(r, mask, positive_weight=0.0)
    assert torch.equal(nsr[:, 1], torch.tensor([0.0, -1.0, 0.0]))


def test_ace_scales_only_negative():
    adv = torch.tensor([[-1.0, -1.0], [0.5, 0.5]])
    logp = torch.tensor([[-1.0, -2.0], [-1.0, -1.0]])
    ref = torch.tensor([[-1.2, -2.3], [-3.0, -3.0]])
    mask = torch.ones(2, 2, dtype=torch.bool)
    out, _ = ace_advantages(adv, logp, ref, mask, alpha=1.0)
    # row 0: c = 0.2 + 0.3 = 0.5; softplus(0.5) = log(1 + e^0.5) = 0.9740770; scale 1.9740770
    assert torch.allclose(out[0], torch.tensor([-1.974077, -1.974077]), atol=1e-6)
    assert torch.equal(out[1], adv[1])  # positive advantages untouched (even with large c = 4)


@pytest.mark.parametrize("g", [4, 5, 8, 16])
def test_groups_of_equal_rewards_get_exactly_zero_even_when_the_reward_is_not_a_float32_value(g):
    """Rewards like 1.2 (correct + a 0.2 format bonus) are not exact in float32. The float32 group mean was
    one ulp off, and GRPO divided that by a std of the same size, so an all-correct group got A ~ +-0.1
    of one sign (and NaN with adv_eps = 0)."""
    from rlx.objectives.advantages import dr_grpo_advantages, grpo_advantages, rloo_advantages

    mask = torch.ones(2 * g, 3, dtype=torch.bool)
    for v in (0.2, 1.2, 1.3, 10.1, 25.3):
        r = torch.cat([torch.full((g,), v), torch.tensor([v, 0.0] * (g // 2) + [v] * (g % 2))])
        for adv in (grpo_advantages(r, mask, g)[0], grpo_advantages(r, mask, g, eps=0.0)[0],
                    dr_grpo_advantages(r, mask, g)[0], rloo_advantages(r, mask, g)[0]):
            assert torch.all(adv[:g] == 0), (v, adv[:g, 0])
            assert torch.isfinite(adv).all() and adv[g:].abs().max() >= 0.09  # the mixed group still learns
