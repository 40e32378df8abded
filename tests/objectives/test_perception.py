"""Implicit perception loss (paper qhawkeye): the clamped k3 term, its schedule, digit masking, wiring."""

import math

import pytest
import torch

from rlx.models import char_tokenizer
from rlx.objectives import LossInputs, ObjectiveConfig, aggregate, build_objective, normalizer_for, ppo_clip_loss
from rlx.objectives.perception import degrade_ids, digit_mask_table, perception_coef, perception_kl


def test_perception_kl_hand_values_and_gradient_sign():
    lp = torch.tensor([[math.log(0.5), math.log(0.2)]], requires_grad=True)
    deg = torch.tensor([[math.log(0.25), math.log(0.2)]])
    kld = perception_kl(lp, deg)
    # k = log 0.5: 0.5 - log 0.5 - 1 = 0.1931; equal log-probs -> 0
    torch.testing.assert_close(kld.detach(), torch.tensor([[0.5 + math.log(2) - 1, 0.0]]))
    (-kld.sum()).backward()  # the loss term: minimising it raises log pi(y | x) above log pi(y | x~)
    assert lp.grad[0, 0] < 0  # gradient descent moves lp[0, 0] up
    big = perception_kl(torch.tensor([[0.0]]), torch.tensor([[50.0]]))
    assert float(big) == 10.0  # clamps: k to 20, then the divergence to 10


def test_cosine_schedule():
    assert [perception_coef(s, 1.0, 4) for s in (0, 2, 4, 9)] == pytest.approx([1.0, 0.5, 0.0, 0.0])
    assert perception_coef(1000, 0.3, None) == 0.3


def test_digit_masking_keeps_length_and_padding():
    tok = char_tokenizer()
    table = digit_mask_table(tok)
    ids = torch.tensor([[tok.pad_token_id] + tok.encode("12+a=", add_special_tokens=False)])
    mask = ids != tok.pad_token_id
    out = degrade_ids(ids, mask, table)
    assert tok.decode(out[0, 1:].tolist()) == "??+a="
    assert out[0, 0] == tok.pad_token_id and out.shape == ids.shape


def test_loss_subtracts_the_weighted_divergence():
    mask = torch.tensor([[True, True, False]])
    lp = torch.tensor([[-1.0, -2.0, -3.0]])
    deg = torch.tensor([[-2.0, -2.0, 0.0]])
    adv = torch.tensor([[0.5, 0.5, 0.5]])
    obj = build_objective(ObjectiveConfig(aggregation="token-mean", perception_coef=0.1))
    norm = normalizer_for(mask)
    loss, m = obj.loss(LossInputs(lp, lp, adv, mask, degraded_logprobs=deg, perception_coef=0.1), norm)
    pg, _ = ppo_clip_loss(lp, lp, adv, mask, eps_low=0.2, eps_high=0.2)
    kld = torch.tensor([[math.exp(-1) + 1 - 1, 0.0, 0.0]])
    torch.testing.assert_close(loss, aggregate(pg - 0.1 * kld, mask, "token-mean", norm))
    torch.testing.assert_close(m["perception_kl"], kld[0, :2].mean())
    with pytest.raises(ValueError, match="degraded_logprobs"):
        obj.loss(LossInputs(lp, lp, adv, mask), norm)
