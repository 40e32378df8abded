"""Grounding rewards (paper guig1) by hand."""

import torch

from rlx.rewards.grounding import box_closeness, gui_g1_reward, hit, iou


def test_hit_iou_box_by_hand():
    g = torch.tensor([2.0, 2.0, 6.0, 6.0])  # 4 x 4
    p = torch.tensor([5.0, 5.0, 9.0, 9.0])  # 4 x 4, centre (7, 7) outside g; intersection 1 x 1, union 31
    assert hit(p, g) == 0.0
    assert hit(torch.tensor([4.0, 4.0, 8.0, 8.0]), g) == 1.0  # centre (6, 6) on g's corner: edges count
    torch.testing.assert_close(iou(p, g), torch.tensor(1 / 31))
    # closeness on a 10 x 10 screen: each coordinate off by 3 -> s = 0.7 each -> harmonic mean 0.7
    torch.testing.assert_close(box_closeness(p, g, 10, 10), torch.tensor(0.7))
    torch.testing.assert_close(box_closeness(g, g, 10, 10), torch.tensor(1.0))
    torch.testing.assert_close(gui_g1_reward(p, g, 10, 10), torch.tensor(0.25 / 31 + 0.125 * 0.7))
    torch.testing.assert_close(gui_g1_reward(g, g, 10, 10), torch.tensor(1 + 0.25 + 0.125))


def test_growing_a_box_keeps_hit_but_loses_box_reward():
    g = torch.tensor([4.0, 0.0, 6.0, 0.0])  # a 1-D span [4, 6] on a 20-wide line
    tight, wide = torch.tensor([4.0, 0.0, 6.0, 0.0]), torch.tensor([0.0, 0.0, 10.0, 0.0])
    assert hit(tight, g) == 1.0 and hit(wide, g) == 1.0  # centre 5 inside in both
    torch.testing.assert_close(iou(wide, g), torch.tensor(0.2))  # 2 / 10
    # x1 off by 4, x2 off by 4 on W = 20: s = 0.8, 0.8; y terms 1, 1 -> 4 / (1.25 + 1.25 + 1 + 1)
    torch.testing.assert_close(box_closeness(wide, g, 20, 1), torch.tensor(4 / 4.5))
    assert gui_g1_reward(wide, g, 20, 1) < gui_g1_reward(tight, g, 20, 1)


def test_batched_shapes():
    g = torch.tensor([[0.0, 0.0, 2.0, 0.0], [1.0, 0.0, 3.0, 0.0]])
    assert gui_g1_reward(g, g, 4, 1).shape == (2,)
