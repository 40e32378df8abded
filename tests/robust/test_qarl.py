"""QARL (paper qarl): quantal response and soft value, the temperature curriculum, the pushed CartPole,
config errors, and an exact resume through `rlx train`."""

import json
import math
from pathlib import Path

import pytest
import torch

from rlx.cli import main
from rlx.config import ConfigError, build_config
from rlx.control.envs import TorchCartPole
from rlx.control.online import Rollout, finished_returns
from rlx.robust import qarl

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "qarl_cartpole.yaml"


def test_quantal_probs_and_soft_value_hand_values():
    q = torch.tensor([[1.0, 2.0, 3.0]])
    z = math.exp(1) + math.exp(2) + math.exp(3)
    expect = torch.tensor([[math.exp(1) / z, math.exp(2) / z, math.exp(3) / z]])
    torch.testing.assert_close(qarl.quantal_probs(q, 1.0), expect)
    assert float(qarl.soft_value(q, 1.0)) == pytest.approx(math.log(z), abs=1e-6)
    # alpha = 2: softmax of q / 2, value 2 log sum exp(q / 2)
    z2 = math.exp(0.5) + math.exp(1.0) + math.exp(1.5)
    assert float(qarl.soft_value(q, 2.0)) == pytest.approx(2 * math.log(z2), abs=1e-6)
    # alpha = 0: the rational adversary (argmax, lowest index on ties) and the hard max
    torch.testing.assert_close(qarl.quantal_probs(torch.tensor([[2.0, 5.0, 5.0]]), 0.0), torch.tensor([[0.0, 1.0, 0.0]]))
    assert float(qarl.soft_value(q, 0.0)) == 3.0
    with pytest.raises(ValueError, match="alpha"):
        qarl.soft_value(q, -1.0)


def test_soft_value_is_expected_q_plus_alpha_entropy_of_the_quantal_response():
    """V_alpha(s) = sum_a nu(a) Q(a) + alpha H(nu) for nu = softmax(Q / alpha): the entropy-regularised value."""
    q = torch.tensor([[0.3, -1.2, 2.5, 0.0], [4.0, 4.0, -3.0, 1.0]], dtype=torch.float64)
    for alpha in (0.1, 1.0, 7.0):
        p = qarl.quantal_probs(q, alpha)
        entropy = -(p * p.log()).sum(-1)
        torch.testing.assert_close(qarl.soft_value(q, alpha), (p * q).sum(-1) + alpha * entropy)
    # cold -> max, hot -> uniform
    assert torch.allclose(qarl.soft_value(q, 1e-3), q.max(-1).values, atol=1e-2)
    assert torch.allclose(qarl.quantal_probs(q, 1e4), torch.full_like(q, 0.25), atol=1e-3)


def _adv(**kw) -> qarl.AdversaryConfig:
    return qarl.AdversaryConfig(**kw)


def test_linear_temperature_hand_values():
    t = qarl.Temperature(_adv(alpha_start=8.0, alpha_end=0.0, anneal_fraction=0.5), num_updates=8)
    assert t.alpha == 8.0
    # falls over the first 0.5 * 8 = 4 updates: 6, 4, 2, 0, then stays
    assert [t.step(0.0) for _ in range(6)] == [6.0, 4.0, 2.0, 0.0, 0.0, 0.0]


def test_paced_temperature_moves_only_while_the_protagonist_performs():
    t = qarl.Temperature(_adv(alpha_start=1.0, alpha_end=0.0, schedule="paced", pace_return=100.0, pace_steps=4),
                         num_updates=100)
    assert t.step(50.0) == 1.0  # below the pace: hold
    assert t.step(100.0) == 0.75
    assert t.step(-float("inf")) == 0.75  # no finished episode: hold
    assert [t.step(300.0) for _ in range(4)] == [0.5, 0.25, 0.0, 0.0]
    state = t.state_dict()
    u = qarl.Temperature(_adv(alpha_start=1.0, alpha_end=0.0, schedule="paced"), num_updates=100)
    u.load_state_dict(state)
    assert (u.alpha, u.update) == (0.0, 7)


