"""QWeb (paper qweb) by hand: the form environment, warm-start curriculum, shaping, Q-network; CLI run, resume."""

import json
from pathlib import Path

import pytest
import torch

from rlx.cli import load_recipe, main
from rlx.control import qweb

RECIPE = str(Path(__file__).resolve().parents[2] / "recipes" / "qweb_form.yaml")


def _form(max_steps=8):
    """One 3-field form, 2 values per field (tokens: field 0 -> 1, 2; field 1 -> 3, 4; field 2 -> 5, 6).
    The goal is page = [1, 4, 5]; the instruction lists keys in the order 2, 0, 1, so its value tokens are
    [5, 1, 4]. Type(e, j) is action 3 e + j, submit is action 9."""
    env = qweb.FormEnv(1, fields=3, values=2, max_steps=max_steps, seed=0)
    env.target, env.order = torch.tensor([[1, 4, 5]]), torch.tensor([[2, 0, 1]])
    env.page, env.t = torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, dtype=torch.long)
    return env


def _steps(env, actions):
    return [env.step(torch.tensor([a])) for a in actions]


def test_obs_layout_and_typing_copies_the_instruction_value():
    env = _form()
    torch.testing.assert_close(env.obs(), torch.tensor([[0, 0, 0, 2, 0, 1, 5, 1, 4, 1.0]]))
    # Type(element 1, slot 0) copies slot 0's value (5, a field-2 token) into field 1: wrong but allowed
    out = env.step(torch.tensor([1 * 3 + 0]))
    assert env.page.tolist() == [[0, 5, 0]] and out.reward.item() == 0 and not out.terminated.item()
    assert out.obs[0, 9].item() == pytest.approx(7 / 8)  # steps left / max_steps


def test_reward_only_when_every_field_is_right_at_submit():
    # right: e0 <- slot 1 (value 1), e1 <- slot 2 (value 4), e2 <- slot 0 (value 5): actions 1, 5, 6
    outs = _steps(_form(), [1, 5, 6, 9])
    assert [o.reward.item() for o in outs] == [0, 0, 0, 1] and [o.terminated.item() for o in outs] == [0, 0, 0, 1]
    assert _steps(_form(), [1, 5, 9])[-1].reward.item() == -1  # field 2 still empty
    assert _steps(_form(), [1, 5, 7, 9])[-1].reward.item() == -1  # e2 <- slot 1 (value 1): wrong field
    assert _steps(_form(), [9])[-1].reward.item() == -1
    # overwriting a wrong value repairs it: e1 <- slot 0 (wrong), then e1 <- slot 2
    assert _steps(_form(), [3, 1, 5, 6, 9])[-1].reward.item() == 1
    assert not any(o.truncated.item() for o in outs)


def test_step_limit_is_a_failure_even_with_a_correct_page():
    env = _form(max_steps=4)
    outs = _steps(env, [1, 5, 6, 6])  # all right after 3 steps, but the 4th step is not a submit
    assert [o.reward.item() for o in outs] == [0, 0, 0, -1] and outs[-1].terminated.item()
    assert outs[-1].final_obs[0, :3].tolist() == [1, 4, 5] and outs[-1].final_obs[0, 9].item() == 0
    assert outs[-1].obs[0, :3].tolist() == [0, 0, 0] and outs[-1].obs[0, 9].item() == 1  # reset, k = 0


@pytest.mark.parametrize("k", [0, 1, 3, 5, 6])
def test_warm_start_fills_exactly_k_random_fields_correctly(k):
    env = qweb.FormEnv(400, fields=6, values=3, max_steps=12, seed=1)
    env.warm_start = float(k)
    env.reset()
    right = env.page == env.target
    assert (right.sum(1) == k).all()
    assert ((env.page == 0) == ~right).all()  # the others are empty
    if 0 < k < 6:
        assert right.any(0).all() and (~right).any(0).all()  # which fields varies from episode to episode


def test_fractional_warm_start_rounds_stochastically():
    env = qweb.FormEnv(4000, fields=6, values=3, max_steps=12, seed=2)
    env.warm_start = 2.25
    env.reset()
    k = (env.page == env.target).sum(1).float()
    assert set(k.tolist()) == {2.0, 3.0} and abs(k.mean().item() - 2.25) < 0.03  # std of the mean 0.007
    assert (qweb.stochastic_round(2.0, 50, torch.Generator().manual_seed(0)) == 2).all()


def test_curriculum_schedule_by_hand():
    # k(t) = k0 (1 - t / (f T)): k0 = 4, f T = 0.5 * 1000 = 500
    assert [qweb.warm_start_fields(t, 1000, 4, 0.5) for t in (0, 125, 250, 500, 900)] == [4.0, 3.0, 2.0, 0.0, 0.0]
    assert qweb.warm_start_fields(300, 1000, 3, 1.0) == pytest.approx(2.1)


