"""HBVLA-style binarization (paper hbvla): codes, Haar, saliency and the policy Hessian by hand."""

import math

import pytest
import torch
from torch import nn

from rlx.quant import hbvla as hb


def test_binarize_hand_values():
    w = torch.tensor([[1.0, 3.0, -2.0, 2.0]])
    # one group: mu = 1, |w - mu| = 0, 2, 3, 1 -> alpha = 1.5; codes +, +, -, + -> 2.5, 2.5, -0.5, 2.5
    torch.testing.assert_close(hb.binarize(w, 4), torch.tensor([[2.5, 2.5, -0.5, 2.5]]))
    # groups of 2: (1, 3) -> mu 2, alpha 1 -> exact; (-2, 2) -> mu 0, alpha 2 -> exact
    torch.testing.assert_close(hb.binarize(w, 2), w)
    # residual codes fix what one code misses: (1, 3, -2, 2) minus (2.5, 2.5, -0.5, 2.5) = (-1.5, .5, -1.5, -.5)
    r = w - hb.binarize(w, 4)  # mu -0.75, alpha 0.75 -> (-1.5, 0, -1.5, 0)
    torch.testing.assert_close(hb.residual_binarize(w, 4), hb.binarize(w, 4) + torch.tensor([[-1.5, 0.0, -1.5, 0.0]]))
    assert float((hb.residual_binarize(w, 4) - w).square().sum()) < float(r.square().sum())


def test_binarize_pads_a_short_last_group():
    w = torch.tensor([[1.0, 3.0, 5.0]])  # groups (1, 3) and (5, [5]) -> exact
    torch.testing.assert_close(hb.binarize(w, 2), w)


def test_haar_is_orthonormal_and_inverts():
    x = torch.tensor([[1.0, 3.0, 2.0, 2.0]])
    s = math.sqrt(2.0)
    torch.testing.assert_close(hb.haar(x), torch.tensor([[4 / s, 4 / s, -2 / s, 0.0]]))
    y = torch.randn(5, 8)
    torch.testing.assert_close(hb.inverse_haar(hb.haar(y)), y)
    torch.testing.assert_close(hb.haar(y).norm(dim=1), y.norm(dim=1))
    with pytest.raises(ValueError, match="even"):
        hb.haar(torch.zeros(1, 3))


def test_policy_hessian_weights_states():
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    torch.testing.assert_close(hb.policy_hessian(x), torch.tensor([[0.5, 0.0], [0.0, 2.0]]))
    torch.testing.assert_close(hb.policy_hessian(x, torch.tensor([3.0, 1.0])), torch.tensor([[0.75, 0.0], [0.0, 1.0]]))


def test_salient_columns_follow_obs_saliency():
    w = torch.tensor([[1.0, 1.0, 0.1], [1.0, 1.0, 0.1]])
    h = torch.diag(torch.tensor([1.0, 100.0, 1.0]))  # column 1 sees large inputs: [H^-1]_11 small
    mask = hb.salient_columns(w, h, frac=0.3, damp=0.0)
    assert mask.tolist() == [False, True, False]
    assert not hb.salient_columns(w, h, frac=0.0).any()


def test_decision_margin():
    q = torch.tensor([[1.0, 3.0, 2.5], [0.0, -1.0, 0.0]])
    torch.testing.assert_close(hb.decision_margin(q), torch.tensor([0.5, 0.0]))


