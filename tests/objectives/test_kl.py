"""KL estimators, the KL reward penalty and rollout/trainer mismatch metrics."""

import math

import pytest
import torch

from rlx.objectives import kl_k1, kl_k2, kl_k3, kl_penalty_rewards, mismatch_metrics


def test_hand_values():
    logp, ref = torch.tensor([-1.0]), torch.tensor([-1.5])
    # l = ref - logp = -0.5
    assert kl_k1(logp, ref).item() == pytest.approx(0.5, abs=1e-7)  # -l
    assert kl_k2(logp, ref).item() == pytest.approx(0.125, abs=1e-7)  # l^2 / 2
    assert kl_k3(logp, ref).item() == pytest.approx(math.exp(-0.5) - 1 + 0.5, abs=1e-7)  # 0.1065307
    assert kl_k3(torch.tensor([-0.7]), torch.tensor([-0.7])).item() == 0.0


def test_k3_nonnegative():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(1000, generator=g) * 5, torch.randn(1000, generator=g) * 5
    assert torch.all(kl_k3(a, b) >= 0) and torch.all(kl_k2(a, b) >= 0)


def test_k1_k3_unbiased_exact_expectation():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    q = torch.tensor([0.25, 0.25, 0.25, 0.25], dtype=torch.float64)
    kl = (p * (p / q).log()).sum()
    # E_{y~p}[k] computed exactly over the support
    assert (p * kl_k1(p.log(), q.log())).sum().item() == pytest.approx(kl.item(), abs=1e-12)
    assert (p * kl_k3(p.log(), q.log())).sum().item() == pytest.approx(kl.item(), abs=1e-12)


def test_kl_penalty_rewards():
    rewards = torch.tensor([1.0, 0.0])
    kl = torch.tensor([[0.1, 0.2, 9.0], [0.3, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    seq, _ = kl_penalty_rewards(rewards, kl, mask, 0.5, per_token=False)
    # 1 - 0.5 * (0.1 + 0.2) = 0.85 ; 0 - 0.5 * 0.3 = -0.15 (the masked 9.0 is ignored)
    assert torch.allclose(seq, torch.tensor([0.85, -0.15]), atol=1e-7)
    tok, _ = kl_penalty_rewards(rewards, kl, mask, 0.5, per_token=True)
    # -0.5 kl per token, the reward on the last valid token: row 0 [-0.05, 1 - 0.1], row 1 [0 - 0.15]
    assert torch.allclose(tok, torch.tensor([[-0.05, 0.9, 0.0], [-0.15, 0.0, 0.0]]), atol=1e-7)


def test_mismatch_metrics():
    old = torch.tensor([[-1.0, -2.0, 0.0]])
    roll = torch.tensor([[-1.1, -2.0, -50.0]])
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    m = mismatch_metrics(old, roll, mask)
    # l = old - roll = [0.1, 0]; k3 = e^0.1 - 1 - 0.1 = 0.00517092 and 0 -> mean 0.00258546
    assert m["mismatch/kl_k3"].item() == pytest.approx((math.exp(0.1) - 1.1) / 2, abs=1e-7)
    assert m["mismatch/kl_k1"].item() == pytest.approx(-0.05, abs=1e-7)
    assert m["mismatch/ratio_max"].item() == pytest.approx(math.exp(0.1), abs=1e-6)  # masked 50-nat gap ignored
    assert m["mismatch/ratio_min"].item() == pytest.approx(1.0, abs=1e-7)
    same = mismatch_metrics(old, old, mask)
    assert same["mismatch/kl_k3"].item() == 0.0 and same["mismatch/ratio_max"].item() == 1.0


def test_mismatch_empty_mask_is_neutral_for_accumulation():
    m = mismatch_metrics(torch.zeros(1, 2), torch.ones(1, 2), torch.zeros(1, 2, dtype=torch.bool))
    assert m["mismatch/kl_k3"].item() == 0.0 and m["mismatch/ratio_max"].item() == 0.0
    assert m["mismatch/ratio_min"].item() == float("inf")


def test_k3_stays_finite_far_from_the_reference():
    """exp(log pi_ref - log pi) overflows past ~88: one such token made the loss and every gradient inf.
    The log-ratio is clamped to +-20; inside the clamp nothing changes."""
    logp = torch.tensor([-95.0, -1.0, -0.5], requires_grad=True)
    ref = torch.tensor([-1.0, -95.0, -0.7])
    k = kl_k3(logp, ref)
    assert torch.isfinite(k).all()
    assert k[0].item() == pytest.approx(math.expm1(20.0) - 20.0, rel=1e-6)
    assert k[2].item() == pytest.approx(math.expm1(-0.2) + 0.2, rel=1e-5)
    k.sum().backward()
    assert torch.isfinite(logp.grad).all() and logp.grad[0] == 0 and logp.grad[1] == 0
    assert logp.grad[2].item() == pytest.approx(1 - math.exp(-0.2), rel=1e-5)