def test_rarl_is_rational_throughout_and_none_has_no_temperature():
    for mode in ("rarl", "none"):
        t = qarl.Temperature(_adv(mode=mode), num_updates=10)
        assert [t.step(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]


def test_push_adds_to_the_cart_force():
    """Action 1 (+10 N) with a -20 N push is action 0 (-10 N) with none; a push changes the next state."""
    a, b, c = (TorchCartPole(4, seed=3) for _ in range(3))
    for env in (a, b, c):
        env.reset()
    ones, zeros = torch.ones(4, dtype=torch.long), torch.zeros(4, dtype=torch.long)
    out_a = a.step(ones, torch.full((4,), -20.0))
    out_b = b.step(zeros)
    torch.testing.assert_close(out_a.final_obs, out_b.final_obs, rtol=0, atol=0)
    out_c = c.step(zeros, torch.full((4,), 5.0))
    assert bool((out_c.final_obs[:, 1] > out_b.final_obs[:, 1]).all())  # pushed right: faster to the right

    pushed = qarl.PushedCartPole(TorchCartPole(4, seed=3), torch.tensor([-20.0, 0.0]))
    pushed.reset()
    out_p = pushed.step(torch.stack((ones, zeros), 1))  # push index 0 = -20 N
    torch.testing.assert_close(out_p.final_obs, out_b.final_obs, rtol=0, atol=0)


def test_pole_physics_match_gymnasium_with_the_same_parameters():
    import gymnasium as gym
    import numpy as np

    ref = gym.make("CartPole-v1").unwrapped
    ref.masspole, ref.length = 0.5, 1.0
    ref.total_mass, ref.polemass_length = ref.masspole + ref.masscart, ref.masspole * ref.length
    ref.reset(seed=0)
    mine = TorchCartPole(1, seed=0, masspole=0.5, length=1.0)
    mine.reset()
    mine.state = torch.tensor(ref.state, dtype=torch.float64).unsqueeze(0)
    steps = 0
    for t in range(200):
        a = int(ref.state[2] + 0.5 * ref.state[3] > 0)  # balance, so the episode runs long
        o_ref, _, term, *_ = ref.step(a)
        out = mine.step(torch.tensor([a]))
        np.testing.assert_allclose(out.final_obs[0].numpy(), o_ref, rtol=0, atol=1e-6)
        assert bool(out.terminated[0]) == term
        steps += 1
        if term:
            break
        mine.state = torch.tensor(ref.state, dtype=torch.float64).unsqueeze(0)
    assert steps > 50
    with pytest.raises(ValueError, match="positive"):
        TorchCartPole(1, length=0.0)


def test_a_constant_push_topples_a_controller_that_balances_without_it():
    act = lambda o: (o[:, 2] + 0.5 * o[:, 3] > 0).long()  # noqa: E731  the classic linear balancer
    free = qarl.greedy_returns(act, 8, seed=0)
    pushed = qarl.greedy_returns(act, 8, seed=0, push=lambda o: torch.full((o.shape[0],), 5.0))
    assert free.mean() == 500.0
    assert pushed.max() < 300  # the cart drifts out of bounds


def test_finished_returns_carry_partial_episodes_across_rollouts():
    rewards = torch.ones(3, 2)
    done = torch.tensor([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    ro = Rollout(torch.zeros(3, 2, 4), torch.zeros(3, 2, dtype=torch.long), rewards, done, done, torch.zeros(3, 2, 4))
    running = torch.tensor([10.0, 0.0])
    got = finished_returns(ro, running)
    assert sorted(got.tolist()) == [1.0, 2.0, 13.0]  # env 1: 1 then 2; env 0: 10 carried + 3
    assert running.tolist() == [0.0, 0.0]


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="alpha_start"):
        build_config(qarl.Config, {"kind": "qarl", "adversary": {"alpha_start": 0.0, "alpha_end": 0.0}})
    with pytest.raises(ConfigError, match="env.id"):
        build_config(qarl.Config, {"kind": "qarl", "env": {"id": "Acrobot-v1"}})
    with pytest.raises(ConfigError, match="robust.lengths"):
        build_config(qarl.Config, {"kind": "qarl", "robust": {"lengths": [0.5, -1.0]}})
    build_config(qarl.Config, {"kind": "qarl", "adversary": {"mode": "rarl", "alpha_start": 0.0}})  # ignored by rarl


TINY = ["env.num_envs=8", "num_steps=8", "minibatches=2", "eval.every_steps=256", "eval.episodes=2", "log_every=1",
        "robust.episodes=2", "robust.masspoles=[0.1]", "robust.lengths=[0.5,1.0]", "robust.best_response_steps=128",
        "adversary.anneal_fraction=1.0"]


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_recipe_runs_and_the_temperature_falls(tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(RECIPE), *TINY, "total_steps=1024", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("robust/nominal", "robust/physics_grid", "robust/physics_worst", "robust/random_push",
                "robust/best_response"):
        assert 0 < summary[key] <= 500
    alphas = [r["adversary/alpha"] for r in _rows(out) if "adversary/alpha" in r]
    assert alphas[0] == 10.0 and alphas == sorted(alphas, reverse=True) and alphas[-1] < 1.0


def test_killed_and_resumed_run_matches_the_uninterrupted_one(tmp_path, kill_on_call):
    """Both networks, optimizers, the temperature, the environments and the RNG come back from the checkpoint."""
    args = ["train", str(RECIPE), *TINY, "total_steps=1024", "checkpoint_every=2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(qarl.PushedCartPole, "step", 5 * 8 + 3)  # mid-rollout of update 6 (checkpoint at 4)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0

    def rows(out):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in _rows(out)]

    assert rows(tmp_path / "b") == rows(tmp_path / "a")
    assert any("adversary/loss" in r for r in rows(tmp_path / "a"))
