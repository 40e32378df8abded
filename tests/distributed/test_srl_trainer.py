"""SRL (paper srl): `rlx train recipes/srl_cartpole.yaml` end to end on a tiny budget (sane returns,
staleness within its bound, version = updates), kill mid-run -> no orphan workers -> resume, and the
checkpoint's trainer state round trip."""

import json
import multiprocessing as mp
from pathlib import Path

import torch

import rlx.distributed.srl.trainer as srl_trainer
from rlx.cli import main
from rlx.config import load_config
from rlx.rundir import RunDir

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "srl_cartpole.yaml"
# 2 actors x 2 groups x 2 envs, 8-step segments of 2 * 8 = 16 frames: 4 segments = 64 frames per update
TINY = ["dataflow.env_backend=torch", "dataflow.envs_per_group=2", "dataflow.num_steps=8", "eval.episodes=2",
        "net.hidden=[16]", "eval.every_steps=512", "checkpoint_every=1"]


def _rows(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def test_recipe_runs_end_to_end_with_sane_returns(tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(RECIPE), *TINY, "total_steps=512", "dataflow.max_staleness=3", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    # 512 / 64 = 8 updates; the trainer pushes version k after update k
    assert summary["env/steps"] == 512 and summary["srl/version"] == 8
    assert summary["srl/frames_generated"] == 512 + 16 * summary["srl/dropped_segments"]  # 16 frames a segment
    assert 8 <= summary["eval/return_mean"] <= 500  # CartPole episodes last 8 to 500 steps
    train = [r for r in _rows(out) if "train/loss" in r]
    assert [r["srl/version"] for r in train] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert all(r["srl/staleness_max"] <= 3 and 0 <= r["srl/staleness_mean"] <= r["srl/staleness_max"] for r in train)
    assert train[0]["srl/staleness_max"] == 0  # before the first update every segment was acted at version 0
    returns = [r["env/episode_return"] for r in train if "env/episode_return" in r]
    assert returns and all(8 <= x <= 500 for x in returns)
    assert all(2 <= r["srl/policy_batch_rows"] <= 8 for r in train)  # one group (2 rows) up to all 2 * 2 * 2 = 8
    assert mp.active_children() == []


def test_kill_mid_run_leaves_no_workers_and_resume_continues(tmp_path, monkeypatch):
    out = tmp_path / "run"
    real, calls, pids = srl_trainer.regress, {"n": 0}, []
    real_start = srl_trainer.SRLSystem.start

    def killed_on_third_update(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    def start(self):
        started = real_start(self)
        pids.extend(self.pids)
        return started

    monkeypatch.setattr(srl_trainer, "regress", killed_on_third_update)
    monkeypatch.setattr(srl_trainer.SRLSystem, "start", start)
    args = ["train", str(RECIPE), *TINY, "total_steps=384", "--out", str(out)]
    assert main(args) == 130  # interrupted after 2 updates (checkpoint every update)
    assert len(pids) == 3 and all(not Path(f"/proc/{p}").exists() for p in pids) and mp.active_children() == []
    ckpt = RunDir(out, "", resume=True).latest_checkpoint()
    assert ckpt.name == "step_00000128"  # 2 updates x 64 frames
    saved = torch.load(ckpt / "state.pt", weights_only=False)
    assert (saved["update"], saved["version"]) == (2, 2)

    monkeypatch.setattr(srl_trainer, "regress", real)
    assert main([*args, "--resume"]) == 0
    train = [r for r in _rows(out) if "train/loss" in r]
    # 384 / 64 = 6 updates in all: 2 before the kill, 4 after; the version counter continues from 2
    assert [r["step"] for r in train] == [64, 128, 192, 256, 320, 384]
    assert [r["srl/version"] for r in train] == [1, 2, 3, 4, 5, 6]


def test_checkpoint_state_round_trips_exactly(tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(RECIPE), *TINY, "total_steps=128", "--out", str(out)]) == 0
    before = torch.load(RunDir(out, "", resume=True).latest_checkpoint() / "state.pt", weights_only=False)
    # resume with nothing left to do: the trainer loads the state, runs 0 updates, saves it again
    cfg = load_config(RECIPE, [*TINY, "total_steps=128"], srl_trainer.Config)
    run = RunDir(out, "", resume=True)
    try:
        srl_trainer.run(cfg, run)
    finally:
        run.close()
    after = torch.load(run.latest_checkpoint() / "state.pt", weights_only=False)
    for k in ("update", "version", "dropped", "generated", "next_eval"):
        assert after[k] == before[k]
    assert all(torch.equal(before["q_net"][k], v) for k, v in after["q_net"].items())
    assert after["opt"]["state"][0]["step"] == before["opt"]["state"][0]["step"]
    assert torch.equal(after["rng"]["torch"], before["rng"]["torch"])


def test_continuous_env_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", str(RECIPE), "dataflow.env_id=Pendulum-v1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "dataflow.env_id" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()