def test_potential_and_shaping_by_hand():
    # goal [1, 4, 5]; instruction keys [2, 0, 1], values [5, 1, 4]
    instr = [2, 0, 1, 5, 1, 4, 1.0]
    obs = torch.tensor([[0, 0, 0, *instr], [1, 0, 0, *instr], [1, 4, 0, *instr], [1, 5, 5, *instr]])
    phi = qweb.potential(obs, 3)
    torch.testing.assert_close(phi, torch.tensor([0, 1 / 3, 2 / 3, 2 / 3]))
    # an episode s0 -> s1 -> s2 -> submit (r = -1, terminal), gamma = 0.9:
    # r' = [0.9/3 - 0, 0.9 * 2/3 - 1/3, -1 - 2/3] = [0.3, 0.26667, -1.66667]
    r = torch.tensor([0.0, 0.0, -1.0])
    term = torch.tensor([0.0, 0.0, 1.0])
    shaped = qweb.shaped_rewards(r, phi[:3], torch.tensor([1 / 3, 2 / 3, 123.0]), term, 0.9)
    torch.testing.assert_close(shaped, torch.tensor([0.3, 0.6 - 1 / 3, -5 / 3]))
    # discounted returns: shaped 0.3 + 0.9 * 0.26667 - 0.81 * 1.66667 = -0.81 = raw return - Phi(s0) (= 0)
    disc = torch.tensor([1.0, 0.9, 0.81])
    assert (disc * shaped).sum().item() == pytest.approx((disc * r).sum().item() - phi[0].item(), abs=1e-6)


def test_qweb_net_is_equivariant_to_the_instruction_order():
    torch.manual_seed(0)
    F = 4
    net = qweb.QWebNet(F, values=3, hidden=16)
    env = qweb.FormEnv(5, F, 3, 8, seed=3)
    env.warm_start = 2.0
    obs = env.reset()
    perm = torch.tensor([2, 0, 3, 1])  # list the same instruction in another order
    obs_p = obs.clone()
    obs_p[:, F:2 * F], obs_p[:, 2 * F:3 * F] = obs[:, F:2 * F][:, perm], obs[:, 2 * F:3 * F][:, perm]
    q, q_p = net(obs), net(obs_p)
    assert q.shape == (5, F * F + 1)
    torch.testing.assert_close(q_p[:, :F * F].view(5, F, F), q[:, :F * F].view(5, F, F)[:, :, perm], rtol=0, atol=1e-5)
    torch.testing.assert_close(q_p[:, -1], q[:, -1], rtol=0, atol=1e-5)
    assert not torch.allclose(q[:, :F * F].view(5, F, F), q[:, :F * F].view(5, F, F)[:, :, perm])


TINY = ["env.fields=2", "env.values=2", "env.max_steps=4", "env.num_envs=4", "hidden=16", "total_steps=1600",
        "learning_starts=100", "batch_size=32", "eval_every=400", "eval_episodes=50", "log_every=200",
        "target_update_interval=100"]


def test_recipe_runs_from_cli_and_the_curriculum_solves_a_tiny_form(tmp_path):
    out = tmp_path / "run"
    assert main(["train", RECIPE, *TINY, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env/steps"] == 1600 and summary["train/warm_start_k"] == 0
    assert summary["eval/success_rate"] >= 0.9  # 2 fields, 2 values; random play succeeds ~4% of the time
    assert (out / "checkpoints" / "LATEST").exists()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    ks = {r["step"]: r["train/warm_start_k"] for r in rows if "train/warm_start_k" in r}
    # logged after the vector step that started at env step s - 4; k0 = F = 2, f T = 0.6 * 1600 = 960
    assert ks[200] == pytest.approx(2 * (1 - 196 / 960)) and ks[1000] == 0
    assert [r["step"] for r in rows if "eval/success_rate" in r] == [400, 800, 1200, 1600]
    # the same budget without the curriculum: the sparse reward is almost never found (paper qweb's claim)
    _, cfg = load_recipe(RECIPE, [*TINY, "curriculum=none", "eval_every=1600"])
    assert qweb.run(cfg, None)["eval/success_rate"] <= 0.2


def test_bad_config_is_one_line_error(tmp_path, capsys):
    assert main(["train", RECIPE, "env.max_steps=4", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "max_steps" in err and len(err.splitlines()) == 1 and not (tmp_path / "x").exists()
    assert main(["train", RECIPE, "curriculum_start=5", "--out", str(tmp_path / "x")]) == 2
    assert "curriculum_start" in capsys.readouterr().err


def test_killed_and_resumed_run_matches_the_uninterrupted_one(tmp_path, kill_on_call):
    args = ["train", RECIPE, *TINY, "total_steps=800", "shaping=true", "checkpoint_every=200"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(qweb.QWebNet, "forward", 300)  # mid-run, after the first checkpoints
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab")
    assert a == b
    ma, mb = ((tmp_path / d / "metrics.jsonl").read_text() for d in "ab")
    assert ma == mb
