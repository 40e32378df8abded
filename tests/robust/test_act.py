"""Adversarial Cheap Talk (paper act): the message channel, ES by hand, and the trainer end to end."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from rlx.cli import main
from rlx.config import ConfigError, build_config
from rlx.control.envs import TorchCartPole
from rlx.robust import act

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "act_cartpole.yaml"


def test_linear_messages_hand_values():
    phi = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.5, -1.0])  # W = [[1,0,0,0],[0,0,0,2]], b = [0.5, -1]
    m = act.linear_messages(phi, 4, 2)(torch.tensor([[0.2, 9.0, 9.0, 1.0]]))
    torch.testing.assert_close(m, torch.tanh(torch.tensor([[0.7, 1.0]])))
    with pytest.raises(ValueError, match="expected"):
        act.linear_messages(torch.zeros(9), 4, 2)


def test_cheap_talk_appends_messages_and_changes_nothing_else():
    phi = torch.randn(10, generator=torch.Generator().manual_seed(0))
    plain, talk = TorchCartPole(5, seed=2), act.CheapTalkEnv(TorchCartPole(5, seed=2), act.linear_messages(phi, 4, 2), 2)
    o_plain, o_talk = plain.reset(), talk.reset()
    assert talk.spec.obs_dim == 6 and o_talk.shape == (5, 6)
    torch.testing.assert_close(o_talk[:, :4], o_plain)
    torch.testing.assert_close(o_talk[:, 4:], act.linear_messages(phi, 4, 2)(o_plain))
    for t in range(60):  # long enough for episodes to end and reset
        a = torch.tensor([t % 2] * 5)
        p, q = plain.step(a), talk.step(a)
        torch.testing.assert_close(q.obs[:, :4], p.obs)
        torch.testing.assert_close(q.final_obs[:, :4], p.final_obs)
        torch.testing.assert_close(q.final_obs[:, 4:], act.linear_messages(phi, 4, 2)(p.final_obs))
        assert torch.equal(q.reward, p.reward) and torch.equal(q.terminated, p.terminated)


def test_centred_ranks_and_es_gradient_hand_values():
    np.testing.assert_allclose(act.centred_ranks(np.array([3.0, -1.0, 10.0])), [0.0, -0.5, 0.5])
    # one pair: F+ = 2 > F- = 1 -> u = (+0.5, -0.5); g = (0.5 - -0.5) * eps / (2 * 1 * sigma)
    eps = np.array([[1.0, -2.0]])
    np.testing.assert_allclose(act.es_gradient(np.array([2.0]), np.array([1.0]), eps, sigma=0.5), [1.0, -2.0])
    # ES on a quadratic climbs toward its maximum
    rng = np.random.default_rng(0)
    x = np.array([3.0, -2.0])
    for _ in range(200):
        e = rng.normal(size=(8, 2))
        fp, fm = -((x + 0.1 * e) ** 2).sum(1), -((x - 0.1 * e) ** 2).sum(1)
        x = x + 0.05 * act.es_gradient(fp, fm, e, 0.1)
    assert np.abs(x).max() < 0.5


def test_odd_population_is_a_config_error(tmp_path):
    code = main(["train", str(RECIPE), "act.population=3", "--out", str(tmp_path / "x")])
    assert code == 2


def test_trainer_runs_logs_and_saves_messages(tmp_path):
    out = tmp_path / "run"
    args = ["train", str(RECIPE), "total_steps=512", "env.num_envs=8", "num_steps=8", "minibatches=2",
            "act.generations=2", "act.population=2", "act.eval_seeds=[7]", "--out", str(out)]
    assert main(args) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "act/grad_norm" in r] == [1, 2]
    saved = torch.load(out / "messages.pt")
    assert saved["phi"].shape == (10,) and saved["messages"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["act/train_return"] > 0 and summary["act/final_return"] > 0
    # phi moved away from its initial draw (ES took two Adam steps)
    phi0 = torch.as_tensor(np.random.default_rng(0).normal(0.0, 1.0, 10))
    assert float((saved["phi"] - phi0).abs().max()) > 0.1
    assert build_config(act.Config, {"kind": "act"}).act.mode == "adversary"
    with pytest.raises(ConfigError):
        build_config(act.Config, {"kind": "act", "act": {"mode": "friend"}})


def test_killed_and_resumed_es_matches_the_uninterrupted_run(tmp_path, kill_on_call):
    args = ["train", str(RECIPE), "total_steps=256", "env.num_envs=8", "num_steps=8", "minibatches=2",
            "act.generations=3", "act.population=2", "act.eval_seeds=[7]"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(act, "train_victim", 4)  # second member of generation 2 (generation 1 is checkpointed)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = torch.load(tmp_path / "a" / "messages.pt"), torch.load(tmp_path / "b" / "messages.pt")
    assert torch.equal(a["phi"], b["phi"])

    def rows(out):
        return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]

    assert rows(tmp_path / "a") == rows(tmp_path / "b")


def test_final_evaluation_seeds_must_be_fresh():
    """With seed 0 and 101 generations, ES trains victims on seeds 0..100; the default eval seeds 100..104
    would then include one of them. That is a config error naming the seeds."""
    with pytest.raises(ConfigError, match=r"act.eval_seeds \[100\] are victim seeds ES trained on"):
        build_config(act.Config, {"act": {"generations": 101}})
    with pytest.raises(ConfigError, match=r"\[1000005\]"):
        build_config(act.Config, {"seed": 1, "act": {"generations": 3, "eval_seeds": [7, 1_000_005]}})
    build_config(act.Config, {"act": {"generations": 100}})
    assert act.es_victim_seed(1, 2) == 1_000_005
