"""PA-RL (paper parl): action optimisation by hand-made critics, the BC warm-up, checkpoint state."""

import torch

from rlx.control.envs import EnvSpec
from rlx.control.offline import Policy
from rlx.control.parl import PARLUpdate, optimize_actions

CONT = EnvSpec(obs_dim=3, num_actions=0, action_dim=1, action_low=-2.0, action_high=2.0, max_episode_steps=200)
DISC = EnvSpec(obs_dim=3, num_actions=3, action_dim=1, action_low=0.0, action_high=1.0, max_episode_steps=200)


class Quadratic(torch.nn.Module):
    """Two identical critics Q(s, a) = -(a - target(s))^2, target(s) = s[0]: [2, B]."""

    def forward(self, obs, actions):
        q = -(actions[:, 0] - obs[:, 0]).square()
        return torch.stack([q, q])


class Table(torch.nn.Module):
    """Discrete Q(s, a) = values[a] for every state: [2, B]."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values)

    def forward(self, obs, actions):
        return torch.stack([self.values[actions]] * 2)


def test_global_step_picks_the_best_sample_and_local_steps_climb_q():
    torch.manual_seed(0)
    pol = Policy(CONT, [8])
    obs = torch.tensor([[1.0, 0.0, 0.0], [-1.5, 0.0, 0.0]])
    with torch.no_grad():
        glob = optimize_actions(pol, Quadratic(), obs, samples=64, top_k=4, grad_steps=0, grad_lr=0.0, low=-2, high=2)
        local = optimize_actions(pol, Quadratic(), obs, samples=64, top_k=4, grad_steps=20, grad_lr=0.2, low=-2, high=2)
    # 64 samples of a wide Gaussian land near each target; 20 steps of a <- a + 0.2 * (-2 (a - t)) converge to t
    assert (glob[:, 0] - obs[:, 0]).abs().max() < 0.3
    assert (local[:, 0] - obs[:, 0]).abs().max() < 1e-3
    assert all(p.grad is None for p in pol.parameters())


def test_local_step_respects_the_action_bounds():
    pol = Policy(CONT, [8])
    obs = torch.tensor([[5.0, 0.0, 0.0]])  # Q is best at a = 5, outside [-2, 2]
    a = optimize_actions(pol, Quadratic(), obs, samples=8, top_k=2, grad_steps=10, grad_lr=0.5, low=-2, high=2)
    assert float(a.max()) == 2.0


def test_discrete_choice_stays_in_the_policy_support():
    pol = Policy(DISC, [8])
    with torch.no_grad():  # make the policy put all its mass on actions 0 and 1
        pol.body[-1].weight.zero_()
        pol.body[-1].bias.copy_(torch.tensor([0.0, 0.0, -1e4]))
    obs = torch.zeros(5, 3)
    a = optimize_actions(pol, Table([0.0, 1.0, 10.0]), obs, samples=32, top_k=4, grad_steps=3, grad_lr=1.0, low=0, high=1)
    assert a.tolist() == [1] * 5  # action 2 has the highest Q but the policy never proposes it


def test_bc_warmup_then_optimised_targets_and_state_roundtrip():
    torch.manual_seed(0)
    up = PARLUpdate(CONT, [16], num_q=2, target_reduce="min", quantile=0.0, q_loss="mse", huber_delta=1.0,
                    expectile=0.7, beta=0.0, gamma=0.99, polyak=0.005, lr=1e-3, samples=4, top_k=2, grad_steps=1,
                    grad_lr=0.01, bc_steps=2)
    batch = (torch.randn(32, 3), torch.rand(32, 1) * 4 - 2, torch.randn(32), torch.randn(32, 3), torch.zeros(32))
    m1, m2, m3 = up.step(*batch), up.step(*batch), up.step(*batch)
    assert "parl/q_gain" not in m1 and "parl/q_gain" not in m2 and "parl/q_gain" in m3
    state = up.state_dict()
    assert state["updates"] == 3
    other = PARLUpdate(CONT, [16], num_q=2, target_reduce="min", quantile=0.0, q_loss="mse", huber_delta=1.0,
                       expectile=0.7, beta=0.0, gamma=0.99, polyak=0.005, lr=1e-3, samples=4, top_k=2, grad_steps=1,
                       grad_lr=0.01, bc_steps=2)
    other.load_state_dict(state)
    assert other.updates == 3
    for p, q in zip(up.policy.parameters(), other.policy.parameters()):
        assert torch.equal(p, q)
