"""PEAR SFT weights (paper pear): hand values for each level, the normalisation, the plain-SFT limit."""

import math

import pytest
import torch

from rlx.objectives.pear import pear_log_weights, pear_loss, pear_weights

# one row, 4 positions; the first is prompt (mask 0); d = logp - behavior = [_, -1, -2, -3] on completion
LOGP = torch.tensor([[-9.0, -1.0, -2.0, -3.0]])
BEH = torch.zeros(1, 4)
MASK = torch.tensor([[False, True, True, True]])


def test_sequence_level_is_the_whole_log_ratio_on_every_token():
    assert pear_log_weights(LOGP, BEH, MASK, "sequence").tolist() == [[0.0, -6.0, -6.0, -6.0]]


def test_token_level_is_the_discounted_suffix():
    # gamma 0.5: t3: -3; t2: -2 + 0.5*(-3) = -3.5; t1: -1 + 0.5*(-3.5) = -2.75; the prompt position sees 0 from
    # itself plus the discounted suffix, but is masked to 0
    assert pear_log_weights(LOGP, BEH, MASK, "token", gamma=0.5).tolist() == [[0.0, -2.75, -3.5, -3.0]]
    # gamma 1 on the first completion token equals the sequence weight
    assert pear_log_weights(LOGP, BEH, MASK, "token", gamma=1.0)[0, 1] == -6.0


def test_block_level_sums_blocks_of_completion_tokens():
    # blocks of 2 completion tokens: b0 = {t1, t2} D = -3, b1 = {t3} D = -3; gamma 0.5: b1 -3, b0 -3 + 0.5*-3 = -4.5
    assert pear_log_weights(LOGP, BEH, MASK, "block", gamma=0.5, block=2).tolist() == [[0.0, -4.5, -4.5, -3.0]]


def test_weights_are_clipped_and_mean_one_over_completion_tokens():
    logp = torch.tensor([[-0.1, -0.2, 0.0], [-3.0, -4.0, -5.0]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    g = pear_weights(logp, torch.zeros(2, 3), mask, "sequence", clip=2.0)
    # raw log G: row 0 -0.3 (twice), row 1 -12 clipped to -2 (three times); normalised by the mean
    raw = [math.exp(-0.3)] * 2 + [math.exp(-2.0)] * 3
    mean = sum(raw) / 5
    assert g[0, :2].tolist() == pytest.approx([math.exp(-0.3) / mean] * 2)
    assert g[1].tolist() == pytest.approx([math.exp(-2.0) / mean] * 3)
    assert g[0, 2] == 0 and g[mask].mean().item() == pytest.approx(1.0)


def test_equal_policies_give_plain_sft_and_gradients_are_weighted():
    nll = torch.tensor([[0.5, 1.0, 2.0]], requires_grad=True)
    mask = torch.tensor([[True, True, False]])
    loss, g = pear_loss(nll, -nll.detach(), mask, "token")  # behavior = policy: every d_t = 0
    assert loss.item() == pytest.approx(0.75) and g[mask].tolist() == [1.0, 1.0]
    loss, g = pear_loss(nll, torch.zeros(1, 3), mask, "sequence")  # d = -1.5 for both tokens: equal weights
    assert loss.item() == pytest.approx(0.75)
    loss, g = pear_loss(nll, torch.zeros(1, 3), mask, "token", gamma=1.0)  # t0: -1.5, t1: -1.0
    loss.backward()
    w0, w1 = math.exp(-1.5), math.exp(-1.0)
    want = [w0 / ((w0 + w1) / 2) / 2, w1 / ((w0 + w1) / 2) / 2, 0.0]
    assert nll.grad[0].tolist() == pytest.approx(want)  # the weights carry no gradient (stop-gradient)


def test_unknown_level():
    with pytest.raises(ValueError, match="unknown PEAR level"):
        pear_log_weights(LOGP, BEH, MASK, "episode")
