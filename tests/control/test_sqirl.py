"""SQIRL's Monte-Carlo returns restart at episode ends and value the unfinished tail."""

import torch

from rlx.control.sqirl import discounted_returns


def test_discounted_returns_hand_values():
    # one env, gamma 0.5, rewards 1, 2, 3, 4, episode ends after step 1 (done_1 = 1), tail value 8:
    # G3 = 4 + 0.5*8 = 8 ; G2 = 3 + 0.5*8 = 7 ; G1 = 2 (episode end) ; G0 = 1 + 0.5*2 = 2
    r = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    done = torch.tensor([[0.0], [1.0], [0.0], [0.0]])
    g = discounted_returns(r, done, 0.5, torch.tensor([8.0]))
    torch.testing.assert_close(g, torch.tensor([[2.0], [2.0], [7.0], [8.0]]), rtol=0, atol=1e-7)