def test_hbvla_weight_beats_plain_sign_and_quantize_policy_changes_every_layer():
    torch.manual_seed(0)
    w = torch.randn(16, 32) + torch.linspace(-2, 2, 32)  # columns with different means
    h = torch.eye(32)
    err_sign = (hb.sign_weight(w) - w).square().sum()
    err_hb = (hb.hbvla_weight(w, h, group=8, salient_frac=0.1) - w).square().sum()
    assert err_hb < 0.5 * err_sign

    x = torch.randn(3, 9)  # no salient columns: bands of the first 8 columns binarized, the 9th alone
    h8 = hb.haar(x[:, :8])
    expect = torch.cat([hb.inverse_haar(torch.cat([hb.binarize(h8[:, :4], 4), hb.binarize(h8[:, 4:], 4)], 1)),
                        hb.binarize(x[:, 8:], 4)], 1)
    torch.testing.assert_close(hb.hbvla_weight(x, torch.eye(9), 4, 0.0), expect)
    torch.testing.assert_close(hb.hbvla_weight(x, torch.eye(9), 4, 0.0, transform=False), hb.binarize(x, 4))

    net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    x = torch.randn(256, 4)
    before = [m.weight.detach().clone() for m in net if isinstance(m, nn.Linear)]
    bits = hb.quantize_policy(net, lambda: net(x), "hbvla", group=8, salient_frac=0.25)
    after = [m.weight.detach() for m in net if isinstance(m, nn.Linear)]
    for b, a in zip(before, after):
        assert not torch.equal(a, b)
    assert all(p.grad is None for p in net.parameters())
    assert set(bits) == {"0", "2"}
    # 4 inputs, 1 salient column (2 codes x (1 sign + 32 scale bits)), 3 others in Haar bands of 1 + 1 and an
    # odd column, each its own group: (66 + 3 x 33) / 4 = 41.25 bits per weight, not the nominal 11.25
    assert bits["0"] == pytest.approx(41.25) and hb.effective_bits(4, 8, 0.25) == pytest.approx(11.25)
    assert bits["2"] == pytest.approx(hb.stored_bits(16, 8, 4, "hbvla", True))
    with pytest.raises(ValueError, match="expected sign"):
        hb.quantize_policy(net, lambda: net(x), "ternary")


def test_effective_bits_hand_values():
    assert hb.effective_bits(64, 8, 0.0) == pytest.approx(1 + 32 / 8)  # 1 bit + two fp16 per 8 weights
    assert hb.effective_bits(64, 64, 0.1) == pytest.approx(1.1 * 1.5)


def test_stored_bits_hand_values():
    """One sign bit per weight plus (mu, alpha) in 16 bits each per group, groups as the codes lay them out."""
    assert hb.stored_bits(64, 64, 0, "sign") == pytest.approx((64 + 32) / 64)
    assert hb.stored_bits(64, 8, 0, "group") == pytest.approx(1 + 32 / 8)
    assert hb.stored_bits(20, 8, 0, "group") == pytest.approx((20 + 3 * 32) / 20)  # groups of 8, 8, 4
    # 64 inputs, 7 salient (2 x (7 + 32)); 57 others: Haar bands of 28 (4 groups each) + an odd column (1 group)
    assert hb.stored_bits(64, 8, 7, "hbvla", True) == pytest.approx((2 * 39 + 2 * (28 + 4 * 32) + 33) / 64)
    assert hb.stored_bits(64, 8, 7, "hbvla", False) == pytest.approx((2 * 39 + 57 + 8 * 32) / 64)



def test_a_short_last_group_has_its_own_statistics():
    """The tail was padded by repeating its last column: mu and alpha were pulled toward it. Two real values
    binarize exactly with their own (mu, alpha) = (0.5, 0.5)."""
    from rlx.quant.hbvla import binarize

    w = torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    assert torch.equal(binarize(w, 4), w)  # was [0, 0, 0, 0, 0.375, 1.125]
    w = torch.tensor([[1.0, 3.0, -2.0, 2.0, 5.0, -1.0, 4.0]])  # groups of 3: (1, 3, -2), (2, 5, -1), (4)
    b = binarize(w, 3)
    # group 1: mu = 2/3, alpha = mean(1/3, 7/3, 8/3) = 16/9; 1 and 3 lie above mu, -2 below; the tail is exact
    torch.testing.assert_close(b[0, :3], torch.tensor([2 / 3 + 16 / 9, 2 / 3 + 16 / 9, 2 / 3 - 16 / 9]))
    assert float(b[0, 6]) == 4.0
    with pytest.raises(ValueError, match="group = 0"):
        binarize(w, 0)
