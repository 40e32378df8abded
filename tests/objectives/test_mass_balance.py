"""Correct-mass balance of one softmax policy-gradient step (paper brorl), by hand."""

import pytest
import torch

from rlx.objectives.mass_balance import mass_balance_terms, softmax_step, token_mass_change


def test_terms_by_hand_with_a_negative_unsampled_shift():
    # V = 4, pi uniform (1/4), correct {0, 2, 3}: Q = 3/4. Rollouts y = [0, 1], raw rewards A = [1, 0], S = 1.
    # R = [1, 0, 0, 0]; dQ/dz_i = pi_i (c_i - Q) = [1/16, -3/16, 1/16, 1/16]; dz = R - pi S = [3/4, -1/4, -1/4, -1/4]
    # direct = 1/16 * 1 = 1/16; sampled = 1/16 * 3/4 + (-3/16)(-1/4) = 3/64 + 3/64 = 3/32;
    # unsampled (tokens 2, 3) = 2 * 1/16 * (-1/4) = -1/32; total 1/16
    logits = torch.zeros(4)
    correct = torch.tensor([True, False, True, True])
    t = mass_balance_terms(logits, correct, torch.tensor([0, 1]), torch.tensor([1.0, 0.0]))
    assert t.direct == pytest.approx(1 / 16, abs=1e-12)
    assert t.sampled == pytest.approx(3 / 32, abs=1e-12)
    assert t.unsampled == pytest.approx(-1 / 32, abs=1e-12)
    assert t.total == pytest.approx(1 / 16, abs=1e-12) and t.net_reward == 1.0


def test_second_case_by_hand_and_centred_advantages_have_no_unsampled_term():
    # V = 3 uniform, correct {0}: Q = 1/3; y = [0, 0], A = [1, 1]: R = [2, 0, 0], S = 2, dz = [4/3, -2/3, -2/3]
    # dQ/dz = [2/9, -1/9, -1/9]: sampled 8/27, unsampled 2 * 2/27 = 4/27, direct 4/9
    t = mass_balance_terms(torch.zeros(3), torch.tensor([True, False, False]), torch.tensor([0, 0]),
                           torch.tensor([1.0, 1.0]))
    assert (t.sampled, t.unsampled, t.direct) == pytest.approx((8 / 27, 4 / 27, 4 / 9), abs=1e-12)
    # group-mean-centred advantages: S = 0, so unsampled tokens do not move the correct mass at all
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(20, generator=gen)
    samples = torch.multinomial(torch.softmax(logits, -1), 6, replacement=True, generator=gen)
    correct = torch.arange(20) < 5
    r = correct[samples].double()
    c = mass_balance_terms(logits, correct, samples, r - r.mean())
    assert c.unsampled == pytest.approx(0.0, abs=1e-15) and c.net_reward == pytest.approx(0.0, abs=1e-12)


def test_first_order_total_matches_the_exact_step():
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(30, generator=gen)
    correct = torch.rand(30, generator=gen) < 0.3
    samples = torch.multinomial(torch.softmax(logits, -1), 9, replacement=True, generator=gen)
    adv = torch.where(correct[samples], 1.0, -1.0)
    t = mass_balance_terms(logits, correct, samples, adv)
    lr = 1e-6
    dq = float((token_mass_change(logits, softmax_step(logits, samples, adv, lr)) * correct.double()).sum())
    assert dq / lr == pytest.approx(t.total, rel=1e-4)
    assert t.direct >= 0  # sign-consistent advantages: the sampled tokens' own push never shrinks Q
